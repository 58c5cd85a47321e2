//! An `mmioblk` storage on the real kernel: the request names a /dev node that does not exist
//! yet; a new loop device (made through /dev/loop-control, attached with losetup) is the
//! hot-plugged disk; its real `add` uevent ends the wait and the ext4 filesystem is mounted.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use agent_testing::ns::block_on_in;
use agent_testing::storage::real_storages;
use kata_agent::device::{DeviceWatcher, Uevent};
use kata_agent::host::{Mounter, UeventSource};
use kata_agent::linux::{LinuxMounter, NetlinkUevents};
use kata_agent::storage::{StorageContext, StorageRequest};
use nix::sched::CloneFlags;

const LOOP_CTL_ADD: libc::c_ulong = 0x4C80;
const LOOP_CTL_REMOVE: libc::c_ulong = 0x4C81;
const OWNER: &str = "loop-test";

/// A loop device made by this test: detached and removed on drop, even when the test fails.
struct LoopDevice {
    control: File,
    index: u32,
}

impl LoopDevice {
    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/dev/loop{}", self.index))
    }
}

/// The first index from `first` up whose /dev node does not exist.
fn free_index(first: u32) -> u32 {
    (first..first + 500)
        .find(|i| !Path::new(&format!("/dev/loop{i}")).exists())
        .expect("a free loop index")
}

fn loop_ctl(control: &File, request: libc::c_ulong, index: u32) -> io::Result<()> {
    // SAFETY: LOOP_CTL_ADD/REMOVE take the index as an integer argument and touch no memory.
    let rc = unsafe { libc::ioctl(control.as_raw_fd(), request as _, libc::c_long::from(index)) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(self.path()).status();
        if let Err(e) = loop_ctl(&self.control, LOOP_CTL_REMOVE, self.index) {
            eprintln!("cannot remove loop{}: {e}", self.index);
        }
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs root: creates a loop device, mounts ext4 in a private mount namespace"]
fn an_mmioblk_storage_waits_for_a_new_loop_device_and_mounts_it() {
    agent_testing::skip_unless_root!("a loop device and mount(2)");
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    File::create(&image).unwrap().set_len(16 << 20).unwrap();
    run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image));
    let mount_point = dir.path().join("mnt");
    // Private mount and network namespaces: the mount stays there; block uevents still
    // arrive, the host's network ones do not.
    let flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET;
    block_on_in(flags, move || scenario(image, mount_point));
}

async fn scenario(image: PathBuf, mount_point: PathBuf) {
    let watcher = Arc::new(DeviceWatcher::new());
    // Confined below the test's folder instead of /run/kata-containers.
    let base = mount_point.parent().expect("the mount point's folder");
    let storages = Arc::new(real_storages(
        base,
        watcher.clone(),
        Duration::from_secs(10),
    ));
    let source = NetlinkUevents::new().expect("uevent socket");

    let control = File::options()
        .read(true)
        .write(true)
        .open("/dev/loop-control")
        .unwrap();
    let index = free_index(300);
    let disk_path = format!("/dev/loop{index}");
    let request = StorageRequest::new("mmioblk", &disk_path, "ext4", &mount_point);

    // The storage is requested before the disk exists: it must wait for the uevent.
    let adding = {
        let storages = storages.clone();
        tokio::spawn(async move {
            storages
                .add(&StorageContext::sandbox(), &[request], OWNER)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !adding.is_finished(),
        "the storage did not wait for its disk"
    );
    assert_eq!(watcher.pending(), 1);

    loop_ctl(&control, LOOP_CTL_ADD, index).expect("LOOP_CTL_ADD");
    let disk = LoopDevice { control, index };
    // Deliver the kernel's uevents to the watcher; the disk's `add` only once losetup has
    // attached the image, as a VMM attaches a disk's backing before announcing it.
    let mut delivered = false;
    while !delivered {
        let raw = tokio::time::timeout(Duration::from_secs(10), source.recv())
            .await
            .expect("the kernel's add uevent")
            .expect("uevent");
        let Ok(event) = Uevent::parse(&raw) else {
            continue;
        };
        if event.is_add() && event.devpath == format!("/devices/virtual/block/loop{index}") {
            run(Command::new("losetup").arg(&disk_path).arg(&image));
            delivered = true;
        }
        watcher.handle(event);
    }
    let mounted = tokio::time::timeout(Duration::from_secs(10), adding)
        .await
        .expect("the storage add finished")
        .expect("task")
        .expect("the storage mounted");
    assert_eq!(mounted, std::slice::from_ref(&mount_point));
    let table = LinuxMounter::new().mounts().unwrap();
    let entry = table
        .iter()
        .find(|m| m.target == mount_point)
        .expect("mounted");
    assert_eq!(entry.fstype, "ext4");
    assert_eq!(entry.source, disk_path);
    std::fs::write(mount_point.join("hello"), "on the loop disk").unwrap();

    storages.release(OWNER).expect("release");
    assert!(!LinuxMounter::new().is_mounted(&mount_point).unwrap());
    drop(disk);
}
