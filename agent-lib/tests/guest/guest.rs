//! The guest-service RPCs on the fakes, over ttrpc: GetGuestDetails, SetGuestDateTime,
//! ReseedRandomDev, CopyFile, GetDiagnosticData, GetMetrics and SetPolicy.

use agent_fakes::Op;
use agent_protos::agent as pb;
use agent_testing::pod::{self, Pod, code, ctx, message};
use kata_agent::device::DEVICE_HANDLERS;
use kata_agent::guest::SHARED_DIR;
use kata_agent::host::{FsStats, MountSpec, Mounter, NodeKind};
use nix::errno::Errno;
use ttrpc::Code;

fn details_req(block: bool, probe: bool) -> pb::GuestDetailsRequest {
    pb::GuestDetailsRequest {
        mem_block_size: block,
        mem_hotplug_probe: probe,
        ..Default::default()
    }
}

#[tokio::test]
async fn guest_details_report_memory_and_the_agents_handlers() {
    let pod = Pod::new().await;
    let sysfs = &pod.fake.sysfs;
    sysfs
        .write_file("/sys/devices/system/memory/block_size_bytes", "8000000\n")
        .unwrap();
    let agent = &pod.client.agent;
    let resp = agent
        .get_guest_details(ctx(), &details_req(true, true))
        .await
        .unwrap();
    assert_eq!(resp.mem_block_size_bytes, 128 << 20);
    assert!(!resp.support_mem_hotplug_probe, "no probe file yet");
    let details = resp.agent_details.unwrap();
    assert_eq!(details.version, kata_agent::rpc::AGENT_VERSION);
    assert!(details.init_daemon, "the fake agent is pid 1");
    assert_eq!(details.device_handlers, DEVICE_HANDLERS);
    let storages: Vec<String> = pod
        .agent
        .storages()
        .registry()
        .names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(details.storage_handlers, storages);
    assert!(details.storage_handlers.contains(&"virtio-fs".to_owned()));
    assert!(details.supports_seccomp);
    assert_eq!(details.extra_features, ["seccomp"]);

    sysfs
        .write_file("/sys/devices/system/memory/probe", "")
        .unwrap();
    pod.fake.system.set_pid(42);
    let resp = agent
        .get_guest_details(ctx(), &details_req(false, true))
        .await
        .unwrap();
    assert_eq!(resp.mem_block_size_bytes, 0, "not asked");
    assert!(resp.support_mem_hotplug_probe);
    assert!(!resp.agent_details.unwrap().init_daemon);

    sysfs
        .write_file("/sys/devices/system/memory/block_size_bytes", "zz")
        .unwrap();
    let bad = agent
        .get_guest_details(ctx(), &details_req(true, false))
        .await;
    assert!(message(bad.clone()).contains("not a hexadecimal size"));
    assert_eq!(code(bad), Code::INTERNAL);
    pod.shutdown().await;
}

#[tokio::test]
async fn guest_details_without_memory_blocks_report_zero() {
    let pod = Pod::new().await;
    let resp = pod
        .client
        .agent
        .get_guest_details(ctx(), &details_req(true, true))
        .await
        .unwrap();
    assert_eq!(resp.mem_block_size_bytes, 0);
    assert!(!resp.support_mem_hotplug_probe);
    pod.shutdown().await;
}

#[tokio::test]
async fn the_guest_clock_is_set_and_bad_times_are_refused() {
    let pod = Pod::new().await;
    let agent = &pod.client.agent;
    let req = |sec, usec| pb::SetGuestDateTimeRequest {
        Sec: sec,
        Usec: usec,
        ..Default::default()
    };
    agent
        .set_guest_date_time(ctx(), &req(1_700_000_000, 250_000))
        .await
        .unwrap();
    assert_eq!(pod.fake.system.time(), Some((1_700_000_000, 250_000)));
    for (bad, field) in [(req(1, 1_000_000), "Usec"), (req(-5, 0), "Sec")] {
        let result = agent.set_guest_date_time(ctx(), &bad).await;
        assert!(message(result.clone()).contains(field));
        assert_eq!(code(result), Code::INVALID_ARGUMENT);
    }
    assert_eq!(pod.fake.system.time(), Some((1_700_000_000, 250_000)));
    pod.shutdown().await;
}

