//! RemoveContainer under faults: a kill that cannot be sent fails the call at once (never a
//! hang), a failed teardown step does not stop the others, and a retry finishes the teardown.

use std::future::Future;
use std::time::Duration;

use agent_fakes::{FaultPoint, Op};
use agent_testing::pod::{Pod, code, message};
use nix::errno::Errno;
use ttrpc::Code;

const BUNDLE: &str = "/run/kata-containers/c1";
const ROOTFS: &str = "/run/kata-containers/c1/rootfs";

/// Real time a call may take before the test calls it a hang.
async fn prompt<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .unwrap_or_else(|_| panic!("{what} hangs"))
}

fn assert_clean(pod: &Pod, what: &str) {
    assert!(
        pod.fake.leftovers().is_empty(),
        "{what}: {}",
        pod.fake.leftovers()
    );
    assert!(pod.fake.sysfs.kind(BUNDLE).is_none(), "{what}: bundle left");
    assert!(pod.agent.containers().ids().is_empty(), "{what}");
}

/// The fault points of one RemoveContainer of a running container.
async fn remove_points() -> Vec<FaultPoint> {
    let pod = Pod::with_sandbox().await;
    pod.run("c1", &["sleep"]).await;
    let before = pod.fake.faults.counts();
    pod.remove("c1", 0).await.unwrap();
    pod.fake.faults.points_since(&before)
}

#[tokio::test]
async fn a_kill_that_cannot_be_sent_fails_remove_at_once() {
    for timeout in [0, 5] {
        let pod = Pod::with_sandbox().await;
        pod.run("c1", &["sleep"]).await;
        let init = pod.pid("c1", "");
        pod.fake.faults.fail_next(Op::Signal, Errno::EPERM);
        let result = prompt("RemoveContainer", pod.remove("c1", timeout)).await;
        let msg = message(result.clone());
        assert_eq!(code(result), Code::INTERNAL, "{msg}");
        assert!(
            msg.contains(&format!("send SIGKILL to pid {init}")),
            "{msg}"
        );
        // Nothing was torn down: the container stays for a retry.
        assert_eq!(pod.agent.containers().ids(), ["c1"]);
        assert_eq!(pod.fake.launcher.live(), vec![init]);
        assert!(pod.fake.mounter.top(std::path::Path::new(ROOTFS)).is_some());
        assert!(pod.fake.cgroups.state("/c1").is_some());
        assert!(!pod.cgroup("c1").frozen, "the cgroup was left frozen");
        prompt("the retry", pod.remove("c1", timeout))
            .await
            .unwrap();
        assert_clean(&pod, "after the retry");
    }
}

#[tokio::test]
async fn a_failed_thaw_fails_remove_at_once() {
    let pod = Pod::with_sandbox().await;
    pod.run("c1", &["sleep"]).await;
    // The first freeze call freezes, the second thaws.
    pod.fake.faults.fail_nth(Op::CgroupFreeze, 2, Errno::EIO);
    let msg = message(prompt("RemoveContainer", pod.remove("c1", 0)).await);
    assert!(msg.contains("thaw the cgroup"), "{msg}");
    assert_eq!(pod.agent.containers().ids(), ["c1"]);
    prompt("the retry", pod.remove("c1", 0)).await.unwrap();
    assert_clean(&pod, "after the retry");
}

