//! Fault injection at every OS call of CreateContainer, CreateSandbox, ExecProcess and
//! RemoveContainer: each failure is reported and leaves nothing behind.

use std::time::Duration;

use agent_fakes::{FaultPoint, Op};
use agent_testing::pod::{self, Pod, code, message};
use nix::errno::Errno;
use ttrpc::Code;

/// The fault points of one CreateContainer on a fresh pod with a sandbox.
async fn create_points() -> Vec<FaultPoint> {
    let pod = Pod::with_sandbox().await;
    let before = pod.fake.faults.counts();
    pod.create("c1", &["sleep"], false).await.unwrap();
    let points = pod.fake.faults.points_since(&before);
    pod.remove("c1", 0).await.unwrap();
    points
}

#[tokio::test]
async fn every_os_call_of_create_container_can_fail_without_leaking() {
    let points = create_points().await;
    for op in [
        Op::Mounts,
        Op::SysfsCreateDir,
        Op::Mount,
        Op::SysfsCreateFile,
        Op::CgroupCreate,
        Op::CgroupSet,
        Op::Launch,
        Op::CgroupAddProcess,
    ] {
        assert!(
            points.iter().any(|p| p.op == op),
            "{op:?} not among {points:?}"
        );
    }
    for point in points {
        let pod = Pod::with_sandbox().await;
        pod.fake.faults.fail_nth(point.op, point.nth, Errno::EIO);
        let result = pod.create("c1", &["sleep"], false).await;
        assert_eq!(code(result), Code::INTERNAL, "{point}");
        assert_eq!(pod.fake.faults.pending(), 0, "{point} did not fire");
        assert!(
            pod.fake.leftovers().is_empty(),
            "{point}: {}",
            pod.fake.leftovers()
        );
        assert!(
            pod.fake.launcher.live().is_empty(),
            "{point}: a process runs"
        );
        assert!(
            pod.fake.sysfs.kind("/run/kata-containers/c1").is_none(),
            "{point}: bundle left"
        );
        assert!(pod.agent.containers().ids().is_empty(), "{point}");
        // The same request succeeds afterwards, and its removal leaves nothing.
        pod.create("c1", &["sleep"], false).await.unwrap();
        pod.start("c1").await.unwrap();
        pod.remove("c1", 0).await.unwrap();
        assert!(
            pod.fake.leftovers().is_empty(),
            "{point}: {}",
            pod.fake.leftovers()
        );
    }
}

#[tokio::test]
async fn a_failed_step_is_named_in_the_error() {
    let pod = Pod::with_sandbox().await;
    pod.fake
        .faults
        .fail_next(Op::CgroupAddProcess, Errno::ENOSPC);
    let msg = message(pod.create("c1", &["sleep"], false).await);
    assert!(
        msg.contains("add pid") && msg.contains("cgroup /c1"),
        "{msg}"
    );
    pod.fake.faults.fail_next(Op::Mount, Errno::EPERM);
    let msg = message(pod.create("c1", &["sleep"], false).await);
    assert!(msg.contains("bind") && msg.contains("rootfs"), "{msg}");
}

