//! virtio devices on PCI (blk, net, scsi) and the disks they carry: their sysfs nodes and the
//! uevent sequences a Linux 6.1 q35 guest emits for them; `harness run --vmm qemu` compares
//! what the agent makes of them with a real guest (the parity report).

use kata_agent::host::NodeKind;

use super::kernel::{Seq, SysfsOp, relative};
use super::pci::PciFunction;

/// The virtio vendor id.
pub const VIRTIO_VENDOR: u16 = 0x1af4;

/// A virtio device (`virtioN`) under its PCI function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtioDev {
    /// The PCI function carrying it.
    pub pci: PciFunction,
    /// N in `virtioN`.
    pub index: u32,
    /// The virtio device id (1 net, 2 blk, 8 scsi).
    pub virtio_id: u32,
    /// The guest driver (`virtio_blk`...).
    pub driver: &'static str,
}

impl VirtioDev {
    /// Its sysfs directory.
    pub fn dir(&self) -> String {
        format!("{}/virtio{}", self.pci.dir, self.index)
    }

    fn devpath(&self) -> String {
        self.dir().trim_start_matches("/sys").to_owned()
    }

    fn modalias(&self) -> String {
        format!("virtio:d{:08X}v{:08X}", self.virtio_id, VIRTIO_VENDOR)
    }

    /// PCI `add` then virtio `add`.
    pub fn appear(&self, seq: &mut Seq, wakeup: Option<&str>) {
        self.pci.appear(seq, wakeup);
        let dir = self.dir();
        seq.dir(&dir)
            .file(format!("{dir}/device"), format!("0x{:04x}", self.virtio_id))
            .file(format!("{dir}/vendor"), format!("0x{VIRTIO_VENDOR:04x}"))
            .link(
                format!("/sys/bus/virtio/devices/virtio{}", self.index),
                relative("/sys/bus/virtio/devices", &dir),
            );
        seq.event(
            "add",
            &self.devpath(),
            &[("SUBSYSTEM", "virtio"), ("MODALIAS", &self.modalias())],
        );
    }

    /// virtio `bind` then PCI `bind` to virtio-pci.
    pub fn bind(&self, seq: &mut Seq) {
        let dir = self.dir();
        seq.link(
            format!("{dir}/driver"),
            relative(&dir, &format!("/sys/bus/virtio/drivers/{}", self.driver)),
        );
        seq.event(
            "bind",
            &self.devpath(),
            &[
                ("SUBSYSTEM", "virtio"),
                ("DRIVER", self.driver),
                ("MODALIAS", &self.modalias()),
            ],
        );
        self.pci.bind(seq, "virtio-pci");
    }

    /// virtio `unbind`, `remove`, then the PCI function's unbind and removal.
    pub fn disappear(&self, seq: &mut Seq, wakeup: Option<&str>) {
        let dir = self.dir();
        seq.remove(format!("{dir}/driver"));
        seq.event("unbind", &self.devpath(), &[("SUBSYSTEM", "virtio")]);
        seq.remove(format!("/sys/bus/virtio/devices/virtio{}", self.index));
        seq.event(
            "remove",
            &self.devpath(),
            &[("SUBSYSTEM", "virtio"), ("MODALIAS", &self.modalias())],
        );
        self.pci.unbind(seq, "virtio-pci");
        self.pci.disappear(seq, wakeup);
    }
}

/// A whole-disk block device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    /// `vda`, `sda`, `pmem0`.
    pub name: String,
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// The kernel's DISKSEQ.
    pub diskseq: u64,
    /// Size in 512-byte sectors.
    pub sectors: u64,
}

impl Disk {
    /// `major:minor`.
    pub fn dev(&self) -> String {
        format!("{}:{}", self.major, self.minor)
    }

    /// `/dev/<name>`.
    pub fn dev_node(&self) -> String {
        format!("/dev/{}", self.name)
    }

