//! The [`UeventMatcher`]s of each device kind: which kernel `add` event announces the device.
//!
//! Each one's `Display` names the device and the rule, so a timeout error says what was awaited.

use std::fmt;

use super::uevent::Uevent;
use super::watcher::UeventMatcher;

const BLOCK: &str = "block";
/// Where ACPI puts NVDIMM (pmem) regions.
pub const ACPI_DEVPATH_PREFIX: &str = "/devices/LNXSYSTM";

/// `devpath` minus `/block/<devname>`, when it ends so and `devname` has no `/`.
fn block_parent<'a>(devpath: &'a str, devname: &str) -> Option<&'a str> {
    if devname.is_empty() || devname.contains('/') {
        return None;
    }
    devpath.strip_suffix(devname)?.strip_suffix("/block/")
}

/// The whole disk of a virtio-blk PCI device: subsystem `block`, devpath
/// `<pci devpath>/virtioN/block/<dev>` (a partition, one level deeper, does not match).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtioBlkPciMatcher {
    pci_devpath: String,
}

impl VirtioBlkPciMatcher {
    /// The disk of the PCI device at `pci_devpath` (`/devices/pci0000:00/0000:00:02.0/...`).
    pub fn new(pci_devpath: impl Into<String>) -> Self {
        VirtioBlkPciMatcher {
            pci_devpath: pci_devpath.into(),
        }
    }
}

/// Whether `name` is `virtio` followed by a decimal number.
pub(crate) fn is_virtio_dir(name: &str) -> bool {
    name.strip_prefix("virtio")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl UeventMatcher for VirtioBlkPciMatcher {
    fn matches(&self, event: &Uevent) -> bool {
        if event.subsystem != BLOCK {
            return false;
        }
        let Some(parent) = block_parent(&event.devpath, &event.devname) else {
            return false;
        };
        parent
            .strip_prefix(&self.pci_devpath)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(is_virtio_dir)
    }
}

impl fmt::Display for VirtioBlkPciMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "virtio-blk PCI disk (block uevent {}/virtioN/block/<dev>)",
            self.pci_devpath
        )
    }
}

/// A block device by name (virtio-blk MMIO, or any disk known by its /dev name): subsystem
/// `block`, devpath ending `/block/<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtioBlkMmioMatcher {
    devname: String,
}

impl VirtioBlkMmioMatcher {
    /// The disk `devname` (`vda`).
    pub fn new(devname: impl Into<String>) -> Self {
        VirtioBlkMmioMatcher {
            devname: devname.into(),
        }
    }
}

impl UeventMatcher for VirtioBlkMmioMatcher {
    fn matches(&self, event: &Uevent) -> bool {
        event.subsystem == BLOCK
            && event.devname == self.devname
            && block_parent(&event.devpath, &self.devname).is_some()
    }
}

impl fmt::Display for VirtioBlkMmioMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "block device {} (block uevent .../block/{})",
            self.devname, self.devname
        )
    }
}

/// An NVDIMM disk: subsystem `block`, devpath `/devices/LNXSYSTM.../block/<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PmemMatcher {
    devname: String,
}

impl PmemMatcher {
    /// The disk `devname` (`pmem0`).
    pub fn new(devname: impl Into<String>) -> Self {
        PmemMatcher {
            devname: devname.into(),
        }
    }
}

impl UeventMatcher for PmemMatcher {
    fn matches(&self, event: &Uevent) -> bool {
        event.subsystem == BLOCK
            && event.devname == self.devname
            && event.devpath.starts_with(ACPI_DEVPATH_PREFIX)
            && block_parent(&event.devpath, &self.devname).is_some()
    }
}

impl fmt::Display for PmemMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pmem device {} (block uevent {ACPI_DEVPATH_PREFIX}.../block/{})",
            self.devname, self.devname
        )
    }
}

/// A SCSI disk by target id and LUN on host 0, channel 0: subsystem `block`, devpath
/// `.../0:0:<id>:<lun>/block/<dev>`. Like Kata, this assumes the guest has one SCSI host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScsiBlockMatcher {
    id: u32,
    lun: u32,
}

impl ScsiBlockMatcher {
    /// Target `id`, LUN `lun`.
    pub fn new(id: u32, lun: u32) -> Self {
        ScsiBlockMatcher { id, lun }
    }

    /// The kernel's name of the SCSI device, `0:0:<id>:<lun>`.
    pub fn hctl(&self) -> String {
        format!("0:0:{}:{}", self.id, self.lun)
    }
}

impl UeventMatcher for ScsiBlockMatcher {
    fn matches(&self, event: &Uevent) -> bool {
        if event.subsystem != BLOCK || !event.is_add() {
            return false;
        }
        block_parent(&event.devpath, &event.devname)
            .and_then(|parent| parent.rsplit('/').next())
            .is_some_and(|hctl| hctl == self.hctl())
    }
}

impl fmt::Display for ScsiBlockMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCSI disk {}:{} (block uevent .../{}/block/<dev>)",
            self.id,
            self.lun,
            self.hctl()
        )
    }
}

/// A PCI device itself: devpath exactly `<pci devpath>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDeviceMatcher {
    devpath: String,
}

