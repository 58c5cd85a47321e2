//! `FakeMounter` semantics.

use std::path::Path;

use agent_fakes::{FakeMounter, Faults, Op};
use kata_agent::host::{MountSpec, Mounter};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

fn errno_of(e: std::io::Error) -> Option<i32> {
    e.raw_os_error()
}

fn mounter() -> FakeMounter {
    FakeMounter::new(Faults::new())
}

#[test]
fn mount_lists_entries_with_options() {
    let m = mounter();
    m.mount(
        &MountSpec::new("tmpfs", "/run", "tmpfs")
            .flags(MsFlags::MS_NOSUID | MsFlags::MS_NODEV)
            .data("size=64m,mode=755"),
    )
    .unwrap();
    let entries = m.mounts().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].source, "tmpfs");
    assert_eq!(entries[0].target, Path::new("/run"));
    assert_eq!(entries[0].fstype, "tmpfs");
    assert_eq!(entries[0].options, "rw,nosuid,nodev,size=64m,mode=755");
    assert!(m.is_mounted(Path::new("/run")).unwrap());
    assert!(!m.is_mounted(Path::new("/run/x")).unwrap());
}

#[test]
fn plain_mount_needs_source_and_type() {
    let m = mounter();
    let mut spec = MountSpec::new("proc", "/proc", "proc");
    spec.fstype = None;
    assert_eq!(
        errno_of(m.mount(&spec).unwrap_err()),
        Some(Errno::EINVAL as i32)
    );
    let mut spec = MountSpec::new("proc", "/proc", "proc");
    spec.source = None;
    assert_eq!(
        errno_of(m.mount(&spec).unwrap_err()),
        Some(Errno::EINVAL as i32)
    );
    assert!(m.table().is_empty());
}

#[test]
fn stacked_mounts_unmount_top_first() {
    let m = mounter();
    m.mount(&MountSpec::new("a", "/mnt", "tmpfs")).unwrap();
    m.mount(&MountSpec::new("b", "/mnt", "tmpfs")).unwrap();
    assert_eq!(m.depth(Path::new("/mnt")), 2);
    assert_eq!(m.top(Path::new("/mnt")).unwrap().source, "b");
    m.umount(Path::new("/mnt"), MntFlags::empty()).unwrap();
    assert_eq!(m.top(Path::new("/mnt")).unwrap().source, "a");
    m.umount(Path::new("/mnt"), MntFlags::MNT_DETACH).unwrap();
    let err = m.umount(Path::new("/mnt"), MntFlags::empty()).unwrap_err();
    assert_eq!(errno_of(err), Some(Errno::EINVAL as i32));
}

#[test]
fn umount_with_submounts_is_busy_unless_detached() {
    let m = mounter();
    m.mount(&MountSpec::new("tmpfs", "/run", "tmpfs")).unwrap();
    m.mount(&MountSpec::new("shm", "/run/shm", "tmpfs"))
        .unwrap();
    let err = m.umount(Path::new("/run"), MntFlags::empty()).unwrap_err();
    assert_eq!(errno_of(err), Some(Errno::EBUSY as i32));
    assert_eq!(m.table().len(), 2);
    m.umount(Path::new("/run"), MntFlags::MNT_DETACH).unwrap();
    assert!(m.table().is_empty());
}

#[test]
fn readonly_bind_is_bind_then_remount() {
    let m = mounter();
    m.bind(Path::new("/src"), Path::new("/dst"), true).unwrap();
    let top = m.top(Path::new("/dst")).unwrap();
    assert_eq!(top.source, "/src");
    assert_eq!(top.fstype, "none");
    assert!(top.is_readonly());
    assert_eq!(m.mounts().unwrap()[0].options, "ro");
}

#[test]
fn remount_needs_a_mount() {
    let m = mounter();
    let remount = MountSpec {
        source: None,
        target: "/nothing".into(),
        fstype: None,
        flags: MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        data: None,
    };
    let err = m.mount(&remount).unwrap_err();
    assert_eq!(errno_of(err), Some(Errno::EINVAL as i32));
}

#[test]
fn failed_remount_in_bind_leaves_nothing_behind() {
    let faults = Faults::new();
    let m = FakeMounter::new(faults.clone());
    faults.fail_nth(Op::Mount, 2, Errno::EPERM);
    let err = m
        .bind(Path::new("/src"), Path::new("/dst"), true)
        .unwrap_err();
    assert_eq!(errno_of(err), Some(Errno::EPERM as i32));
    assert!(m.table().is_empty());
    assert_eq!(faults.calls(Op::Mount), 2);
    assert_eq!(faults.calls(Op::Umount), 1);
}

#[test]
fn propagation_changes_need_a_mount_point_except_root() {
    let m = mounter();
    let slave = |target: &str| MountSpec {
        source: None,
        target: target.into(),
        fstype: None,
        flags: MsFlags::MS_REC | MsFlags::MS_SLAVE,
        data: None,
    };
    m.mount(&slave("/")).unwrap();
    assert_eq!(
        errno_of(m.mount(&slave("/x")).unwrap_err()),
        Some(Errno::EINVAL as i32)
    );
    m.mount(&MountSpec::new("tmpfs", "/x", "tmpfs")).unwrap();
    m.mount(&slave("/x")).unwrap();
    assert!(
        m.top(Path::new("/x"))
            .unwrap()
            .flags
            .contains(MsFlags::MS_SLAVE)
    );
    assert_eq!(m.table().len(), 1);
}

#[test]
fn move_mount_carries_submounts() {
    let m = mounter();
    m.mount(&MountSpec::new("tmpfs", "/a", "tmpfs")).unwrap();
    m.mount(&MountSpec::new("tmpfs", "/a/b", "tmpfs")).unwrap();
    let mv = MountSpec {
        source: Some("/a".into()),
        target: "/c".into(),
        fstype: None,
        flags: MsFlags::MS_MOVE,
        data: None,
    };
    m.mount(&mv).unwrap();
    let targets: Vec<_> = m.table().into_iter().map(|m| m.target).collect();
    assert_eq!(targets, [Path::new("/c"), Path::new("/c/b")]);
}

#[test]
fn injected_faults_change_nothing() {
    let faults = Faults::new();
    let m = FakeMounter::new(faults.clone());
    m.mount(&MountSpec::new("tmpfs", "/run", "tmpfs")).unwrap();
    faults.fail_next(Op::Mount, Errno::ENOSPC);
    faults.fail_next(Op::Umount, Errno::EBUSY);
    faults.fail_next(Op::Mounts, Errno::EIO);
    let before = m.table();
    assert_eq!(
        errno_of(
            m.mount(&MountSpec::new("tmpfs", "/x", "tmpfs"))
                .unwrap_err()
        ),
        Some(Errno::ENOSPC as i32)
    );
    assert_eq!(
        errno_of(m.umount(Path::new("/run"), MntFlags::empty()).unwrap_err()),
        Some(Errno::EBUSY as i32)
    );
    assert_eq!(errno_of(m.mounts().unwrap_err()), Some(Errno::EIO as i32));
    assert_eq!(m.table(), before);
    assert_eq!(faults.pending(), 0);
    // The next calls succeed.
    m.umount(Path::new("/run"), MntFlags::empty()).unwrap();
    assert!(m.mounts().unwrap().is_empty());
}
