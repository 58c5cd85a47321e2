//! The fake guest's /proc: what GetMetrics reads. A quiet kernel: fixed counters, the agent as
//! PID 1, `MemTotal` following the memory blocks that are online.

use super::kernel::Seq;

/// Memory pressure stall information of a kernel where nothing ever stalled.
const PSI_CALM: &str = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";

/// `/proc/meminfo` for `total` bytes of online memory, a quarter of it in use.
pub fn meminfo(total: u64) -> String {
    let kb = total / 1024;
    let free = kb / 4 * 3;
    format!(
        "MemTotal:       {kb} kB\nMemFree:        {free} kB\nMemAvailable:   {free} kB\n\
         Buffers:        0 kB\nCached:         {} kB\nSwapTotal:      0 kB\nSwapFree:       0 kB\n",
        kb / 8
    )
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
pub fn mem_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Every /proc file at boot: `ram` bytes online, `cpus` CPUs online.
pub fn boot(seq: &mut Seq, ram: u64, cpus: u32) {
    let mut stat = String::from("cpu  0 0 0 0 0 0 0 0 0 0\n");
    for cpu in 0..cpus {
        stat.push_str(&format!("cpu{cpu} 0 0 0 0 0 0 0 0 0 0\n"));
    }
    stat.push_str("intr 0\nctxt 0\nbtime 0\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n");
    seq.file("/proc/meminfo", meminfo(ram))
        .file("/proc/stat", stat)
        .file("/proc/loadavg", "0.00 0.00 0.00 1/64 1\n")
        .file("/proc/vmstat", "nr_free_pages 0\npgfault 0\n")
        .file("/proc/diskstats", "")
        .file(
            "/proc/net/dev",
            "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n",
        )
        .file(
            "/proc/self/stat",
            "1 (kata-agent) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 4 0 1 33554432 1024\n",
        )
        .file(
            "/proc/self/status",
            "Name:\tkata-agent\nVmPeak:\t   32768 kB\nVmSize:\t   32768 kB\nVmRSS:\t    4096 kB\nThreads:\t4\n",
        )
        .file(
            "/proc/pagetypeinfo",
            "Page block order: 9\nPages per block:  512\n\n\
             Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10\n\
             Node    0, zone   Normal, type    Unmovable      8      4      2      1      0      0      0      0      0      0      0\n\
             Node    0, zone   Normal, type      Movable    512    256    128     64     32     16      8      4      2      1      1\n",
        )
        .file("/proc/sys/vm/compact_memory", "")
        .file("/proc/pressure/memory", PSI_CALM)
        .file("/sys/fs/cgroup/memory.pressure", PSI_CALM)
        .file("/proc/self/io", "rchar: 0\nwchar: 0\nsyscr: 0\nsyscw: 0\nread_bytes: 0\nwrite_bytes: 0\ncancelled_write_bytes: 0\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_round_trips() {
        assert_eq!(mem_total(&meminfo(512 << 20)), Some(512 << 20));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    }
}
