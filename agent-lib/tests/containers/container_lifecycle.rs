//! The container lifecycle end to end over ttrpc on fakes: sandbox, containers, execs, stdio,
//! signals, pause/resume, update, stats, OOM events, removal, DestroySandbox; nothing left.

use std::path::Path;

use agent_fakes::Op;
use agent_protos::{agent as pb, oci};
use agent_testing::pod::{self, Pod, code, ctx};
use kata_agent::host::{CgroupStats, LaunchTarget, NamespaceKind, PidsStats, StdioMode};
use protobuf::MessageField;
use ttrpc::Code;

#[tokio::test]
async fn a_container_runs_execs_and_goes_away_leaving_nothing() {
    let pod = Pod::with_sandbox().await;
    pod.create("c1", &["sleep"], false).await.unwrap();

    // The init is held until StartContainer, in the container's cgroup, with the setup.
    let init = pod.pid("c1", "");
    let record = pod.fake.launcher.record(init).unwrap();
    assert!(record.held);
    assert!(record.request.hold);
    let LaunchTarget::ContainerInit(setup) = &record.request.target else {
        panic!("not a container init: {:?}", record.request.target);
    };
    assert_eq!(setup.id, "c1");
    let root = setup.spec.root().as_ref().unwrap();
    assert_eq!(root.path(), Path::new("/run/kata-containers/c1/rootfs"));
    let ns = setup
        .spec
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .clone()
        .unwrap();
    let path_of = |t: &str| {
        ns.iter()
            .find(|n| n.typ().to_string() == t)
            .and_then(|n| n.path().clone())
    };
    assert_eq!(path_of("ipc").unwrap(), Path::new("/run/sandbox-ns/ipc"));
    assert_eq!(path_of("uts").unwrap(), Path::new("/run/sandbox-ns/uts"));
    assert!(ns.iter().any(|n| n.typ().to_string() == "pid"));
    assert_eq!(pod.cgroup("c1").pids, vec![init]);
    assert_eq!(
        pod.cgroup("c1")
            .resources
            .memory()
            .as_ref()
            .unwrap()
            .limit(),
        Some(128 << 20)
    );
    let bind = pod
        .fake
        .mounter
        .top(Path::new("/run/kata-containers/c1/rootfs"))
        .expect("rootfs bind");
    assert_eq!(
        bind.source,
        "/run/kata-containers/shared/containers/c1/rootfs"
    );
    assert!(
        pod.fake
            .sysfs
            .contents("/run/kata-containers/c1/config.json")
            .is_some()
    );

    pod.start("c1").await.unwrap();
    assert!(!pod.fake.launcher.record(init).unwrap().held);

    // An exec: stdout, stderr, exit code; it ran inside the container's cgroup.
    pod.exec("c1", "e1", &["hello"], false).await.unwrap();
    let e1 = pod.pid("c1", "e1");
    let record = pod.fake.launcher.record(e1).unwrap();
    assert!(matches!(
        record.request.target,
        LaunchTarget::ContainerExec { init_pid, .. } if init_pid == init
    ));
    assert_eq!(record.request.stdio, StdioMode::Pipes);
    assert_eq!(pod.read_all("c1", "e1").await, b"hello\n");
    assert_eq!(pod.read_stderr("c1", "e1").await.unwrap(), b"oops\n");
    assert_eq!(pod.wait("c1", "e1").await.unwrap(), 0);
    assert_eq!(code(pod.wait("c1", "e1").await), Code::NOT_FOUND);

    // A failing exec.
    pod.exec("c1", "e2", &["fail3"], false).await.unwrap();
    assert_eq!(pod.wait("c1", "e2").await.unwrap(), 3);

    // Removal: everything undone.
    pod.remove("c1", 0).await.unwrap();
    assert_eq!(code(pod.start("c1").await), Code::NOT_FOUND);
    assert!(pod.fake.sysfs.kind("/run/kata-containers/c1").is_none());
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
    pod.shutdown().await;
}