#[tokio::test]
async fn entropy_is_fed_to_the_kernel() {
    let pod = Pod::new().await;
    let agent = &pod.client.agent;
    let req = |data: &[u8]| pb::ReseedRandomDevRequest {
        data: data.to_vec(),
        ..Default::default()
    };
    agent.reseed_random_dev(ctx(), &req(b"seed")).await.unwrap();
    assert_eq!(pod.fake.system.seeded(), vec![b"seed".to_vec()]);
    let empty = agent.reseed_random_dev(ctx(), &req(b"")).await;
    assert!(message(empty.clone()).contains("data"));
    assert_eq!(code(empty), Code::INVALID_ARGUMENT);
    pod.fake.faults.fail_next(Op::Reseed, Errno::EPERM);
    assert_eq!(
        code(agent.reseed_random_dev(ctx(), &req(b"more")).await),
        Code::INTERNAL
    );
    assert_eq!(pod.fake.system.seeded().len(), 1);
    pod.shutdown().await;
}

fn copy(rel: &str, size: i64, offset: i64, data: &[u8]) -> pb::CopyFileRequest {
    pb::CopyFileRequest {
        path: format!("{SHARED_DIR}/{rel}"),
        file_size: size,
        file_mode: 0o100_644,
        dir_mode: 0o750,
        uid: 1000,
        gid: 1001,
        offset,
        data: data.to_vec(),
        ..Default::default()
    }
}

#[tokio::test]
async fn copy_file_writes_chunks_then_renames_into_place() {
    let pod = Pod::new().await;
    let agent = &pod.client.agent;
    let target = format!("{SHARED_DIR}/c1-abc-hosts/etc/hosts");
    let mut first = copy("c1-abc-hosts/etc/hosts", 10, 0, b"127.0");
    first.file_mode = 0o104_644; // setuid: dropped
    agent.copy_file(ctx(), &first).await.unwrap();
    assert_eq!(
        pod.fake.sysfs.kind(&target),
        None,
        "not in place before the last chunk"
    );
    let second = pb::CopyFileRequest {
        offset: 5,
        data: b".0.1\n".to_vec(),
        ..first.clone()
    };
    agent.copy_file(ctx(), &second).await.unwrap();
    assert_eq!(pod.fake.sysfs.contents(&target).unwrap(), b"127.0.0.1\n");
    let meta = pod.fake.sysfs.meta(&target).unwrap();
    assert_eq!((meta.uid, meta.gid, meta.mode), (1000, 1001, 0o644));
    let dir = pod
        .fake
        .sysfs
        .meta(format!("{SHARED_DIR}/c1-abc-hosts/etc"))
        .unwrap();
    assert_eq!((dir.kind, dir.uid, dir.mode), (NodeKind::Dir, 1000, 0o750));
    let entries = kata_agent::host::Sysfs::read_dir(
        &*pod.fake.sysfs,
        std::path::Path::new(&format!("{SHARED_DIR}/c1-abc-hosts/etc")),
    )
    .unwrap();
    assert_eq!(entries, ["hosts"], "no temporary file left");
    pod.shutdown().await;
}

#[tokio::test]
async fn copy_file_makes_directories_and_symlinks_by_mode() {
    let pod = Pod::new().await;
    let agent = &pod.client.agent;
    let mut dir = copy("c1-cm/..data_dir", 0, 0, b"");
    dir.file_mode = 0o040_755;
    agent.copy_file(ctx(), &dir).await.unwrap();
    let meta = pod
        .fake
        .sysfs
        .meta(format!("{SHARED_DIR}/c1-cm/..data_dir"))
        .unwrap();
    assert_eq!(
        (meta.kind, meta.mode, meta.uid),
        (NodeKind::Dir, 0o755, 1000)
    );
    let mut link = copy("c1-cm/key", 0, 0, b"..data_dir/key");
    link.file_mode = 0o120_777;
    agent.copy_file(ctx(), &link).await.unwrap();
    let got = kata_agent::host::Sysfs::read_link(
        &*pod.fake.sysfs,
        std::path::Path::new(&format!("{SHARED_DIR}/c1-cm/key")),
    )
    .unwrap();
    assert_eq!(got, std::path::Path::new("..data_dir/key"));
    // A new link replaces the old one; a file replaces a link without following it.
    pod.fake.sysfs.write_file("/etc/target", "keep").unwrap();
    link.data = b"/etc/target".to_vec();
    agent.copy_file(ctx(), &link).await.unwrap();
    agent
        .copy_file(ctx(), &copy("c1-cm/key", 3, 0, b"new"))
        .await
        .unwrap();
    assert_eq!(pod.fake.sysfs.contents("/etc/target").unwrap(), b"keep");
    assert_eq!(
        pod.fake
            .sysfs
            .contents(format!("{SHARED_DIR}/c1-cm/key"))
            .unwrap(),
        b"new"
    );
    pod.shutdown().await;
}