#[tokio::test]
async fn a_failed_unmount_still_destroys_the_cgroup_and_names_what_is_left() {
    let pod = Pod::with_sandbox().await;
    pod.run("c1", &["sleep"]).await;
    pod.fake.faults.fail_next(Op::Umount, Errno::EBUSY);
    let result = prompt("RemoveContainer", pod.remove("c1", 0)).await;
    let msg = message(result.clone());
    assert_eq!(code(result), Code::INTERNAL);
    assert!(msg.contains(&format!("unmount {ROOTFS} failed")), "{msg}");
    assert!(
        msg.contains(&format!("not tried yet: remove {ROOTFS}, remove {BUNDLE}")),
        "{msg}"
    );
    // Attempted: the cgroup and config.json are gone; the rest waits for the unmount.
    assert!(pod.fake.cgroups.state("/c1").is_none());
    assert!(
        pod.fake
            .sysfs
            .kind(format!("{BUNDLE}/config.json"))
            .is_none()
    );
    assert!(pod.fake.mounter.top(std::path::Path::new(ROOTFS)).is_some());
    assert_eq!(pod.agent.containers().ids(), ["c1"]);
    // The retry does only what is left: no new kill, freeze or cgroup call.
    let before = pod.fake.faults.counts();
    prompt("the retry", pod.remove("c1", 0)).await.unwrap();
    let redone: Vec<Op> = pod
        .fake
        .faults
        .points_since(&before)
        .into_iter()
        .map(|p| p.op)
        .collect();
    assert_eq!(
        redone,
        [Op::Umount, Op::SysfsRemove, Op::SysfsRemove],
        "{redone:?}"
    );
    assert_clean(&pod, "after the retry");
}

#[tokio::test]
async fn every_failed_step_is_named() {
    let pod = Pod::with_sandbox().await;
    pod.run("c1", &["sleep"]).await;
    pod.fake.faults.fail_next(Op::CgroupDestroy, Errno::EBUSY);
    pod.fake.faults.fail_next(Op::SysfsRemove, Errno::EIO);
    let msg = message(prompt("RemoveContainer", pod.remove("c1", 0)).await);
    assert!(msg.contains("destroy cgroup /c1 failed"), "{msg}");
    assert!(
        msg.contains(&format!("remove {BUNDLE}/config.json failed")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("not tried yet: remove {BUNDLE}")),
        "{msg}"
    );
    // The rootfs was unmounted and its folder removed anyway.
    assert!(pod.fake.mounter.top(std::path::Path::new(ROOTFS)).is_none());
    assert!(pod.fake.sysfs.kind(ROOTFS).is_none());
    prompt("the retry", pod.remove("c1", 0)).await.unwrap();
    assert_clean(&pod, "after the retry");
}

#[tokio::test]
async fn a_fault_at_every_os_call_of_remove_container_then_a_retry_leaves_nothing() {
    let points = remove_points().await;
    for op in [
        Op::Signal,
        Op::CgroupFreeze,
        Op::CgroupDestroy,
        Op::Umount,
        Op::SysfsRemove,
    ] {
        assert!(
            points.iter().any(|p| p.op == op),
            "{op:?} not among {points:?}"
        );
    }
    for point in points {
        let pod = Pod::with_sandbox().await;
        pod.run("c1", &["sleep"]).await;
        pod.fake.faults.fail_nth(point.op, point.nth, Errno::EIO);
        let result = prompt(&format!("{point}"), pod.remove("c1", 0)).await;
        assert_eq!(pod.fake.faults.pending(), 0, "{point} did not fire");
        match result {
            Ok(()) => {
                // Only what removal can do without is tolerated: freezing, listing members.
                assert!(
                    matches!(point.op, Op::CgroupFreeze | Op::CgroupPids),
                    "{point} did not fail RemoveContainer"
                );
            }
            Err(e) => {
                assert_eq!(code(Err::<(), _>(e)), Code::INTERNAL, "{point}");
                assert_eq!(pod.agent.containers().ids(), ["c1"], "{point}");
                prompt("the retry", pod.remove("c1", 0))
                    .await
                    .unwrap_or_else(|e| panic!("{point}: retry failed: {e:?}"));
            }
        }
        assert_clean(&pod, &point.to_string());
        // The sandbox still creates and removes a container cleanly.
        pod.run("c1", &["sleep"]).await;
        pod.remove("c1", 0).await.unwrap();
        assert_clean(&pod, &format!("{point}, then a new container"));
    }
}
