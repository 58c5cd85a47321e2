//! The device-subsystem view of a [`Pod`]: a small kernel model for the device tests (sysfs
//! nodes, /dev nodes and uevents shaped like a real Linux 6.1 q35 guest's) under the pod's
//! agent, its uevent loop running.

use std::ops::Deref;

use kata_agent::config::Config;
use kata_agent::device::DeviceContext;
use kata_agent::host::NodeKind;

use crate::pod::Pod;

/// A [`Pod`] whose agent's uevent loop runs, with its device context at hand.
#[derive(Debug)]
pub struct Rig {
    pod: Pod,
    /// The agent's device context (watcher, sysfs, hotplug timeout).
    pub ctx: DeviceContext,
}

impl Deref for Rig {
    type Target = Pod;

    fn deref(&self) -> &Pod {
        &self.pod
    }
}

impl Pod {
    /// A pod whose agent is configured from `cmdline` and started, seen as a device rig: the
    /// root bus and three root ports (`0000:00:02.0` → bus 01, `03.0` → 02, `04.0` → 03) are
    /// in sysfs, as on q35.
    pub async fn devices(cmdline: &str) -> Rig {
        let (config, warnings) = Config::from_cmdline(cmdline);
        assert!(warnings.is_empty(), "{warnings:?}");
        let pod = Pod::with_config(config).await;
        pod.agent.start();
        for (slot, bus) in [(2, 1), (3, 2), (4, 3)] {
            pod.fake
                .sysfs
                .mkdir_p(format!(
                    "/sys/devices/pci0000:00/0000:00:{slot:02x}.0/pci_bus/0000:{bus:02x}"
                ))
                .unwrap();
        }
        let ctx = pod.agent.device_context();
        Rig { pod, ctx }
    }
}

impl Rig {
    /// Lets the uevent loop take every queued event.
    pub async fn settle(&self) {
        while self.fake.uevents.queued() > 0 {
            tokio::task::yield_now().await;
        }
        tokio::task::yield_now().await;
    }

    /// A block disk's sysfs directory, `dev` attribute, class link and /dev node.
    pub fn block_sysfs(&self, devpath: &str, devname: &str, major: u64, minor: u64) {
        let sysfs = &self.fake.sysfs;
        sysfs
            .write_file(format!("/sys{devpath}/dev"), format!("{major}:{minor}\n"))
            .unwrap();
        let _ = sysfs.symlink(
            format!("/sys/class/block/{devname}"),
            format!("../../{}", devpath.trim_start_matches('/')),
        );
        let _ = sysfs.mknod(
            format!("/dev/{devname}"),
            NodeKind::BlockDevice,
            major,
            minor,
        );
    }

    /// The kernel's `add` (or `remove`) event of a block disk.
    pub fn block_event(&self, action: &str, devpath: &str, devname: &str, major: u64, minor: u64) {
        self.fake.uevents.emit(
            action,
            devpath,
            &[
                ("SUBSYSTEM", "block"),
                ("MAJOR", &major.to_string()),
                ("MINOR", &minor.to_string()),
                ("DEVNAME", devname),
                ("DEVTYPE", "disk"),
            ],
        );
    }

    /// A virtio-blk disk plugged at PCI devpath `pci`: sysfs, then its uevents.
    pub fn plug_virtio_blk(&self, pci: &str, virtio: u32, devname: &str, minor: u64) -> String {
        let devpath = format!("{pci}/virtio{virtio}/block/{devname}");
        self.fake.uevents.emit("add", pci, &[("SUBSYSTEM", "pci")]);
        self.fake.uevents.emit(
            "add",
            &format!("{pci}/virtio{virtio}"),
            &[("SUBSYSTEM", "virtio")],
        );
        self.block_sysfs(&devpath, devname, 254, minor);
        self.block_event("add", &devpath, devname, 254, minor);
        devpath
    }

    /// Noise: the events around a hotplug that are not the disk.
    pub fn noise(&self, n: u64) {
        for i in 0..n {
            self.fake.uevents.emit(
                "add",
                &format!("/devices/virtual/bdi/254:{i}"),
                &[("SUBSYSTEM", "bdi")],
            );
            self.fake.uevents.emit(
                "add",
                &format!("/module/mod{i}"),
                &[("SUBSYSTEM", "module")],
            );
        }
    }
}