#[tokio::test]
async fn copy_file_refuses_bad_fields_and_paths_leading_out() {
    let pod = Pod::new().await;
    let agent = &pod.client.agent;
    let mut outside = copy("x", 3, 0, b"bad");
    outside.path = "/etc/passwd".into();
    let mut dotdot = copy("x", 3, 0, b"bad");
    dotdot.path = format!("{SHARED_DIR}/../../../etc/passwd");
    let cases = [
        (outside, "path"),
        (dotdot, "path"),
        (copy("f", 3, 4, b""), "offset"),
        (copy("f", 3, 1, b"abc"), "data"),
        (copy("f", -1, 0, b""), "file_size"),
        (
            pb::CopyFileRequest {
                uid: -1,
                ..copy("f", 0, 0, b"")
            },
            "uid",
        ),
        (
            pb::CopyFileRequest {
                file_mode: 0o010_644,
                ..copy("f", 0, 0, b"")
            },
            "file_mode",
        ),
    ];
    for (req, field) in cases {
        let result = agent.copy_file(ctx(), &req).await;
        let text = message(result.clone());
        assert!(text.contains(&format!("invalid {field}")), "{text}");
        assert_eq!(code(result), Code::INVALID_ARGUMENT, "{text}");
    }
    // A link planted by a container where a directory should be, and a fifo at the target.
    pod.fake.sysfs.mkdir_p("/etc/outside").unwrap();
    pod.fake
        .sysfs
        .symlink(format!("{SHARED_DIR}/planted"), "/etc/outside")
        .unwrap();
    pod.fake
        .sysfs
        .mknod(format!("{SHARED_DIR}/fifo"), NodeKind::Other, 0, 0)
        .unwrap();
    for req in [
        copy("planted/f", 1, 0, b"x"),
        copy("planted/sub/f", 1, 0, b"x"),
        copy("fifo", 1, 0, b"x"),
    ] {
        let result = agent.copy_file(ctx(), &req).await;
        assert_eq!(
            code(result.clone()),
            Code::PERMISSION_DENIED,
            "{}",
            message(result)
        );
    }
    let outside =
        kata_agent::host::Sysfs::read_dir(&*pod.fake.sysfs, std::path::Path::new("/etc/outside"))
            .unwrap();
    assert!(outside.is_empty(), "{outside:?}");
    pod.shutdown().await;
}

#[tokio::test]
async fn a_failed_chunk_leaves_no_temporary_file() {
    let pod = Pod::new().await;
    let agent = &pod.client.agent;
    agent
        .copy_file(ctx(), &copy("c1/f", 6, 0, b"abc"))
        .await
        .unwrap();
    // The first change is the parent's owner, the second the chunk's write.
    pod.fake.faults.fail_nth(Op::FilesWrite, 2, Errno::ENOSPC);
    let result = agent.copy_file(ctx(), &copy("c1/f", 6, 3, b"def")).await;
    assert!(message(result.clone()).contains("No space left"));
    assert_eq!(code(result), Code::INTERNAL);
    let dir = std::path::Path::new(SHARED_DIR).join("c1");
    let left = kata_agent::host::Sysfs::read_dir(&*pod.fake.sysfs, &dir).unwrap();
    assert!(left.is_empty(), "{left:?}");
    // The host starts over and succeeds.
    agent
        .copy_file(ctx(), &copy("c1/f", 6, 0, b"abc"))
        .await
        .unwrap();
    agent
        .copy_file(ctx(), &copy("c1/f", 6, 3, b"def"))
        .await
        .unwrap();
    assert_eq!(pod.fake.sysfs.contents(dir.join("f")).unwrap(), b"abcdef");
    pod.shutdown().await;
}

const TERMINATION_LOG: &str = "/run/kata-containers/shared/containers/c1-0123-termination-log";

fn with_termination_log(cid: &str) -> pb::CreateContainerRequest {
    let mut req = pod::container_request(cid, &["sleep"], false);
    let spec = req.OCI.as_mut().unwrap();
    spec.Annotations.insert(
        "io.kubernetes.container.terminationMessagePath".into(),
        "/dev/termination-log".into(),
    );
    spec.Mounts.push(agent_protos::oci::Mount {
        destination: "/dev/termination-log".into(),
        source: TERMINATION_LOG.into(),
        type_: "bind".into(),
        options: vec!["rbind".into()],
        ..Default::default()
    });
    req
}

