//! The real end-to-end proof of containers: the `kata-agent` binary, started outside a VM as
//! root (in its own mount, UTS and network namespaces), driven only over ttrpc exactly as a Kata
//! runtime drives it, with real busybox containers: CreateSandbox, CreateContainer with a Kata
//! OCI spec, StartContainer, ExecProcess and stdio, ttys, signals, pause and resume, cgroup
//! updates and statistics, OOM events, RemoveContainer and DestroySandbox.
//!
//! Each test starts its own agent on its own socket with unique ids; agents run one at a time
//! (a file lock: they share cgroupfs and `/run`) and are cleaned up on failure too (see
//! `support::real_agent`). Needs root, cgroup v1 with the memory, cpu, pids and freezer
//! controllers (the cgroup files checked are v1's), and Debian's busybox-static.

use std::time::{Duration, Instant};

use agent_protos::oci;
use protobuf::MessageField;

use agent_testing::host_state::{cgroup_dirs, cgroup_file, cgroup_pids, cpu_ticks, stat_state};
use agent_testing::real_agent::{PAUSE, RealAgent};
use agent_testing::timed_ctx;
use agent_testing::wire::{code, memory_limit, spec};

/// A sandbox as the Kata runtime makes it: CreateSandbox, then its infra container (whose id is
/// the sandbox id), then a started workload container whose init sleeps, with `resources`.
/// Returns the agent and the workload's id.
async fn pod(test: &str, resources: Option<oci::LinuxResources>) -> (RealAgent, String) {
    let agent = RealAgent::with_infra(test, "e2e-pod").await;
    let cid = agent.id("c1");
    let root = agent.rootfs("rootfs");
    agent
        .run_container(&cid, spec(&root, &["sleep", "1000000"], false, resources))
        .await;
    (agent, cid)
}

/// Reads stdout of `eid` until it contains `needle`; returns all read.
async fn read_until(agent: &RealAgent, cid: &str, eid: &str, needle: &str) -> String {
    let mut out = String::new();
    while !out.contains(needle) {
        let chunk = agent.read(cid, eid, false).await;
        assert!(
            !chunk.is_empty(),
            "end of stream before {needle:?}: {out:?}"
        );
        out.push_str(&String::from_utf8_lossy(&chunk));
    }
    out
}

