//! The device watcher on the real kernel: a new loop device is a real block `add` uevent,
//! the closest analogue on this machine to a hot-plugged virtio-blk disk.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use kata_agent::device::{self, DeviceContext, DeviceWatcher, VirtioBlkMmioMatcher, watch_uevents};
use kata_agent::linux::{LinuxSysfs, NetlinkUevents};

const LOOP_CTL_ADD: libc::c_ulong = 0x4C80;
const LOOP_CTL_REMOVE: libc::c_ulong = 0x4C81;

/// A loop device this test created; removed on drop, even when the test fails.
struct LoopDevice {
    control: File,
    index: u32,
}

impl LoopDevice {
    /// Creates the first free `loopN` with N from `first` up.
    fn create(first: u32) -> io::Result<Self> {
        let control = File::options()
            .read(true)
            .write(true)
            .open("/dev/loop-control")?;
        for index in first..first + 200 {
            // SAFETY: LOOP_CTL_ADD takes the index as an integer argument and touches no memory.
            let rc = unsafe {
                libc::ioctl(
                    control.as_raw_fd(),
                    LOOP_CTL_ADD as _,
                    libc::c_long::from(index),
                )
            };
            if rc >= 0 {
                return Ok(LoopDevice { control, index });
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EEXIST) {
                return Err(err);
            }
        }
        Err(io::Error::other("no free loop index"))
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        // SAFETY: as above, an integer argument only.
        let rc = unsafe {
            libc::ioctl(
                self.control.as_raw_fd(),
                LOOP_CTL_REMOVE as _,
                libc::c_long::from(self.index),
            )
        };
        if rc < 0 {
            eprintln!(
                "cannot remove loop{}: {}",
                self.index,
                io::Error::last_os_error()
            );
        }
    }
}

#[test]
#[ignore = "needs root: creates and removes a loop device through /dev/loop-control"]
fn a_new_loop_device_is_seen_by_the_watcher_and_the_block_lookup() {
    agent_testing::skip_unless_root!("a loop device through /dev/loop-control");
    // A dedicated thread in a private network namespace: block uevents still arrive there,
    // the host's network events do not.
    agent_testing::ns::block_on_in(nix::sched::CloneFlags::CLONE_NEWNET, scenario);
}

async fn scenario() {
    let source = Arc::new(NetlinkUevents::new().expect("uevent socket"));
    let watcher = Arc::new(DeviceWatcher::new());
    let sysfs = Arc::new(LinuxSysfs::new("/"));
    let task = tokio::spawn(watch_uevents(source, watcher.clone(), sysfs.clone()));

    let disk = LoopDevice::create(200).expect("LOOP_CTL_ADD");
    let name = format!("loop{}", disk.index);
    let matcher = VirtioBlkMmioMatcher::new(&name);
    let event = watcher
        .wait_for(Box::new(matcher.clone()), Duration::from_secs(10))
        .await
        .expect("the kernel's add uevent");
    assert_eq!(event.devpath, format!("/devices/virtual/block/{name}"));
    assert_eq!(event.subsystem, "block");
    assert_eq!(event.var("MAJOR"), Some("7"));

    let ctx = DeviceContext {
        watcher: watcher.clone(),
        sysfs,
        hotplug_timeout: Duration::from_secs(10),
    };
    let found = device::virtio_blk_mmio(&ctx, &format!("/dev/{name}"))
        .await
        .unwrap();
    assert_eq!((found.major, found.minor), (7, u64::from(disk.index)));

    drop(disk);
    // The remove event makes the watcher forget the disk.
    let forgotten = async {
        while watcher.find(&matcher).is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), forgotten)
        .await
        .expect("the kernel's remove uevent");
    assert!(watcher.find(&matcher).is_none());
    task.abort();
}
