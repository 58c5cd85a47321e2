//! Classes 1 and 3 and the parent cgroups, on cgroup v2 (a real `cgroup2` hierarchy over the
//! agent's `/sys/fs/cgroup`, see `attacks_support::cgroup2`).

use std::fs;

use crate::attacks_support::cgroup2::{self, cgroup_of, pids, v2_root};
use crate::attacks_support::ptrace::PtraceAttacker;
use crate::attacks_support::{
    CgroupSweep, PAUSE, assert_serving, exec_default_caps, sh, spec_with_cgroup_mount,
};
use crate::support::wire::spec;

/// Class 1 on v2: every exec's helper is born in the container's cgroup (clone3
/// `CLONE_INTO_CGROUP`), never seen outside it from inside the container, never reachable.
#[tokio::test]
#[ignore = "needs root: real containers, a cgroup2 mount, gcc -static"]
async fn v2_the_exec_helper_is_born_in_the_containers_cgroup() {
    // 200 execs catch a window that 1 in 20 helpers would show with p < 4e-5.
    const EXECS: usize = 200;
    let _restore = cgroup2::RootControllers::save();
    let agent = cgroup2::sandbox("v2ptrace").await;
    let root = agent.rootfs("rootfs");
    let cid = agent.id("c1");
    agent
        .run_container(&cid, spec(&root, &PAUSE, false, None))
        .await;
    let attacker = PtraceAttacker::start(&agent, &root, &cid).await;
    let own = format!("0::/{cid}");
    for i in 0..EXECS {
        let eid = format!("e{i}");
        exec_default_caps(&agent, &cid, &eid, &["cat", "/proc/self/cgroup"]).await;
        let cgroups = agent.read_all(&cid, &eid, false).await;
        let v2 = cgroups.lines().find(|l| l.starts_with("0::"));
        assert_eq!(v2, Some(own.as_str()), "exec {i} started outside");
        assert_eq!(agent.wait(&cid, &eid).await, 0);
    }
    attacker.stop(&agent).await.assert_lost();
    assert_serving(&agent, &cid, "alive").await;
    agent.destroy_and_exit().await;
}

/// Class 3 on v2: the OCI `cgroup` mount is a cgroup2 in a cgroup namespace rooted at the
/// container's cgroup: no sibling visible, no way out, read-only unless `rw`.
#[tokio::test]
#[ignore = "needs root: real containers, a cgroup2 mount"]
async fn v2_the_cgroup_mount_shows_only_the_containers_own_subtree() {
    let _restore = cgroup2::RootControllers::save();
    let agent = cgroup2::sandbox("v2cgmount").await;
    let infra = agent.ids_so_far()[0].clone();
    let root = agent.rootfs("rootfs");
    // Neither `ro` nor `rw`: read-only.
    let cid = agent.id("ro");
    agent
        .run_container(&cid, spec_with_cgroup_mount(&root, &["nosuid", "nodev"]))
        .await;
    let init = pids(&cid)[0];
    let (seen, _) = sh(
        &agent,
        &cid,
        "ls",
        "cat /proc/self/cgroup; ls /sys/fs/cgroup; cat /sys/fs/cgroup/cgroup.procs",
    )
    .await;
    assert!(
        seen.lines().any(|l| l == "0::/"),
        "not rooted at its cgroup: {seen}"
    );
    assert!(seen.contains("cgroup.procs"), "{seen}");
    assert!(!seen.contains(&infra), "a sibling is visible: {seen}");
    assert!(
        seen.lines().any(|l| l.trim() == "1"),
        "its init is not in it: {seen}"
    );

    let attack = "echo 1 > /sys/fs/cgroup/cgroup.procs && echo wrote; \
                  mkdir /sys/fs/cgroup/sub && echo made; \
                  echo 0 > /sys/fs/cgroup/cgroup.freeze && echo froze; \
                  ls /sys/fs/cgroup/..; true";
    let (out, _) = sh(&agent, &cid, "attack", attack).await;
    assert!(
        !out.contains("wrote") && !out.contains("made") && !out.contains("froze"),
        "{out}"
    );
    assert!(!out.contains(&infra), "a sibling was reached: {out}");
    assert_eq!(cgroup_of(init), format!("/{cid}"), "the init moved");
    assert!(!v2_root().join(&cid).join("sub").exists());

    // With `rw` it manages its own subtree, still seeing nothing else.
    let rw = agent.id("rw");
    agent
        .run_container(&rw, spec_with_cgroup_mount(&root, &["nosuid", "rw"]))
        .await;
    let script = "mkdir /sys/fs/cgroup/sub && rmdir /sys/fs/cgroup/sub && echo managed; \
                  echo 1 > /sys/fs/cgroup/cgroup.procs; cat /proc/self/cgroup; \
                  ls /sys/fs/cgroup";
    let (out, _) = sh(&agent, &rw, "rw", script).await;
    assert!(
        out.contains("managed") && out.lines().any(|l| l == "0::/"),
        "{out}"
    );
    assert!(!out.contains(&infra) && !out.contains(&cid), "{out}");
    assert_eq!(cgroup_of(pids(&rw)[0]), format!("/{rw}"));
    assert_serving(&agent, &rw, "alive").await;
    agent.destroy_and_exit().await;
}

/// The parent cgroups the agent made on v2 go with the last container under them; parents it
/// did not make, and cgroups others made below its parents, stay.
#[tokio::test]
#[ignore = "needs root: real containers, a cgroup2 mount"]
async fn v2_parent_cgroups_the_agent_made_go_with_the_last_container() {
    let _restore = cgroup2::RootControllers::save();
    let agent = cgroup2::sandbox("v2parents").await;
    let root = agent.rootfs("rootfs");
    let v2 = v2_root();
    let base = format!("kata-attack-v2-{}", std::process::id());
    let other = format!("{base}-pre");
    let _sweep = (CgroupSweep(base.clone()), CgroupSweep(other.clone()));
    let run = |cid: String, path: String| {
        let mut s = spec(&root, &["sleep", "100000"], false, None);
        s.Linux.as_mut().unwrap().CgroupsPath = path;
        let agent = &agent;
        async move { agent.run_container(&cid, s).await }
    };
    let c1 = agent.id("c1");
    let c2 = agent.id("c2");
    run(c1.clone(), format!("/{base}/pod/c1")).await;
    run(c2.clone(), format!("/{base}/pod/c2")).await;
    assert_eq!(pids(&format!("{base}/pod/c1")).len(), 1);
    agent.remove(&c1).await;
    assert!(!v2.join(&base).join("pod/c1").exists());
    assert!(v2.join(&base).join("pod").is_dir(), "removed under c2");
    agent.remove(&c2).await;
    assert!(!v2.join(&base).exists(), "the agent's parents stayed");

    fs::create_dir(v2.join(&other)).unwrap();
    let c3 = agent.id("c3");
    run(c3.clone(), format!("/{other}/x/c3")).await;
    let foreign = v2.join(&other).join("x/foreign");
    fs::create_dir(&foreign).unwrap();
    let log = agent.destroy_and_exit().await;
    assert!(!v2.join(&other).join("x/c3").exists(), "{log}");
    assert!(
        foreign.is_dir(),
        "a cgroup the agent did not make was removed"
    );
    assert!(
        v2.join(&other).is_dir(),
        "a cgroup the agent did not make was removed"
    );
}
