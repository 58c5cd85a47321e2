//! Guest init (what the agent does as PID 1) on the fakes: mounts, cgroup hierarchy, loopback.

use agent_fakes::{FakeHost, Op};
use kata_agent::init::{InitError, bring_up_loopback, mount_base, mount_cgroups};
use nix::errno::Errno;

const PROC_CGROUPS: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
                            cpuset\t1\t1\t1\ncpu\t2\t1\t1\nmemory\t3\t1\t1\n\
                            pids\t4\t1\t1\nhugetlb\t5\t1\t0\n";

fn mounted(fake: &FakeHost) -> Vec<(String, String)> {
    fake.mounter
        .table()
        .iter()
        .map(|m| (m.target.display().to_string(), m.fstype.clone()))
        .collect()
}

#[tokio::test]
async fn base_mounts_are_made_once_in_order() {
    let fake = FakeHost::new();
    mount_base(&*fake.mounter, &*fake.sysfs).await.unwrap();
    let want = [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "devtmpfs"),
        ("/dev/shm", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/run", "tmpfs"),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(t, f)| (t.to_string(), f.to_string()))
        .collect();
    assert_eq!(mounted(&fake), want);
    for dir in ["/proc", "/dev/pts", "/run"] {
        assert!(fake.sysfs.kind(dir).is_some(), "{dir} was not created");
    }
    // A second run (the kernel or an initramfs mounted some already) mounts nothing more.
    mount_base(&*fake.mounter, &*fake.sysfs).await.unwrap();
    assert_eq!(mounted(&fake).len(), 6);
}

#[tokio::test]
async fn cgroup_v1_mounts_one_hierarchy_per_enabled_controller() {
    let fake = FakeHost::new();
    fake.sysfs
        .write_file("/proc/cgroups", PROC_CGROUPS)
        .unwrap();
    fake.sysfs
        .write_file("/sys/fs/cgroup/memory/memory.use_hierarchy", "0")
        .unwrap();
    mount_cgroups(&*fake.mounter, &*fake.sysfs, &*fake.sysfs, false)
        .await
        .unwrap();
    let got = mounted(&fake);
    assert_eq!(got[0], ("/sys/fs/cgroup".into(), "tmpfs".into()));
    let controllers: Vec<_> = got[1..]
        .iter()
        .map(|(t, f)| (t.as_str(), f.as_str()))
        .collect();
    assert_eq!(
        controllers,
        [
            ("/sys/fs/cgroup/cpuset", "cgroup"),
            ("/sys/fs/cgroup/cpu", "cgroup"),
            ("/sys/fs/cgroup/memory", "cgroup"),
            ("/sys/fs/cgroup/pids", "cgroup"),
        ]
    );
    let memory = &fake.mounter.table()[3];
    assert_eq!(memory.data.as_deref(), Some("memory"));
    assert_eq!(
        fake.sysfs
            .contents("/sys/fs/cgroup/memory/memory.use_hierarchy")
            .unwrap(),
        b"1"
    );
}

#[tokio::test]
async fn cgroup_v2_mounts_the_unified_hierarchy() {
    let fake = FakeHost::new();
    mount_cgroups(&*fake.mounter, &*fake.sysfs, &*fake.sysfs, true)
        .await
        .unwrap();
    assert_eq!(
        mounted(&fake),
        [("/sys/fs/cgroup".to_string(), "cgroup2".to_string())]
    );
}

#[tokio::test]
async fn a_failed_mount_names_its_target() {
    let fake = FakeHost::new();
    fake.faults.fail_nth(Op::Mount, 3, Errno::ENODEV);
    let err = mount_base(&*fake.mounter, &*fake.sysfs).await.unwrap_err();
    assert!(matches!(err, InitError::Mount { .. }), "{err:?}");
    assert_eq!(err.to_string(), "cannot mount devtmpfs on /dev");
    assert_eq!(
        mounted(&fake).len(),
        2,
        "mounts before the failure stay, none after"
    );
}

#[tokio::test]
async fn missing_proc_cgroups_is_an_error_not_a_panic() {
    let fake = FakeHost::new();
    let err = mount_cgroups(&*fake.mounter, &*fake.sysfs, &*fake.sysfs, false)
        .await
        .unwrap_err();
    assert!(matches!(err, InitError::ProcCgroups(_)), "{err:?}");
}

#[tokio::test]
async fn loopback_comes_up() {
    let fake = FakeHost::new();
    assert!(!fake.netlink.link(1).unwrap().is_up());
    bring_up_loopback(&*fake.netlink).await.unwrap();
    assert!(fake.netlink.link(1).unwrap().is_up());
    // Already up: nothing to do, no error.
    bring_up_loopback(&*fake.netlink).await.unwrap();
}