fn diag(cid: &str, log_type: &str) -> pb::GetDiagnosticDataRequest {
    pb::GetDiagnosticDataRequest {
        log_type: log_type.into(),
        container_id: cid.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_termination_log_is_read_capped_and_unknown_containers_are_not_found() {
    let pod = Pod::with_sandbox().await;
    pod.create_req(with_termination_log("c1")).await.unwrap();
    let agent = &pod.client.agent;
    let empty = agent
        .get_diagnostic_data(ctx(), &diag("c1", "termination_log"))
        .await;
    assert_eq!(empty.unwrap().data, "", "not written yet");
    pod.fake
        .sysfs
        .write_file(TERMINATION_LOG, "OOMKilled\n")
        .unwrap();
    let resp = agent
        .get_diagnostic_data(ctx(), &diag("c1", "termination_log"))
        .await
        .unwrap();
    assert_eq!(resp.data, "OOMKilled\n");
    pod.fake
        .sysfs
        .write_file(TERMINATION_LOG, vec![b'x'; 10_000])
        .unwrap();
    let resp = agent
        .get_diagnostic_data(ctx(), &diag("c1", "termination_log"))
        .await
        .unwrap();
    assert_eq!(resp.data.len(), 4096);

    let unknown = agent
        .get_diagnostic_data(ctx(), &diag("nope", "termination_log"))
        .await;
    assert_eq!(code(unknown), Code::NOT_FOUND);
    let bad = agent
        .get_diagnostic_data(ctx(), &diag("c1", "kernel_log"))
        .await;
    assert!(message(bad.clone()).contains("log_type"));
    assert_eq!(code(bad), Code::INVALID_ARGUMENT);
    // A link swapped in for the log is not followed.
    pod.fake.sysfs.write_file("/etc/secret", "s3cret").unwrap();
    pod.fake.sysfs.remove(TERMINATION_LOG).unwrap();
    pod.fake
        .sysfs
        .symlink(TERMINATION_LOG, "/etc/secret")
        .unwrap();
    let link = agent
        .get_diagnostic_data(ctx(), &diag("c1", "termination_log"))
        .await;
    assert_eq!(code(link), Code::PERMISSION_DENIED);
    pod.remove("c1", 0).await.unwrap();
    pod.shutdown().await;
}

#[tokio::test]
async fn a_container_without_the_annotation_has_no_termination_log() {
    let pod = Pod::with_sandbox().await;
    pod.create("c2", &["sleep"], false).await.unwrap();
    let result = pod
        .client
        .agent
        .get_diagnostic_data(ctx(), &diag("c2", "termination_log"))
        .await;
    assert!(message(result.clone()).contains("terminationMessagePath"));
    assert_eq!(code(result), Code::NOT_FOUND);
    pod.remove("c2", 0).await.unwrap();
    pod.shutdown().await;
}

fn proc_files(pod: &Pod) {
    let sysfs = &pod.fake.sysfs;
    let files = [
        ("/proc/loadavg", "0.50 0.25 0.10 2/120 999\n"),
        (
            "/proc/stat",
            "cpu  100 0 50 1000 0 0 0 0 0 0\ncpu0 100 0 50 1000 0 0 0 0 0 0\n",
        ),
        (
            "/proc/meminfo",
            "MemTotal:        1048576 kB\nMemFree:          524288 kB\n",
        ),
        ("/proc/vmstat", "nr_free_pages 131072\npgfault 42\n"),
        (
            "/proc/diskstats",
            "   254       0 vda 7 0 56 1 0 0 0 0 0 2 1 0 0 0 0 0 0\n",
        ),
        (
            "/proc/net/dev",
            "Inter-| Receive | Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n  eth0: 1500 10 0 0 0 0 0 0 900 8 0 0 0 0 0 0\n",
        ),
        (
            "/proc/self/stat",
            "1 (kata-agent) S 0 1 1 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 6 0 10 20000000 500\n",
        ),
        (
            "/proc/self/status",
            "Name:\tkata-agent\nVmRSS:\t    2048 kB\n",
        ),
        ("/proc/self/io", "rchar: 10\nwchar: 20\n"),
    ];
    for (path, text) in files {
        sysfs.write_file(path, text).unwrap();
    }
}

#[tokio::test]
async fn metrics_use_katas_names_and_one_registry_per_agent() {
    let pod = Pod::new().await;
    proc_files(&pod);
    pod.fake
        .mounter
        .mount(&MountSpec::new("/dev/vda", "/run/data", "ext4"))
        .unwrap();
    pod.fake.system.set_filesystem(
        "/run/data",
        FsStats {
            block_size: 4096,
            blocks: 100,
            blocks_free: 25,
            blocks_available: 20,
            files: 50,
            files_free: 40,
        },
    );
    let agent = &pod.client.agent;
    let scrape = || async {
        agent
            .get_metrics(ctx(), &pb::GetMetricsRequest::new())
            .await
            .unwrap()
            .metrics
    };
    let text = scrape().await;
    for line in [
        "kata_agent_scrape_count 1",
        "kata_agent_threads 6",
        "kata_agent_total_time 3",
        "kata_agent_total_vm 20000000",
        "kata_agent_total_rss 2097152",
        "kata_agent_proc_stat{item=\"utime\"} 250",
        "kata_agent_proc_status{item=\"vmrss\"} 2048",
        "kata_agent_io_stat{item=\"wchar\"} 20",
        "kata_guest_load{item=\"load1\"} 0.5",
        "kata_guest_tasks{item=\"max\"} 120",
        "kata_guest_cpu_time{cpu=\"0\",item=\"user\"} 1000",
        "kata_guest_cpu_time{cpu=\"total\",item=\"idle\"} 10000",
        "kata_guest_vm_stat{item=\"pgfault\"} 42",
        "kata_guest_meminfo{item=\"mem_total\"} 1073741824",
        "kata_guest_diskstat{disk=\"vda\",item=\"reads\"} 7",
        "kata_guest_netdev_stat{interface=\"eth0\",item=\"sent_bytes\"} 900",
        "kata_guest_filesystem_bytes{device=\"vda\",item=\"used\",mount=\"/run/data\"} 307200",
        "kata_guest_filesystem_inodes{device=\"vda\",item=\"available\",mount=\"/run/data\"} 40",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(scrape().await.contains("kata_agent_scrape_count 2"));

    // Another agent on other fakes counts its own scrapes.
    let other = Pod::new().await;
    let text = other
        .client
        .agent
        .get_metrics(ctx(), &pb::GetMetricsRequest::new())
        .await
        .unwrap()
        .metrics;
    assert!(text.contains("kata_agent_scrape_count 1"), "{text}");
    assert!(
        !text.contains("kata_guest_meminfo"),
        "no /proc there: {text}"
    );
    other.shutdown().await;
    pod.shutdown().await;
}

#[tokio::test]
async fn set_policy_answers_as_kata_without_the_policy_feature() {
    let pod = Pod::new().await;
    let req = pb::SetPolicyRequest {
        policy: "package agent_policy".into(),
        ..Default::default()
    };
    let result = pod.client.agent.set_policy(ctx(), &req).await;
    assert!(message(result.clone()).contains("SetPolicy is not supported"));
    assert_eq!(code(result), Code::NOT_FOUND);
    pod.shutdown().await;
}

#[tokio::test]
async fn metrics_parse_the_real_proc_files_of_this_machine() {
    use std::sync::Arc;

    use kata_agent::linux::{LinuxMounter, LinuxSysfs, LinuxSystem};

    let fake = agent_fakes::FakeHost::new();
    let host = kata_agent::host::Host {
        sysfs: Arc::new(LinuxSysfs::new("/")),
        mounter: Arc::new(LinuxMounter::new()),
        system: Arc::new(LinuxSystem::new()),
        ..fake.host()
    };
    let metrics = kata_agent::guest::Metrics::new();
    let text = metrics.scrape(&host).unwrap();
    let value = |prefix: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("kata_agent_threads ") >= 1.0);
    assert!(value("kata_agent_total_rss ") > 0.0);
    assert!(value("kata_agent_total_vm ") > 0.0);
    assert!(value("kata_guest_meminfo{item=\"mem_total\"}") > 0.0);
    assert!(value("kata_guest_tasks{item=\"max\"}") >= 1.0);
    assert!(value("kata_guest_cpu_time{cpu=\"total\",item=\"user\"}") > 0.0);
    assert!(text.contains("kata_guest_vm_stat{item=\"pgfault\"}"));
    assert!(text.contains("kata_guest_netdev_stat{interface=\"lo\",item=\"recv_bytes\"}"));
    assert_eq!(value("kata_agent_scrape_count "), 1.0);
}