#[tokio::test]
async fn every_os_call_of_create_sandbox_can_fail_without_leaking() {
    let probe = Pod::new().await;
    probe.fake.sysfs.write_file("/etc/resolv.conf", "").unwrap();
    let before = probe.fake.faults.counts();
    let req = agent_protos::agent::CreateSandboxRequest {
        hostname: "pod".into(),
        dns: vec!["nameserver 10.0.0.10".into()],
        kernel_modules: vec![agent_protos::agent::KernelModule {
            name: "m".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    probe
        .client
        .agent
        .create_sandbox(pod::ctx(), &req)
        .await
        .unwrap();
    let points = probe.fake.faults.points_since(&before);
    assert!(points.iter().any(|p| p.op == Op::PinNamespace));
    for point in points {
        let pod = Pod::new().await;
        pod.fake.sysfs.write_file("/etc/resolv.conf", "").unwrap();
        pod.fake.faults.fail_nth(point.op, point.nth, Errno::EIO);
        let result = pod.client.agent.create_sandbox(pod::ctx(), &req).await;
        if result.is_ok() {
            // Only the look at /etc/resolv.conf may fail: as in Kata, a guest without one
            // (or one that cannot be looked at) gets no sandbox DNS.
            assert_eq!(
                point.op,
                Op::SysfsStat,
                "{point} did not fail CreateSandbox"
            );
            assert!(
                pod.fake
                    .mounter
                    .top(std::path::Path::new("/etc/resolv.conf"))
                    .is_none()
            );
            pod.destroy_sandbox().await.unwrap();
            assert!(
                pod.fake.leftovers().is_empty(),
                "{point}: {}",
                pod.fake.leftovers()
            );
            continue;
        }
        assert!(
            pod.fake.leftovers().is_empty(),
            "{point}: {}",
            pod.fake.leftovers()
        );
        pod.client
            .agent
            .create_sandbox(pod::ctx(), &req)
            .await
            .unwrap();
        pod.destroy_sandbox().await.unwrap();
        assert!(
            pod.fake.leftovers().is_empty(),
            "{point}: {}",
            pod.fake.leftovers()
        );
    }
}

#[tokio::test]
async fn every_os_call_of_exec_process_can_fail_without_leaking() {
    let probe = Pod::with_sandbox().await;
    probe.run("c1", &["sleep"]).await;
    let before = probe.fake.faults.counts();
    probe.exec("c1", "e1", &["sleep"], false).await.unwrap();
    let points = probe.fake.faults.points_since(&before);
    assert!(points.iter().any(|p| p.op == Op::Release));
    for point in points {
        let pod = Pod::with_sandbox().await;
        pod.run("c1", &["sleep"]).await;
        let init = pod.pid("c1", "");
        pod.fake.faults.fail_nth(point.op, point.nth, Errno::EIO);
        assert!(
            pod.exec("c1", "e1", &["sleep"], false).await.is_err(),
            "{point}"
        );
        assert_eq!(pod.fake.launcher.live(), vec![init], "{point}");
        assert_eq!(pod.cgroup("c1").pids, vec![init], "{point}");
        pod.exec("c1", "e1", &["sleep"], false).await.unwrap();
        pod.remove("c1", 0).await.unwrap();
        assert!(
            pod.fake.leftovers().is_empty(),
            "{point}: {}",
            pod.fake.leftovers()
        );
    }
}

#[tokio::test]
async fn a_failed_removal_step_can_be_retried() {
    let pod = Pod::with_sandbox().await;
    pod.run("c1", &["sleep"]).await;
    pod.fake.faults.fail_next(Op::CgroupDestroy, Errno::EBUSY);
    let msg = message(pod.remove("c1", 0).await);
    assert!(msg.contains("destroy cgroup /c1"), "{msg}");
    assert_eq!(pod.agent.containers().ids(), ["c1"]);
    // The other steps were done: the retry only destroys the cgroup (no unmount to fail).
    pod.fake.faults.fail_next(Op::Umount, Errno::EBUSY);
    pod.remove("c1", 0).await.unwrap();
    assert_eq!(pod.fake.faults.pending(), 1);
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test(start_paused = true)]
async fn remove_times_out_with_etime_and_can_be_retried() {
    let pod = Pod::with_sandbox().await;
    pod.run("c1", &["sleep"]).await;
    // A process the agent did not start, which no kill reaches (as a stuck D-state task).
    use kata_agent::host::Cgroups;
    pod.fake.cgroups.add_process("/c1", 4242).unwrap();
    let started = tokio::time::Instant::now();
    let result = pod.remove("c1", 5).await;
    assert!(started.elapsed() >= Duration::from_secs(5));
    let msg = message(result.clone());
    assert_eq!(code(result), Code::DEADLINE_EXCEEDED);
    assert!(msg.contains("ETIME"), "{msg}");
    assert_eq!(pod.agent.containers().ids(), ["c1"]);
    pod.fake.cgroups.process_exited(4242);
    pod.remove("c1", 5).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}
