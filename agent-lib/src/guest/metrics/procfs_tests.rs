use super::*;

#[test]
fn loadavg_has_three_averages_and_task_counts() {
    let load = loadavg("0.50 0.25 0.10 3/217 4242\n").unwrap();
    assert_eq!(load.averages, [0.5, 0.25, 0.1]);
    assert_eq!((load.running, load.total), (3.0, 217.0));
    assert_eq!(loadavg("0.5 0.2"), None);
    assert_eq!(loadavg("a b c 1/2 3"), None);
}

#[test]
fn cpu_lines_become_milliseconds_per_cpu() {
    let text = "cpu  100 2 30 400 5 0 1 0 0 0\ncpu0 60 1 20 200 5 0 1 0 0 0\ncpu1 40 1 10\nintr 1 2 3\nctxt 99\n";
    let times = cpu_times(text);
    assert!(times.contains(&("total".into(), "user", 1000.0)));
    assert!(times.contains(&("total".into(), "guest_nice", 0.0)));
    assert!(times.contains(&("0".into(), "idle", 2000.0)));
    assert!(times.contains(&("1".into(), "system", 100.0)));
    assert_eq!(times.iter().filter(|(cpu, _, _)| cpu == "1").count(), 3);
    assert!(times.iter().all(|(cpu, _, _)| cpu != "intr"));
}

#[test]
fn meminfo_is_in_bytes_with_katas_item_names() {
    let text = "MemTotal:        2048 kB\nActive(anon):      16 kB\nHugePages_Total:       4\nDirectMap4M:  8 kB\nNewField:  1 kB\n";
    let items = meminfo(text);
    assert_eq!(
        items,
        vec![
            ("mem_total", 2048.0 * 1024.0),
            ("active_anon", 16.0 * 1024.0),
            ("hugepages_total", 4.0),
            ("direct_map_4M", 8.0 * 1024.0),
        ]
    );
}

#[test]
fn self_stat_counts_fields_after_the_command() {
    // The command holds a space and a parenthesis.
    let text = "42 (kata agent) x) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 1 2 20 0 9 0 100 123456 789 18446744073709551615\n";
    let stat = self_stat(text).unwrap();
    assert_eq!(stat.threads, 9.0);
    assert_eq!(stat.times, [7.0, 3.0, 1.0, 2.0]);
    assert_eq!(stat.vsize, 123_456.0);
    assert_eq!(self_stat("42 (short) S 1"), None);
}

#[test]
fn status_and_io_keep_the_known_items() {
    let status_text = "Name:\tkata-agent\nVmPeak:\t  2000 kB\nVmRSS:\t 1000 kB\nThreads:\t9\nvoluntary_ctxt_switches:\t12\n";
    assert_eq!(
        status(status_text),
        vec![
            ("vmpeak", 2000.0),
            ("vmrss", 1000.0),
            ("voluntary_ctxt_switches", 12.0)
        ]
    );
    let io_text = "rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 0\nwrite_bytes: 4096\ncancelled_write_bytes: 0\n";
    let items = io(io_text);
    assert_eq!(items.len(), 7);
    assert_eq!(items[5], ("write_bytes", 4096.0));
}

#[test]
fn diskstats_and_netdev_name_their_devices() {
    let disks = diskstats("   8       0 vda 10 1 80 5 20 2 160 9 0 12 14 0 0 0 0 3 1\n bad\n");
    assert_eq!(disks.len(), 17);
    assert_eq!(disks[0], ("vda".into(), "reads", 10.0));
    assert_eq!(disks[16], ("vda".into(), "time_flushing", 1.0));
    let old_kernel = diskstats("   8       0 vdb 1 2 3 4 5 6 7 8 9 10 11\n");
    assert_eq!(old_kernel.len(), 11);

    let net = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n  eth0: 1500 10 0 0 0 0 0 1 900 8 0 0 0 0 0 0\n    lo: 1 2 3\n";
    let stats = netdev(net);
    assert_eq!(stats.len(), 16);
    assert_eq!(stats[0], ("eth0".into(), "recv_bytes", 1500.0));
    assert_eq!(stats[8], ("eth0".into(), "sent_bytes", 900.0));
}

#[test]
fn key_values_skip_garbage() {
    assert_eq!(
        key_values("nr_free_pages 12\npgfault 7\nbroken\nx y\n"),
        vec![("nr_free_pages".into(), 12.0), ("pgfault".into(), 7.0)]
    );
}