    /// bdi `add`, the block nodes and /dev node, then block `add` (`parent` holds `block/`).
    pub fn appear(&self, seq: &mut Seq, parent: &str) {
        let bdi = format!("/devices/virtual/bdi/{}", self.dev());
        seq.dir(format!("/sys{bdi}"));
        seq.event("add", &bdi, &[("SUBSYSTEM", "bdi")]);
        let dir = format!("{parent}/block/{}", self.name);
        seq.dir(&dir)
            .file(format!("{dir}/dev"), self.dev())
            .file(format!("{dir}/size"), self.sectors.to_string())
            .file(format!("{dir}/ro"), "0")
            .link(
                format!("/sys/block/{}", self.name),
                relative("/sys/block", &dir),
            )
            .link(
                format!("/sys/class/block/{}", self.name),
                relative("/sys/class/block", &dir),
            )
            .link(
                format!("/sys/dev/block/{}", self.dev()),
                relative("/sys/dev/block", &dir),
            )
            .node(
                self.dev_node(),
                NodeKind::BlockDevice,
                self.major,
                self.minor,
            );
        seq.event(
            "add",
            dir.trim_start_matches("/sys"),
            &[
                ("SUBSYSTEM", "block"),
                ("MAJOR", &self.major.to_string()),
                ("MINOR", &self.minor.to_string()),
                ("DEVNAME", &self.name),
                ("DEVTYPE", "disk"),
                ("DISKSEQ", &self.diskseq.to_string()),
            ],
        );
    }

    /// bdi `remove`, block `remove`, and the nodes go.
    pub fn disappear(&self, seq: &mut Seq, parent: &str) {
        let bdi = format!("/devices/virtual/bdi/{}", self.dev());
        seq.remove(format!("/sys{bdi}"));
        seq.event("remove", &bdi, &[("SUBSYSTEM", "bdi")]);
        let dir = format!("{parent}/block/{}", self.name);
        for path in [
            format!("/sys/block/{}", self.name),
            format!("/sys/class/block/{}", self.name),
            format!("/sys/dev/block/{}", self.dev()),
            self.dev_node(),
            dir.clone(),
        ] {
            seq.op(SysfsOp::Remove(path));
        }
        seq.event(
            "remove",
            dir.trim_start_matches("/sys"),
            &[
                ("SUBSYSTEM", "block"),
                ("MAJOR", &self.major.to_string()),
                ("MINOR", &self.minor.to_string()),
                ("DEVNAME", &self.name),
                ("DEVTYPE", "disk"),
                ("DISKSEQ", &self.diskseq.to_string()),
            ],
        );
    }
}

/// virtio-blk: PCI add, virtio add, bdi add, block add, virtio bind, PCI bind.
pub fn blk_add(dev: &VirtioDev, disk: &Disk, wakeup: Option<&str>) -> Seq {
    let mut seq = Seq::new();
    dev.appear(&mut seq, wakeup);
    disk.appear(&mut seq, &dev.dir());
    dev.bind(&mut seq);
    seq
}

/// virtio-blk removal: bdi, block, virtio unbind and remove, PCI unbind, wakeup, PCI remove.
pub fn blk_remove(dev: &VirtioDev, disk: &Disk, wakeup: Option<&str>) -> Seq {
    let mut seq = Seq::new();
    disk.disappear(&mut seq, &dev.dir());
    dev.disappear(&mut seq, wakeup);
    seq
}

/// A NIC's interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nic {
    /// `ethN`.
    pub name: String,
    /// MAC address.
    pub mac: String,
    /// MTU.
    pub mtu: u32,
}

/// virtio-net: PCI add, virtio add, net add, queue adds, virtio bind, PCI bind. The link
/// appears in netlink with the net `add`, whose IFINDEX is its index.
pub fn net_add(dev: &VirtioDev, nic: &Nic, wakeup: Option<&str>) -> Seq {
    let mut seq = Seq::new();
    dev.appear(&mut seq, wakeup);
    let dir = format!("{}/net/{}", dev.dir(), nic.name);
    seq.dir(&dir)
        .file(format!("{dir}/address"), nic.mac.clone())
        .file(format!("{dir}/mtu"), nic.mtu.to_string())
        .link(
            format!("/sys/class/net/{}", nic.name),
            relative("/sys/class/net", &dir),
        )
        .op(SysfsOp::NetUp {
            name: nic.name.clone(),
            mac: nic.mac.clone(),
            mtu: nic.mtu,
        });
    let devpath = dir.trim_start_matches("/sys").to_owned();
    seq.event(
        "add",
        &devpath,
        &[
            ("SUBSYSTEM", "net"),
            ("INTERFACE", &nic.name),
            ("IFINDEX", "{ifindex}"),
        ],
    );
    for queue in ["rx-0", "tx-0"] {
        seq.dir(format!("{dir}/queues/{queue}"));
        seq.event(
            "add",
            &format!("{devpath}/queues/{queue}"),
            &[("SUBSYSTEM", "queues")],
        );
    }
    dev.bind(&mut seq);
    seq
}

