//! VFIO devices: a PCI function in an IOMMU group; bound to `vfio-pci` it gets a group node
//! `/dev/vfio/<group>` and its `vfio` uevent.

use kata_agent::host::NodeKind;

use super::kernel::{Seq, relative};
use super::pci::PciFunction;

/// The (dynamic) major of VFIO group nodes.
pub const VFIO_MAJOR: u64 = 243;

/// A VFIO device as plugged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VfioDev {
    /// The PCI function.
    pub pci: PciFunction,
    /// Its IOMMU group.
    pub group: u32,
    /// The driver bound now, if any.
    pub driver: Option<String>,
}

fn group_dir(group: u32) -> String {
    format!("/sys/kernel/iommu_groups/{group}")
}

/// The device appears in its IOMMU group; a guest driver binds if one was named.
pub fn vfio_add(dev: &VfioDev, wakeup: Option<&str>) -> Seq {
    let mut seq = Seq::new();
    let group = group_dir(dev.group);
    seq.dir(format!("{group}/devices"));
    dev.pci.appear(&mut seq, wakeup);
    // The kernel creates the group links before announcing the device.
    seq.link(
        format!("{}/iommu_group", dev.pci.dir),
        relative(&dev.pci.dir, &group),
    )
    .link(
        format!("{group}/devices/{}", dev.pci.bdf),
        relative(&format!("{group}/devices"), &dev.pci.dir),
    );
    if let Some(driver) = &dev.driver {
        driver_files(&mut seq, driver);
        dev.pci.bind(&mut seq, driver);
    }
    seq
}

/// `bind`/`unbind` files of a PCI driver, so writes to them reach the VMM.
pub fn driver_files(seq: &mut Seq, driver: &str) {
    let dir = format!("/sys/bus/pci/drivers/{driver}");
    seq.dir(&dir)
        .file(format!("{dir}/bind"), "")
        .file(format!("{dir}/unbind"), "")
        .file(format!("{dir}/new_id"), "");
}

/// `vfio-pci` binds (after `driver_override` and `drivers_probe`): the group node appears with
/// its `vfio` uevent when it is the group's first bound device (`minor` is its minor).
pub fn vfio_bind(dev: &VfioDev, new_group_node: Option<u64>) -> Seq {
    let mut seq = Seq::new();
    if let Some(minor) = new_group_node {
        let dir = format!("/sys/devices/virtual/vfio/{}", dev.group);
        seq.dir(&dir)
            .file(format!("{dir}/dev"), format!("{VFIO_MAJOR}:{minor}"))
            .node(
                format!("/dev/vfio/{}", dev.group),
                NodeKind::CharDevice,
                VFIO_MAJOR,
                minor,
            );
        seq.event(
            "add",
            dir.trim_start_matches("/sys"),
            &[
                ("SUBSYSTEM", "vfio"),
                ("MAJOR", &VFIO_MAJOR.to_string()),
                ("MINOR", &minor.to_string()),
                ("DEVNAME", &format!("vfio/{}", dev.group)),
            ],
        );
    }
    dev.pci.bind(&mut seq, "vfio-pci");
    seq
}

/// The bound driver lets go; the group node goes with the group's last `vfio-pci` device.
pub fn vfio_unbind(dev: &VfioDev, driver: &str, drop_group_node: Option<u64>) -> Seq {
    let mut seq = Seq::new();
    if let Some(minor) = drop_group_node {
        let dir = format!("/sys/devices/virtual/vfio/{}", dev.group);
        seq.remove(format!("/dev/vfio/{}", dev.group)).remove(&dir);
        seq.event(
            "remove",
            dir.trim_start_matches("/sys"),
            &[
                ("SUBSYSTEM", "vfio"),
                ("MAJOR", &VFIO_MAJOR.to_string()),
                ("MINOR", &minor.to_string()),
                ("DEVNAME", &format!("vfio/{}", dev.group)),
            ],
        );
    }
    dev.pci.unbind(&mut seq, driver);
    seq
}

/// The device goes (after its driver let go).
pub fn vfio_remove(dev: &VfioDev, wakeup: Option<&str>) -> Seq {
    let mut seq = Seq::new();
    let group = group_dir(dev.group);
    seq.remove(format!("{group}/devices/{}", dev.pci.bdf));
    dev.pci.disappear(&mut seq, wakeup);
    seq
}
