//! Devices: the kernel's uevents, the watcher that waits for hot-plugged devices, PCI paths,
//! device lookups for storage and containers, the device handlers of CreateContainer, and
//! CPU/memory hotplug.

mod error;
mod handlers;
mod hotplug;
mod lookup;
mod matchers;
pub mod pci;
mod spec;
mod uevent;
mod vfio;
mod watch_loop;
mod watcher;

pub use error::DeviceError;
pub use handlers::{AddedDevice, DEVICE_HANDLERS, DeviceAdditions, DeviceRequest, add_devices};
pub use hotplug::{CpuList, CpusetTarget, mem_hotplug_by_probe, online_cpu_mem};
pub use lookup::{
    BlockDevice, DeviceContext, DeviceNode, block_device_node, net_pci, parse_scsi_address,
    pci_device, pmem, scsi, vfio_group, virtio_blk_mmio, virtio_blk_pci,
};
pub use matchers::{
    ACPI_DEVPATH_PREFIX, NetPciMatcher, PciDeviceMatcher, PmemMatcher, ScsiBlockMatcher,
    VfioGroupMatcher, VirtioBlkMmioMatcher, VirtioBlkPciMatcher,
};
pub use pci::{PciAddress, PciDevice, PciError, PciPath, SlotFn};
pub use spec::{PciMap, rewrite_pci_env};
pub use uevent::{Uevent, UeventError};
pub use watch_loop::watch_uevents;
pub use watcher::{DeviceWatcher, UeventMatcher, WaitError};