#[tokio::test]
async fn stdin_round_trips_and_empty_data_is_end_of_file() {
    let pod = Pod::with_sandbox().await;
    pod.run("c1", &["sleep"]).await;
    pod.exec("c1", "cat", &["cat"], false).await.unwrap();
    assert_eq!(pod.write_stdin("c1", "cat", b"ping\n").await.unwrap(), 5);
    assert_eq!(pod.read_stdout("c1", "cat").await.unwrap(), b"ping\n");
    assert_eq!(pod.write_stdin("c1", "cat", b"").await.unwrap(), 0);
    assert_eq!(pod.read_all("c1", "cat").await, b"");
    assert_eq!(pod.wait("c1", "cat").await.unwrap(), 0);
    // CloseStdin of a process that closed already is fine; writing after close is not.
    pod.exec("c1", "cat2", &["cat"], false).await.unwrap();
    let req = pb::CloseStdinRequest {
        container_id: "c1".into(),
        exec_id: "cat2".into(),
        ..Default::default()
    };
    pod.client.agent.close_stdin(ctx(), &req).await.unwrap();
    pod.client.agent.close_stdin(ctx(), &req).await.unwrap();
    assert_eq!(
        code(pod.write_stdin("c1", "cat2", b"late").await),
        Code::FAILED_PRECONDITION
    );
    assert_eq!(pod.wait("c1", "cat2").await.unwrap(), 0);
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn a_tty_process_reads_and_writes_the_pty_master() {
    let pod = Pod::with_sandbox().await;
    pod.run("c1", &["sleep"]).await;
    pod.exec("c1", "tty", &["cat"], true).await.unwrap();
    let record = pod.fake.launcher.record(pod.pid("c1", "tty")).unwrap();
    assert_eq!(record.request.stdio, StdioMode::Pty);
    pod.write_stdin("c1", "tty", b"hi\n").await.unwrap();
    // The terminal echoes the input, and cat writes it back: both come from the master.
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).matches("hi").count().ge(&2) {
        let chunk = pod.read_stdout("c1", "tty").await.unwrap();
        assert!(!chunk.is_empty(), "EOF before the echo: {seen:?}");
        seen.extend(chunk);
    }
    let resize = pb::TtyWinResizeRequest {
        container_id: "c1".into(),
        exec_id: "tty".into(),
        row: 40,
        column: 120,
        ..Default::default()
    };
    pod.client
        .agent
        .tty_win_resize(ctx(), &resize)
        .await
        .unwrap();
    // Closing stdin of a tty sends end of file: cat ends.
    pod.write_stdin("c1", "tty", b"").await.unwrap();
    assert_eq!(pod.wait("c1", "tty").await.unwrap(), 0);

    // A resize of a process without a tty is UNAVAILABLE, as Kata.
    pod.exec("c1", "plain", &["sleep"], false).await.unwrap();
    let resize = pb::TtyWinResizeRequest {
        exec_id: "plain".into(),
        ..resize
    };
    assert_eq!(
        code(pod.client.agent.tty_win_resize(ctx(), &resize).await),
        Code::UNAVAILABLE
    );
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn signals_follow_kata() {
    let pod = Pod::with_sandbox().await;
    pod.run("c1", &["sleep"]).await;

    // An exec killed by SIGTERM exits 128+15.
    pod.exec("c1", "e1", &["sleep"], false).await.unwrap();
    pod.signal("c1", "e1", libc::SIGTERM).await.unwrap();
    assert_eq!(pod.wait("c1", "e1").await.unwrap(), 128 + libc::SIGTERM);
    // Signalling a process that is gone (waited) is NOT_FOUND; one that exited is fine.
    assert_eq!(
        code(pod.signal("c1", "e1", libc::SIGTERM).await),
        Code::NOT_FOUND
    );
    pod.exec("c1", "e2", &["fail3"], false).await.unwrap();
    pod.agent
        .containers()
        .process("c1", "e2")
        .unwrap()
        .wait()
        .await;
    pod.signal("c1", "e2", libc::SIGKILL).await.unwrap();

    // An exec that handles SIGTERM keeps it.
    pod.exec("c1", "trap", &["trap-term"], false).await.unwrap();
    pod.signal("c1", "trap", libc::SIGTERM).await.unwrap();
    assert_eq!(pod.wait("c1", "trap").await.unwrap(), 0);

    // SIGTERM to an init that does not handle it becomes SIGKILL.
    let init = pod.pid("c1", "");
    pod.signal("c1", "", libc::SIGTERM).await.unwrap();
    assert_eq!(pod.wait("c1", "").await.unwrap(), 128 + libc::SIGKILL);
    assert_eq!(
        pod.fake.launcher.record(init).unwrap().signals,
        vec![libc::SIGKILL]
    );
    assert_eq!(code(pod.signal("c1", "", 65).await), Code::INVALID_ARGUMENT);
    pod.remove("c1", 0).await.unwrap();

    // An init that handles SIGTERM gets SIGTERM.
    pod.run("c2", &["trap-term"]).await;
    let init = pod.pid("c2", "c2");
    pod.signal("c2", "c2", libc::SIGTERM).await.unwrap();
    assert_eq!(pod.wait("c2", "c2").await.unwrap(), 0);
    assert_eq!(
        pod.fake.launcher.record(init).unwrap().signals,
        vec![libc::SIGTERM]
    );
    pod.remove("c2", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn sigkill_to_all_freezes_kills_every_cgroup_member_and_thaws() {
    let pod = Pod::with_sandbox().await;
    pod.run("c1", &["sleep"]).await;
    pod.exec("c1", "e1", &["sleep"], false).await.unwrap();
    pod.exec("c1", "e2", &["sleep"], false).await.unwrap();
    let freezes = pod.fake.faults.calls(Op::CgroupFreeze);
    pod.signal("c1", "", libc::SIGKILL).await.unwrap();
    assert_eq!(pod.fake.faults.calls(Op::CgroupFreeze), freezes + 2);
    assert!(!pod.cgroup("c1").frozen);
    for eid in ["e1", "e2", ""] {
        assert_eq!(
            pod.wait("c1", eid).await.unwrap(),
            128 + libc::SIGKILL,
            "{eid}"
        );
    }
    assert!(pod.cgroup("c1").pids.is_empty());
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn parallel_waiters_all_get_the_exit_code() {
    let pod = Pod::with_sandbox().await;
    pod.run("c1", &["sleep"]).await;
    pod.exec("c1", "e1", &["sleep"], false).await.unwrap();
    let waits = (0..3).map(|_| pod.wait("c1", "e1")).collect::<Vec<_>>();
    let all = futures::future::join_all(waits);
    let signal = async {
        // Let every waiter register first.
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        pod.signal("c1", "e1", libc::SIGKILL).await.unwrap();
    };
    let (codes, ()) = tokio::join!(all, signal);
    for code in codes {
        assert_eq!(code.unwrap(), 137);
    }
    pod.remove("c1", 0).await.unwrap();
}

#[tokio::test]
async fn pause_resume_update_and_stats() {
    let pod = Pod::with_sandbox().await;
    pod.run("c1", &["sleep"]).await;
    pod.client.pause_container("c1").await.unwrap();
    assert!(pod.cgroup("c1").frozen);
    assert_eq!(
        code(pod.client.pause_container("c1").await),
        Code::FAILED_PRECONDITION
    );
    pod.client.resume_container("c1").await.unwrap();
    assert!(!pod.cgroup("c1").frozen);
    assert_eq!(
        code(pod.client.resume_container("c1").await),
        Code::FAILED_PRECONDITION
    );

    let pids = oci::LinuxResources {
        Pids: MessageField::some(oci::LinuxPids {
            Limit: 42,
            ..Default::default()
        }),
        ..Default::default()
    };
    pod.client.update_container("c1", pids).await.unwrap();
    let state = pod.cgroup("c1");
    assert_eq!(state.resources.pids().as_ref().unwrap().limit(), 42);
    assert_eq!(
        state.resources.memory().as_ref().unwrap().limit(),
        Some(128 << 20)
    );

    let init = pod.pid("c1", "");
    pod.fake
        .cgroups
        .set_stats(
            "/c1",
            CgroupStats {
                pids: PidsStats {
                    current: 1,
                    limit: 42,
                },
                ..Default::default()
            },
        )
        .unwrap();
    pod.fake
        .sysfs
        .write_file(
            format!("/proc/{init}/net/dev"),
            "Inter-|   Receive  |  Transmit\n face |bytes packets|bytes\n  \
             eth0: 100 2 0 0 0 0 0 0 300 4 0 1 0 0 0 0\n",
        )
        .unwrap();
    let reply = pod.client.stats_container("c1").await.unwrap();
    assert_eq!(reply.cgroup_stats.pids_stats.current, 1);
    assert_eq!(reply.cgroup_stats.pids_stats.limit, 42);
    assert_eq!(reply.network_stats.len(), 1);
    let eth0 = &reply.network_stats[0];
    assert_eq!(
        (
            eth0.name.as_str(),
            eth0.rx_bytes,
            eth0.tx_packets,
            eth0.tx_dropped
        ),
        ("eth0", 100, 4, 1)
    );
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn oom_kills_reach_get_oom_event_and_destroy_sandbox_ends_the_poll() {
    let pod = Pod::with_sandbox().await;
    pod.run("c1", &["sleep"]).await;
    // The sandbox's own container (id = sandbox id) is not watched, as Kata.
    pod.run("sb", &["pause"]).await;
    assert_eq!(pod.fake.cgroups.trigger_oom("/c1").unwrap(), 1);
    assert_eq!(pod.fake.cgroups.trigger_oom("/sb").unwrap(), 0);
    let req = pb::GetOOMEventRequest::default();
    let event = pod.client.agent.get_oom_event(ctx(), &req).await.unwrap();
    assert_eq!(event.container_id, "c1");

    let poll = pod.client.agent.get_oom_event(ctx(), &req);
    let destroy = async {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        pod.destroy_sandbox().await
    };
    let (polled, destroyed) = tokio::join!(poll, destroy);
    destroyed.unwrap();
    assert_eq!(code(polled), Code::INTERNAL);
    pod.agent.stopped().await;
    assert!(pod.agent.containers().ids().is_empty());
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn create_sandbox_sets_hostname_dns_namespaces_hooks_and_modules() {
    let pod = Pod::new().await;
    let sysfs = &pod.fake.sysfs;
    sysfs
        .write_file("/etc/resolv.conf", "nameserver 127.0.0.1\n")
        .unwrap();
    use kata_agent::host::AgentFiles;
    sysfs.create_dir_all(Path::new("/hooks/prestart")).unwrap();
    sysfs
        .create_file(Path::new("/hooks/prestart/net.sh"), b"#!/bin/sh\n", 0o755)
        .unwrap();
    sysfs
        .create_file(Path::new("/hooks/prestart/README"), b"not a hook", 0o644)
        .unwrap();
    let req = pb::CreateSandboxRequest {
        hostname: "pod".into(),
        sandbox_id: "sb".into(),
        dns: vec!["nameserver 10.0.0.10".into(), " search svc.local ".into()],
        guest_hook_path: "/hooks".into(),
        kernel_modules: vec![pb::KernelModule {
            name: "virtio_net".into(),
            parameters: vec!["napi_tx=1".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    pod.client.agent.create_sandbox(ctx(), &req).await.unwrap();
    assert_eq!(pod.fake.system.hostname(), "pod");
    let pinned = pod.fake.system.pinned();
    assert_eq!(pinned.len(), 2);
    assert_eq!(pinned[1].0, NamespaceKind::Uts);
    assert_eq!(pinned[1].1.as_deref(), Some("pod"));
    assert_eq!(
        sysfs
            .contents("/run/kata-containers/sandbox/resolv.conf")
            .unwrap(),
        b"nameserver 10.0.0.10\nsearch svc.local\n"
    );
    let bind = pod.fake.mounter.top(Path::new("/etc/resolv.conf")).unwrap();
    assert_eq!(bind.source, "/run/kata-containers/sandbox/resolv.conf");
    let modprobe = pod
        .fake
        .launcher
        .launches()
        .into_iter()
        .find(|r| r.request.process.args[0].ends_with("modprobe"))
        .unwrap();
    assert_eq!(
        modprobe.request.process.args,
        ["/sbin/modprobe", "-v", "virtio_net", "napi_tx=1"]
    );
    let hooks = pod.agent.sandbox().guest_hooks().unwrap();
    let prestart = hooks.prestart().clone().unwrap();
    assert_eq!(prestart.len(), 1, "{prestart:?}");
    assert_eq!(prestart[0].path(), Path::new("/hooks/prestart/net.sh"));
    assert_eq!(
        code(pod.client.agent.create_sandbox(ctx(), &req).await),
        Code::ALREADY_EXISTS
    );

    // Guest hooks run for every container (prestart: once its namespaces exist).
    pod.fake
        .launcher
        .script("/hooks/prestart/net.sh", agent_fakes::Script::exit(0));

    // The first container's pid namespace becomes the sandbox's; later ones may join it.
    pod.run("sb", &["pause"]).await;
    let mut req = pod::container_request("c2", &["sleep"], false);
    req.sandbox_pidns = true;
    pod.create_req(req).await.unwrap();
    let record = pod.fake.launcher.record(pod.pid("c2", "")).unwrap();
    let LaunchTarget::ContainerInit(setup) = &record.request.target else {
        panic!()
    };
    let pidns = setup
        .spec
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .clone()
        .unwrap()
        .into_iter()
        .find(|n| n.typ().to_string() == "pid")
        .unwrap();
    // The first init's pid namespace, pinned by a bind mount (never /proc/<pid>/ns/pid, which
    // names whatever process has that pid later).
    assert_eq!(
        pidns.path().clone().unwrap(),
        Path::new("/run/sandbox-ns/pid")
    );
    let pin = pod.fake.mounter.top(Path::new("/run/sandbox-ns/pid"));
    assert_eq!(pin.map(|m| m.fstype), Some("nsfs".to_owned()));
    let hooks = setup.spec.hooks().clone().unwrap();
    assert_eq!(hooks.prestart().as_ref().unwrap().len(), 1);
    let hook_runs = pod
        .fake
        .launcher
        .launches()
        .into_iter()
        .filter(|r| r.request.process.args[0] == "/hooks/prestart/net.sh")
        .filter(|r| r.request.target == LaunchTarget::Host && r.exit.is_some())
        .count();
    assert_eq!(
        hook_runs, 2,
        "the guest prestart hook ran once per container"
    );

    pod.destroy_sandbox().await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn a_failing_kernel_module_fails_create_sandbox_and_leaves_nothing() {
    let pod = Pod::new().await;
    pod.fake.launcher.script(
        "modprobe",
        agent_fakes::Script::exit(1).stderr("modprobe: FATAL: Module nope not found\n"),
    );
    let req = pb::CreateSandboxRequest {
        kernel_modules: vec![pb::KernelModule {
            name: "nope".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let err = pod.client.agent.create_sandbox(ctx(), &req).await;
    let msg = pod::message(err);
    assert!(msg.contains("nope") && msg.contains("FATAL"), "{msg}");
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
    // A retry may succeed.
    pod.create_sandbox().await.unwrap();
}