/// virtio-net removal: queues, net remove (the link leaves netlink), then the virtio and PCI
/// removal.
pub fn net_remove(dev: &VirtioDev, nic: &Nic, wakeup: Option<&str>) -> Seq {
    let mut seq = Seq::new();
    let dir = format!("{}/net/{}", dev.dir(), nic.name);
    let devpath = dir.trim_start_matches("/sys").to_owned();
    for queue in ["rx-0", "tx-0"] {
        seq.event(
            "remove",
            &format!("{devpath}/queues/{queue}"),
            &[("SUBSYSTEM", "queues")],
        );
    }
    seq.op(SysfsOp::NetDown(nic.name.clone()))
        .remove(format!("/sys/class/net/{}", nic.name))
        .remove(&dir);
    seq.event(
        "remove",
        &devpath,
        &[("SUBSYSTEM", "net"), ("INTERFACE", &nic.name)],
    );
    dev.disappear(&mut seq, wakeup);
    seq
}

/// A SCSI host (`hostN`) on a virtio-scsi controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScsiHost {
    /// The controller.
    pub dev: VirtioDev,
    /// N in `hostN`.
    pub host: u32,
}

impl ScsiHost {
    /// `…/virtioN/hostH`.
    pub fn dir(&self) -> String {
        format!("{}/host{}", self.dev.dir(), self.host)
    }

    fn target_dir(&self, id: u32) -> String {
        format!("{}/target{}:0:{id}", self.dir(), self.host)
    }

    /// `H:0:ID:LUN`.
    pub fn hctl(&self, id: u32, lun: u32) -> String {
        format!("{}:0:{id}:{lun}", self.host)
    }

    /// The directory of the SCSI device at `id:lun`.
    pub fn device_dir(&self, id: u32, lun: u32) -> String {
        format!("{}/{}", self.target_dir(id), self.hctl(id, lun))
    }
}

fn devpath(dir: &str) -> &str {
    dir.trim_start_matches("/sys")
}

/// virtio-scsi: PCI add, virtio add, workqueue, scsi host, scsi_host class, virtio bind, PCI
/// bind.
pub fn scsi_host_add(host: &ScsiHost, wakeup: Option<&str>) -> Seq {
    let mut seq = Seq::new();
    host.dev.appear(&mut seq, wakeup);
    let wq = format!("/devices/virtual/workqueue/scsi_tmf_{}", host.host);
    seq.dir(format!("/sys{wq}"));
    seq.event("add", &wq, &[("SUBSYSTEM", "workqueue")]);
    let dir = host.dir();
    seq.dir(&dir);
    seq.event(
        "add",
        devpath(&dir),
        &[("SUBSYSTEM", "scsi"), ("DEVTYPE", "scsi_host")],
    );
    let class_dir = format!("{dir}/scsi_host/host{}", host.host);
    seq.dir(&class_dir)
        .file(format!("{class_dir}/scan"), "")
        .file(format!("{class_dir}/proc_name"), "virtio_scsi")
        .link(
            format!("/sys/class/scsi_host/host{}", host.host),
            relative("/sys/class/scsi_host", &class_dir),
        );
    seq.event("add", devpath(&class_dir), &[("SUBSYSTEM", "scsi_host")]);
    host.dev.bind(&mut seq);
    seq
}

/// virtio-scsi removal (its disks must be removed first).
pub fn scsi_host_remove(host: &ScsiHost, wakeup: Option<&str>) -> Seq {
    let mut seq = Seq::new();
    let dir = host.dir();
    let class_dir = format!("{dir}/scsi_host/host{}", host.host);
    seq.remove(format!("/sys/class/scsi_host/host{}", host.host));
    seq.event("remove", devpath(&class_dir), &[("SUBSYSTEM", "scsi_host")]);
    seq.remove(&dir);
    seq.event(
        "remove",
        devpath(&dir),
        &[("SUBSYSTEM", "scsi"), ("DEVTYPE", "scsi_host")],
    );
    let wq = format!("/devices/virtual/workqueue/scsi_tmf_{}", host.host);
    seq.remove(format!("/sys{wq}"));
    seq.event("remove", &wq, &[("SUBSYSTEM", "workqueue")]);
    host.dev.disappear(&mut seq, wakeup);
    seq
}

/// A SCSI disk at `id:lun` on a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScsiDisk {
    /// Target id.
    pub id: u32,
    /// LUN.
    pub lun: u32,
    /// The block device.
    pub disk: Disk,
    /// The bsg node's minor.
    pub bsg_minor: u64,
}

const SCSI_MODALIAS: &str = "scsi:t-0x00";
const BSG_MAJOR: u64 = 249;