#[tokio::test]
#[ignore = "needs root: real containers"]
async fn exec_output_exit_codes_and_a_stdin_round_trip() {
    let (agent, cid) = pod("exec", None).await;

    let script = "hostname; cat /marker; echo oops >&2; exit 3";
    agent.exec(&cid, "e1", &["sh", "-c", script], false).await;
    assert_eq!(agent.read_all(&cid, "e1", false).await, "e2e-pod\ninside\n");
    assert_eq!(agent.read_all(&cid, "e1", true).await, "oops\n");
    assert_eq!(agent.wait(&cid, "e1").await, 3);
    // Waited for: the process is forgotten.
    let again = agent
        .client
        .agent
        .wait_process(
            timed_ctx(),
            &agent_protos::agent::WaitProcessRequest {
                container_id: cid.clone(),
                exec_id: "e1".into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(code(&again), ttrpc::Code::NOT_FOUND);

    // A program that does not exist: ExecProcess fails and names it; nothing is left.
    let req = agent_protos::agent::ExecProcessRequest {
        container_id: cid.clone(),
        exec_id: "nope".into(),
        process: MessageField::some(agent_testing::wire::process(&["no-such-program"], false)),
        ..Default::default()
    };
    let refused = agent.client.agent.exec_process(timed_ctx(), &req).await;
    assert_ne!(code(&refused), ttrpc::Code::OK);
    assert!(
        format!("{refused:?}").contains("no-such-program"),
        "{refused:?}"
    );
    assert_eq!(cgroup_pids(&cid).len(), 1, "only the init is in the cgroup");

    agent.exec(&cid, "cat", &["cat"], false).await;
    assert_eq!(agent.write_stdin(&cid, "cat", b"hello\n").await, 6);
    assert_eq!(read_until(&agent, &cid, "cat", "\n").await, "hello\n");
    assert_eq!(agent.write_stdin(&cid, "cat", b"world").await, 5);
    assert_eq!(read_until(&agent, &cid, "cat", "world").await, "world");
    // Empty WriteStdin closes stdin: cat sees end of file and exits.
    assert_eq!(agent.write_stdin(&cid, "cat", b"").await, 0);
    assert_eq!(agent.read_all(&cid, "cat", false).await, "");
    assert_eq!(agent.wait(&cid, "cat").await, 0);

    agent.destroy_and_exit().await;
}

#[tokio::test]
#[ignore = "needs root: real containers"]
async fn a_tty_process_sees_its_window_size() {
    let (agent, cid) = pod("tty", None).await;
    let script = "test -t 0 && test -t 1 && echo is-a-tty; \
                  read a; stty size; read b; stty size; echo bye";
    agent.exec(&cid, "tty", &["sh", "-c", script], true).await;
    read_until(&agent, &cid, "tty", "is-a-tty").await;
    agent.resize(&cid, "tty", 33, 101).await;
    agent.write_stdin(&cid, "tty", b"1\n").await;
    read_until(&agent, &cid, "tty", "33 101").await;
    agent.resize(&cid, "tty", 40, 120).await;
    agent.write_stdin(&cid, "tty", b"2\n").await;
    let rest = read_until(&agent, &cid, "tty", "bye").await;
    assert!(rest.contains("40 120"), "{rest:?}");
    assert_eq!(agent.wait(&cid, "tty").await, 0);
    // A resize of a process without a terminal is refused.
    agent.exec(&cid, "plain", &["sleep", "1000"], false).await;
    let refused = agent
        .client
        .agent
        .tty_win_resize(
            timed_ctx(),
            &agent_protos::agent::TtyWinResizeRequest {
                container_id: cid.clone(),
                exec_id: "plain".into(),
                row: 10,
                column: 10,
                ..Default::default()
            },
        )
        .await;
    assert_ne!(code(&refused), ttrpc::Code::OK);
    agent.destroy_and_exit().await;
}

#[tokio::test]
#[ignore = "needs root: real containers"]
async fn signals_end_processes_with_128_plus_the_signal() {
    let (agent, cid) = pod("signal", None).await;

    agent.exec(&cid, "term", &["sleep", "1000"], false).await;
    agent.signal(&cid, "term", libc::SIGTERM).await.unwrap();
    assert_eq!(agent.wait(&cid, "term").await, 128 + libc::SIGTERM);

    agent.exec(&cid, "kill", &["sleep", "1000"], false).await;
    agent.signal(&cid, "kill", libc::SIGKILL).await.unwrap();
    assert_eq!(agent.wait(&cid, "kill").await, 128 + libc::SIGKILL);

    // A handled signal: the process decides its exit code.
    let script = "trap 'exit 42' USR1; echo ready; while :; do sleep 0.1; done";
    agent.exec(&cid, "trap", &["sh", "-c", script], false).await;
    read_until(&agent, &cid, "trap", "ready").await;
    agent.signal(&cid, "trap", libc::SIGUSR1).await.unwrap();
    assert_eq!(agent.wait(&cid, "trap").await, 42);

    // SIGTERM to an init that does not handle it (pid 1 would ignore it) kills it.
    agent.signal(&cid, "", libc::SIGTERM).await.unwrap();
    assert_eq!(agent.wait(&cid, "").await, 128 + libc::SIGKILL);
    agent.remove(&cid).await;
    agent.destroy_and_exit().await;
}

#[tokio::test]
#[ignore = "needs root: real containers"]
async fn pause_freezes_every_process_and_resume_thaws_them() {
    let (agent, cid) = pod("pause", None).await;
    agent
        .exec(&cid, "busy", &["sh", "-c", "while :; do :; done"], false)
        .await;
    let pids = cgroup_pids(&cid);
    assert_eq!(pids.len(), 2, "the init and the busy loop: {pids:?}");
    let ticks = || pids.iter().map(|&p| cpu_ticks(p)).sum::<u64>();

    agent.pause(&cid).await;
    assert_eq!(cgroup_file("freezer", &cid, "freezer.state"), "FROZEN");
    let frozen = ticks();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ticks(), frozen, "a frozen process used CPU");
    for &pid in &pids {
        let (state, _) = stat_state(pid).unwrap();
        assert_ne!(state, 'R', "pid {pid} runs while paused");
    }
    // An exec could never start in a frozen cgroup: it is refused at once, and the agent keeps
    // serving (it used to wedge every RPC, waiting for the frozen process's exec).
    let req = agent_protos::agent::ExecProcessRequest {
        container_id: cid.clone(),
        exec_id: "late".into(),
        process: MessageField::some(agent_testing::wire::process(&["true"], false)),
        ..Default::default()
    };
    let refused = agent
        .client
        .agent
        .exec_process(agent_harness::context(Duration::from_secs(10)), &req)
        .await;
    assert_eq!(code(&refused), ttrpc::Code::FAILED_PRECONDITION);
    assert!(agent.stats(&cid).await.cgroup_stats.is_some());

    agent.resume(&cid).await;
    assert_eq!(cgroup_file("freezer", &cid, "freezer.state"), "THAWED");
    let thawed = ticks();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(ticks() > thawed, "the busy loop did not run after resume");

    agent.signal(&cid, "busy", libc::SIGKILL).await.unwrap();
    assert_eq!(agent.wait(&cid, "busy").await, 128 + libc::SIGKILL);
    // A sandbox destroyed while a container is paused still goes away entirely.
    agent.pause(&cid).await;
    agent.destroy_and_exit().await;
}

#[tokio::test]
#[ignore = "needs root: real containers"]
async fn update_sets_cgroup_limits_and_stats_are_real() {
    let (agent, cid) = pod("update", Some(memory_limit(256 << 20))).await;
    assert_eq!(
        cgroup_file("memory", &cid, "memory.limit_in_bytes"),
        (256u64 << 20).to_string()
    );
    let work =
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; head -c 4m /dev/zero > /dev/shm/f";
    agent.exec(&cid, "work", &["sh", "-c", work], false).await;
    assert_eq!(agent.wait(&cid, "work").await, 0);

    let resources = oci::LinuxResources {
        Memory: MessageField::some(oci::LinuxMemory {
            Limit: 64 << 20,
            ..Default::default()
        }),
        CPU: MessageField::some(oci::LinuxCPU {
            Shares: 512,
            Quota: 50_000,
            Period: 100_000,
            ..Default::default()
        }),
        Pids: MessageField::some(oci::LinuxPids {
            Limit: 100,
            ..Default::default()
        }),
        ..Default::default()
    };
    agent.update(&cid, resources).await;
    assert_eq!(
        cgroup_file("memory", &cid, "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(cgroup_file("cpu", &cid, "cpu.shares"), "512");
    assert_eq!(cgroup_file("cpu", &cid, "cpu.cfs_quota_us"), "50000");
    assert_eq!(cgroup_file("cpu", &cid, "cpu.cfs_period_us"), "100000");
    assert_eq!(cgroup_file("pids", &cid, "pids.max"), "100");

    let stats = agent.stats(&cid).await;
    let cg = stats.cgroup_stats.as_ref().expect("cgroup stats");
    let cpu = cg.cpu_stats.cpu_usage.as_ref().expect("cpu usage");
    assert!(cpu.total_usage > 0, "cpu usage: {cpu:?}");
    let memory = cg.memory_stats.as_ref().expect("memory stats");
    let usage = memory.usage.as_ref().expect("memory usage");
    assert!(usage.usage > 0, "memory usage: {usage:?}");
    assert_eq!(usage.limit, 64 << 20, "memory limit: {usage:?}");
    assert!(usage.max_usage >= usage.usage, "{usage:?}");
    assert!(!memory.stats.is_empty(), "memory.stat entries");
    let pids = cg.pids_stats.as_ref().expect("pids stats");
    assert_eq!(pids.current, 1, "the init alone: {pids:?}");
    assert_eq!(pids.limit, 100, "{pids:?}");
    agent.destroy_and_exit().await;
}

#[tokio::test]
#[ignore = "needs root: real containers"]
async fn an_oom_kill_is_reported_by_get_oom_event() {
    let (agent, cid) = pod("oom", Some(memory_limit(32 << 20))).await;
    let client = agent.client.clone();
    let oom = tokio::spawn(async move {
        client
            .agent
            .get_oom_event(
                agent_testing::ctx(),
                &agent_protos::agent::GetOOMEventRequest::default(),
            )
            .await
    });
    // tail keeps everything until the end of its (newline-free) input: 300 MiB in 32.
    let hog = "head -c 300m /dev/zero | tail";
    agent.exec(&cid, "hog", &["sh", "-c", hog], false).await;
    assert_eq!(agent.wait(&cid, "hog").await, 128 + libc::SIGKILL);
    let event = tokio::time::timeout(Duration::from_secs(10), oom)
        .await
        .expect("an OOM event within 10 s")
        .unwrap()
        .expect("GetOOMEvent");
    assert_eq!(event.container_id, cid);
    let control = cgroup_file("memory", &cid, "memory.oom_control");
    // The killer may take more than one process of the pipeline: at least one kill.
    let kills: u64 = control
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(kills >= 1, "{control}");
    agent.destroy_and_exit().await;
}

#[tokio::test]
#[ignore = "needs root: real containers"]
async fn remove_leaves_no_mount_cgroup_or_process() {
    let agent = RealAgent::with_sandbox("remove", "e2e-pod").await;
    let agent_mounts = agent.mountinfo();
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let cid = agent.id("c1");
    let root = agent.rootfs("rootfs");
    for round in 0..2 {
        // The same id twice: a removed container leaves nothing in the way.
        agent
            .run_container(
                &cid,
                spec(
                    &root,
                    &["sleep", "1000000"],
                    false,
                    Some(memory_limit(128 << 20)),
                ),
            )
            .await;
        // A process that is not the agent's child: only the cgroup knows it.
        let script = "sleep 1000 & echo started; wait";
        agent.exec(&cid, "bg", &["sh", "-c", script], false).await;
        read_until(&agent, &cid, "bg", "started").await;
        assert_eq!(cgroup_pids(&cid).len(), 3, "round {round}");
        let during = agent.mountinfo();
        assert!(
            during.contains(&format!("/run/kata-containers/{cid}/rootfs")),
            "round {round}: the rootfs bind is missing:\n{during}"
        );
        assert!(!cgroup_dirs(&cid).is_empty());

        agent.remove(&cid).await;
        assert_eq!(
            agent.mountinfo(),
            agent_mounts,
            "round {round}: a mount was left"
        );
        assert_eq!(cgroup_dirs(&cid), Vec::<std::path::PathBuf>::new());
        let bundle = std::path::Path::new("/run/kata-containers").join(&cid);
        assert!(!bundle.exists(), "{} left", bundle.display());
        let children = agent.children();
        assert!(
            children.is_empty(),
            "round {round}: processes left: {children:?}"
        );
    }
    let host_now = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let ours = |table: &str| -> Vec<String> {
        table
            .lines()
            .filter(|l| l.contains("kata-containers") || l.contains("sandbox-ns"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        ours(&host_now),
        ours(&host_mounts),
        "the host namespace changed"
    );
    agent.destroy_and_exit().await;
}

#[tokio::test]
#[ignore = "needs root: real containers"]
async fn a_thousand_short_execs_leave_no_zombie_and_no_descriptor() {
    let (agent, cid) = pod("zombies", None).await;
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", agent.pid()))
            .unwrap()
            .count()
    };
    let fds_before = fds();
    let started = Instant::now();
    for i in 0..1000 {
        let eid = format!("t{i}");
        agent.exec(&cid, &eid, &["true"], false).await;
        assert_eq!(agent.wait(&cid, &eid).await, 0, "exec {i}");
    }
    eprintln!("1000 ExecProcess+WaitProcess in {:?}", started.elapsed());
    let children = agent.children();
    let zombies: Vec<_> = children.iter().filter(|(_, s)| *s == 'Z').collect();
    assert!(zombies.is_empty(), "zombies: {zombies:?}");
    assert_eq!(
        children.len(),
        2,
        "only the two inits are left: {children:?}"
    );
    let fds_after = fds();
    assert!(
        fds_after <= fds_before + 2,
        "descriptors grew from {fds_before} to {fds_after}"
    );
    agent.destroy_and_exit().await;
}

#[tokio::test]
#[ignore = "needs root: real containers"]
async fn an_overlay_rootfs_storage_is_mounted_used_and_released() {
    let agent = RealAgent::with_sandbox("overlay", "e2e-pod").await;
    let agent_mounts = agent.mountinfo();
    let cid = agent.id("c1");
    // The image layer stays untouched; the container writes to its own upper layer.
    let lower = agent.rootfs("lower");
    let upper = agent.path("upper");
    let work = agent.path("work");
    let shared = std::path::PathBuf::from(format!(
        "/run/kata-containers/shared/containers/{cid}/rootfs"
    ));
    let storage = agent_protos::agent::Storage {
        driver: "overlayfs".into(),
        source: "overlay".into(),
        fstype: "overlay".into(),
        options: vec![
            format!("lowerdir={}", lower.display()),
            format!("upperdir={}", upper.display()),
            format!("workdir={}", work.display()),
        ],
        mount_point: shared.to_string_lossy().into_owned(),
        ..Default::default()
    };
    let mut req = agent_testing::wire::create_request(
        &cid,
        spec(&shared, &["sleep", "1000000"], false, None),
        false,
    );
    req.storages.push(storage);
    agent
        .client
        .agent
        .create_container(timed_ctx(), &req)
        .await
        .expect("CreateContainer with a rootfs storage");
    agent.start_container(&cid).await.expect("StartContainer");

    let script = "echo new > /written; cat /marker /written";
    agent.exec(&cid, "w", &["sh", "-c", script], false).await;
    assert_eq!(agent.read_all(&cid, "w", false).await, "inside\nnew\n");
    assert_eq!(agent.wait(&cid, "w").await, 0);
    assert!(
        upper.join("written").exists(),
        "the write went to the upper layer"
    );
    assert!(
        !lower.join("written").exists(),
        "the image layer was written to"
    );

    agent.remove(&cid).await;
    assert_eq!(agent.mountinfo(), agent_mounts, "a mount was left");
    assert!(!shared.exists(), "{} left", shared.display());
    let shared_dir = std::path::Path::new("/run/kata-containers/shared/containers");
    let left: Vec<_> = std::fs::read_dir(shared_dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{} holds {left:?}", shared_dir.display());
    agent.destroy_and_exit().await;
}

#[tokio::test]
#[ignore = "needs root: real containers"]
async fn a_container_init_has_stdio_a_console_and_the_sandbox_pid_namespace() {
    let (agent, _) = pod("init", None).await;

    // An init on pipes, in the sandbox pid namespace (pid 1 is the infra container's).
    let cid = agent.id("c2");
    let root = agent.rootfs("rootfs2");
    let script = "echo init-out; read x; echo got $x; cat /proc/1/cmdline; echo; exit 5";
    agent
        .create_container(&cid, spec(&root, &["sh", "-c", script], false, None), true)
        .await
        .expect("CreateContainer");
    agent.start_container(&cid).await.expect("StartContainer");
    read_until(&agent, &cid, "", "init-out").await;
    agent.write_stdin(&cid, "", b"hi\n").await;
    let rest = agent.read_all(&cid, "", false).await;
    assert!(rest.contains("got hi"), "{rest:?}");
    assert!(
        rest.contains(&PAUSE.join("\0")),
        "pid 1 is not the infra container's: {rest:?}"
    );
    assert_eq!(agent.wait(&cid, "").await, 5);

    // An init on a terminal of the spec's console size.
    let tty = agent.id("c3");
    let root = agent.rootfs("rootfs3");
    let mut tty_spec = spec(
        &root,
        &["sh", "-c", "stty size; test -t 0 && echo tty"],
        true,
        None,
    );
    tty_spec.Process.as_mut().unwrap().ConsoleSize = MessageField::some(oci::Box {
        Height: 24,
        Width: 80,
        ..Default::default()
    });
    agent.run_container(&tty, tty_spec).await;
    let out = agent.read_all(&tty, "", false).await;
    assert!(out.contains("24 80") && out.contains("tty"), "{out:?}");
    assert_eq!(agent.wait(&tty, "").await, 0);
    agent.destroy_and_exit().await;
}
