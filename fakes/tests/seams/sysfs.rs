//! `FakeSysfs` semantics.

use std::io;
use std::path::{Path, PathBuf};

use agent_fakes::{FakeSysfs, Faults, Op};
use kata_agent::host::{AgentFiles, NodeKind, Sysfs};
use nix::errno::Errno;

fn errno(e: io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().expect("an errno"))
}

fn p(s: &str) -> &Path {
    Path::new(s)
}

/// A virtio-blk disk as the kernel lays it out.
fn disk() -> FakeSysfs {
    let s = FakeSysfs::new(Faults::new());
    let dev = "/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda";
    s.write_file(format!("{dev}/dev"), "252:0\n").unwrap();
    s.write_file(format!("{dev}/size"), "2048\n").unwrap();
    s.symlink(
        "/sys/block/vda",
        "../devices/pci0000:00/0000:00:02.0/virtio1/block/vda",
    )
    .unwrap();
    s.mknod("/dev/vda", NodeKind::BlockDevice, 252, 0).unwrap();
    s
}

#[test]
fn relative_links_resolve_like_sysfs() {
    let s = disk();
    assert_eq!(s.read_string(p("/sys/block/vda/dev")).unwrap(), "252:0");
    assert_eq!(s.read_dir(p("/sys/block/vda")).unwrap(), ["dev", "size"]);
    assert_eq!(
        s.read_link(p("/sys/block/vda")).unwrap(),
        PathBuf::from("../devices/pci0000:00/0000:00:02.0/virtio1/block/vda")
    );
    assert_eq!(s.stat(p("/sys/block/vda")).unwrap().kind, NodeKind::Dir);
    // `..` after a link goes to the physical parent.
    assert_eq!(s.read_dir(p("/sys/block/vda/..")).unwrap(), ["vda"]);
    assert_eq!(
        errno(s.read_link(p("/sys/block/vda/dev")).unwrap_err()),
        Errno::EINVAL
    );
}

#[test]
fn device_nodes_stat_with_numbers() {
    let s = disk();
    let info = s.stat(p("/dev/vda")).unwrap();
    assert_eq!(
        (info.kind, info.major, info.minor),
        (NodeKind::BlockDevice, 252, 0)
    );
    assert!(s.exists(p("/dev/vda")));
    assert!(!s.exists(p("/dev/vdb")));
    assert_eq!(
        errno(s.mknod("/dev/x", NodeKind::File, 1, 1).unwrap_err()),
        Errno::EINVAL
    );
    assert_eq!(
        errno(
            s.mknod("/dev/vda", NodeKind::BlockDevice, 1, 1)
                .unwrap_err()
        ),
        Errno::EEXIST
    );
}

#[test]
fn errors_follow_the_kernel() {
    let s = disk();
    assert_eq!(errno(s.read(p("/sys/nope")).unwrap_err()), Errno::ENOENT);
    assert_eq!(errno(s.read(p("/sys/block")).unwrap_err()), Errno::EISDIR);
    assert_eq!(
        errno(s.read_dir(p("/sys/block/vda/dev")).unwrap_err()),
        Errno::ENOTDIR
    );
    assert_eq!(
        errno(s.read(p("/sys/block/vda/dev/x")).unwrap_err()),
        Errno::ENOTDIR
    );
    s.symlink("/sys/loop", "loop").unwrap();
    assert_eq!(errno(s.stat(p("/sys/loop")).unwrap_err()), Errno::ELOOP);
    s.symlink("/sys/dangling", "nowhere").unwrap();
    assert_eq!(
        errno(s.stat(p("/sys/dangling")).unwrap_err()),
        Errno::ENOENT
    );
}

#[test]
fn writes_need_an_existing_file_and_are_logged() {
    let s = disk();
    assert_eq!(
        errno(s.write(p("/sys/block/vda/new"), b"1").unwrap_err()),
        Errno::ENOENT
    );
    s.write(p("/sys/block/vda/size"), b"4096").unwrap();
    assert_eq!(
        s.contents("/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda/size")
            .unwrap(),
        b"4096"
    );
    assert_eq!(
        s.writes(),
        [(PathBuf::from("/sys/block/vda/size"), b"4096".to_vec())]
    );
    s.clear_writes();
    assert!(s.writes().is_empty());
}