/// scsi-hd: target (when new), device, scsi_disk, scsi_device, bsg, two unit-attention
/// changes, bdi, block, sd bind.
pub fn scsi_disk_add(host: &ScsiHost, d: &ScsiDisk, new_target: bool) -> Seq {
    let mut seq = Seq::new();
    let target = host.target_dir(d.id);
    if new_target {
        seq.dir(&target);
        seq.event(
            "add",
            devpath(&target),
            &[("SUBSYSTEM", "scsi"), ("DEVTYPE", "scsi_target")],
        );
    }
    let dir = host.device_dir(d.id, d.lun);
    let hctl = host.hctl(d.id, d.lun);
    seq.dir(&dir);
    seq.event(
        "add",
        devpath(&dir),
        &[
            ("SUBSYSTEM", "scsi"),
            ("DEVTYPE", "scsi_device"),
            ("MODALIAS", SCSI_MODALIAS),
        ],
    );
    for class in ["scsi_disk", "scsi_device"] {
        seq.dir(format!("{dir}/{class}/{hctl}"));
        seq.event(
            "add",
            &format!("{}/{class}/{hctl}", devpath(&dir)),
            &[("SUBSYSTEM", class)],
        );
    }
    let bsg = format!("{dir}/bsg/{hctl}");
    seq.dir(&bsg).node(
        format!("/dev/bsg/{hctl}"),
        NodeKind::CharDevice,
        BSG_MAJOR,
        d.bsg_minor,
    );
    seq.event(
        "add",
        devpath(&bsg),
        &[
            ("SUBSYSTEM", "bsg"),
            ("MAJOR", &BSG_MAJOR.to_string()),
            ("MINOR", &d.bsg_minor.to_string()),
            ("DEVNAME", &format!("bsg/{hctl}")),
        ],
    );
    seq.link(
        format!("{dir}/driver"),
        relative(&dir, "/sys/bus/scsi/drivers/sd"),
    );
    for ua in ["REPORTED_LUNS_DATA_HAS_CHANGED", "POWER_ON_RESET_OCCURRED"] {
        seq.event(
            "change",
            devpath(&dir),
            &[
                ("SUBSYSTEM", "scsi"),
                ("SDEV_UA", ua),
                ("DEVTYPE", "scsi_device"),
                ("DRIVER", "sd"),
                ("MODALIAS", SCSI_MODALIAS),
            ],
        );
    }
    d.disk.appear(&mut seq, &dir);
    seq.event(
        "bind",
        devpath(&dir),
        &[
            ("SUBSYSTEM", "scsi"),
            ("DEVTYPE", "scsi_device"),
            ("DRIVER", "sd"),
            ("MODALIAS", SCSI_MODALIAS),
        ],
    );
    seq
}

/// scsi-hd removal: bsg, bdi, block, class devices, sd unbind, device, target (when last).
pub fn scsi_disk_remove(host: &ScsiHost, d: &ScsiDisk, last_on_target: bool) -> Seq {
    let mut seq = Seq::new();
    let dir = host.device_dir(d.id, d.lun);
    let hctl = host.hctl(d.id, d.lun);
    let bsg = format!("{dir}/bsg/{hctl}");
    seq.remove(format!("/dev/bsg/{hctl}")).remove(&bsg);
    seq.event(
        "remove",
        devpath(&bsg),
        &[
            ("SUBSYSTEM", "bsg"),
            ("MAJOR", &BSG_MAJOR.to_string()),
            ("MINOR", &d.bsg_minor.to_string()),
            ("DEVNAME", &format!("bsg/{hctl}")),
        ],
    );
    d.disk.disappear(&mut seq, &dir);
    for class in ["scsi_disk", "scsi_device"] {
        seq.remove(format!("{dir}/{class}/{hctl}"));
        seq.event(
            "remove",
            &format!("{}/{class}/{hctl}", devpath(&dir)),
            &[("SUBSYSTEM", class)],
        );
    }
    seq.remove(format!("{dir}/driver"));
    seq.event(
        "unbind",
        devpath(&dir),
        &[("SUBSYSTEM", "scsi"), ("DEVTYPE", "scsi_device")],
    );
    seq.remove(&dir);
    seq.event(
        "remove",
        devpath(&dir),
        &[
            ("SUBSYSTEM", "scsi"),
            ("DEVTYPE", "scsi_device"),
            ("MODALIAS", SCSI_MODALIAS),
        ],
    );
    if last_on_target {
        let target = host.target_dir(d.id);
        seq.remove(&target);
        seq.event(
            "remove",
            devpath(&target),
            &[("SUBSYSTEM", "scsi"), ("DEVTYPE", "scsi_target")],
        );
    }
    seq
}