impl PciDeviceMatcher {
    /// The device at `devpath`.
    pub fn new(devpath: impl Into<String>) -> Self {
        PciDeviceMatcher {
            devpath: devpath.into(),
        }
    }
}

impl UeventMatcher for PciDeviceMatcher {
    fn matches(&self, event: &Uevent) -> bool {
        event.devpath == self.devpath
    }
}

impl fmt::Display for PciDeviceMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PCI device (uevent {})", self.devpath)
    }
}

/// A VFIO group's character device: devpath `/devices/virtual/vfio/<group>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VfioGroupMatcher {
    group: u32,
}

impl VfioGroupMatcher {
    /// IOMMU group `group`.
    pub fn new(group: u32) -> Self {
        VfioGroupMatcher { group }
    }

    /// `/devices/virtual/vfio/<group>`.
    pub fn devpath(&self) -> String {
        format!("/devices/virtual/vfio/{}", self.group)
    }
}

impl UeventMatcher for VfioGroupMatcher {
    fn matches(&self, event: &Uevent) -> bool {
        event.devpath == self.devpath()
    }
}

impl fmt::Display for VfioGroupMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VFIO group {} (uevent {})", self.group, self.devpath())
    }
}

/// The network interface of a PCI NIC: subsystem `net`, `INTERFACE` set, devpath under
/// `<pci devpath>/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetPciMatcher {
    pci_devpath: String,
}

impl NetPciMatcher {
    /// The interface of the PCI device at `pci_devpath`.
    pub fn new(pci_devpath: impl Into<String>) -> Self {
        NetPciMatcher {
            pci_devpath: pci_devpath.into(),
        }
    }
}

impl UeventMatcher for NetPciMatcher {
    fn matches(&self, event: &Uevent) -> bool {
        event.is_add()
            && event.subsystem == "net"
            && !event.interface.is_empty()
            && event
                .devpath
                .strip_prefix(&self.pci_devpath)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

impl fmt::Display for NetPciMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "network interface of PCI device (net uevent under {}/)",
            self.pci_devpath
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, devpath: &str, subsystem: &str, devname: &str, ifname: &str) -> Uevent {
        Uevent {
            action: action.into(),
            devpath: devpath.into(),
            subsystem: subsystem.into(),
            devname: devname.into(),
            interface: ifname.into(),
            seqnum: 1,
            vars: Default::default(),
        }
    }

    // Devpaths of a real q35 guest (virtio-blk behind root port 02, virtio-net behind 03).
    const BLK: &str = "/devices/pci0000:00/0000:00:02.0/0000:01:00.0";
    const NET: &str = "/devices/pci0000:00/0000:00:03.0/0000:02:00.0";
    const SDA: &str =
        "/devices/pci0000:00/0000:00:04.0/0000:03:00.0/virtio2/host0/target0:0:1/0:0:1:2/block/sda";

    #[test]
    fn each_matcher_takes_its_device_only() {
        let vda = event(
            "add",
            &format!("{BLK}/virtio0/block/vda"),
            "block",
            "vda",
            "",
        );
        let vda1 = event(
            "add",
            &format!("{BLK}/virtio0/block/vda/vda1"),
            "block",
            "vda1",
            "",
        );
        let sda = event("add", SDA, "block", "sda", "");
        let eth0 = event("add", &format!("{NET}/virtio1/net/eth0"), "net", "", "eth0");
        let pci = event("add", BLK, "pci", "", "");
        let pmem = "/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0012:00/ndbus0/region0/btt0.0/block/pmem0";
        let pmem = event("add", pmem, "block", "pmem0", "");
        let vfio = event("add", "/devices/virtual/vfio/12", "vfio", "vfio/12", "");
        let all = [&vda, &vda1, &sda, &eth0, &pci, &pmem, &vfio];
        let picks = |m: &dyn UeventMatcher| -> Vec<usize> {
            (0..all.len()).filter(|&i| m.matches(all[i])).collect()
        };
        assert_eq!(picks(&VirtioBlkPciMatcher::new(BLK)), [0]);
        assert_eq!(
            picks(&VirtioBlkPciMatcher::new(&BLK[..BLK.len() - 1])),
            [] as [usize; 0]
        );
        assert_eq!(picks(&VirtioBlkMmioMatcher::new("vda")), [0]);
        assert_eq!(picks(&VirtioBlkMmioMatcher::new("vda1")), [] as [usize; 0]);
        assert_eq!(picks(&ScsiBlockMatcher::new(1, 2)), [2]);
        assert_eq!(picks(&ScsiBlockMatcher::new(1, 22)), [] as [usize; 0]);
        assert_eq!(picks(&NetPciMatcher::new(NET)), [3]);
        assert_eq!(picks(&PciDeviceMatcher::new(BLK)), [4]);
        assert_eq!(picks(&PmemMatcher::new("pmem0")), [5]);
        assert_eq!(picks(&VfioGroupMatcher::new(12)), [6]);
        assert_eq!(picks(&VfioGroupMatcher::new(1)), [] as [usize; 0]);
        let removed = event("remove", SDA, "block", "sda", "");
        assert!(!ScsiBlockMatcher::new(1, 2).matches(&removed));
        assert!(ScsiBlockMatcher::new(1, 2).to_string().contains("0:0:1:2"));
    }
}