#[test]
fn write_hooks_let_a_vmm_react() {
    let s = FakeSysfs::new(Faults::new());
    let block = "/sys/devices/system/memory/memory8";
    s.write_file(format!("{block}/online"), "0\n").unwrap();
    s.write_file(format!("{block}/state"), "offline\n").unwrap();
    s.on_write("/sys/devices/system/memory", |sysfs, path, data| {
        if path.ends_with("online") {
            let state = if data.starts_with(b"1") {
                "online\n"
            } else {
                "offline\n"
            };
            sysfs.write_file(path.with_file_name("state"), state)?;
        }
        Ok(())
    });
    s.on_write("/sys/devices/system/cpu", |_, _, _| {
        Err(io::Error::from_raw_os_error(libc::EBUSY))
    });
    s.write(p(&format!("{block}/online")), b"1").unwrap();
    assert_eq!(
        s.read_string(p(&format!("{block}/state"))).unwrap(),
        "online"
    );
    assert_eq!(s.read_string(p(&format!("{block}/online"))).unwrap(), "1");

    s.write_file("/sys/devices/system/cpu/cpu1/online", "0")
        .unwrap();
    let err = s
        .write(p("/sys/devices/system/cpu/cpu1/online"), b"1")
        .unwrap_err();
    assert_eq!(errno(err), Errno::EBUSY);
    assert_eq!(
        s.contents("/sys/devices/system/cpu/cpu1/online").unwrap(),
        b"0"
    );
    assert_eq!(s.writes().len(), 1);
}

#[test]
fn create_dir_all_makes_parents_and_accepts_existing_dirs() {
    let faults = Faults::new();
    let s = FakeSysfs::new(faults.clone());
    s.create_dir_all(p("/run/kata-containers/shared")).unwrap();
    s.create_dir_all(p("/run/kata-containers")).unwrap();
    assert_eq!(s.kind("/run/kata-containers/shared"), Some(NodeKind::Dir));
    s.write_file("/run/file", "x").unwrap();
    assert!(s.create_dir_all(p("/run/file")).is_err());
    assert_eq!(
        errno(s.create_dir_all(p("/run/file/sub")).unwrap_err()),
        Errno::ENOTDIR
    );
    faults.fail_next(Op::SysfsCreateDir, Errno::EROFS);
    assert_eq!(
        errno(s.create_dir_all(p("/run/new")).unwrap_err()),
        Errno::EROFS
    );
    assert_eq!(s.kind("/run/new"), None);
    assert_eq!(faults.calls(Op::SysfsCreateDir), 5);
}

#[test]
fn remove_is_recursive_and_does_not_follow_links() {
    let s = disk();
    s.remove("/sys/block/vda").unwrap();
    assert!(
        s.kind("/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda/dev")
            .is_some()
    );
    s.remove("/sys/devices/pci0000:00").unwrap();
    assert_eq!(s.read_dir(p("/sys/devices")).unwrap().len(), 0);
    assert_eq!(
        errno(s.remove("/sys/devices/pci0000:00").unwrap_err()),
        Errno::ENOENT
    );
}

#[test]
fn injected_faults_change_nothing() {
    let faults = Faults::new();
    let s = FakeSysfs::new(faults.clone());
    s.write_file("/sys/f", "a").unwrap();
    faults.fail_next(Op::SysfsWrite, Errno::EIO);
    faults.fail_next(Op::SysfsRead, Errno::EIO);
    faults.fail_next(Op::SysfsStat, Errno::EIO);
    assert_eq!(errno(s.write(p("/sys/f"), b"b").unwrap_err()), Errno::EIO);
    assert_eq!(errno(s.read(p("/sys/f")).unwrap_err()), Errno::EIO);
    assert!(!s.exists(p("/sys/f")), "a failed stat reads as absent");
    assert_eq!(s.contents("/sys/f").unwrap(), b"a");
    assert!(s.writes().is_empty());
    assert_eq!(faults.calls(Op::SysfsWrite), 1);
}
