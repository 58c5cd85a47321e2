//! VFIO PCI devices: finding the guest devices of a request, checking their IOMMU group, and
//! binding them to `vfio-pci` (for `vfio-pci`; `vfio-pci-gk` keeps the guest kernel driver).

use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxDeviceType;

use super::error::DeviceError;
use super::lookup::{DeviceContext, pci_device, vfio_group};
use super::pci::{PciAddress, PciPath};
use super::spec::DevUpdate;

const SYS_BUS_PCI: &str = "/sys/bus/pci";
const VFIO_DRIVER: &str = "vfio-pci";

/// What a VFIO request does to the spec: the group's node (`vfio-pci` only) and the
/// host → guest PCI addresses.
#[derive(Debug, Default)]
pub(crate) struct VfioUpdate {
    pub dev: Option<DevUpdate>,
    pub pci: Vec<(PciAddress, PciAddress)>,
}

/// One `options[]` entry: `<host BDF>=<guest PCI path>`; `None` when the guest path is empty
/// (the runtime could not resolve it: the device is used as the guest finds it).
fn parse_option(option: &str) -> Result<Option<(PciAddress, PciPath)>, DeviceError> {
    let bad = |why: String| DeviceError::Invalid(format!("VFIO option {option:?}: {why}"));
    let parts: Vec<&str> = option.split('=').collect();
    let [host, path] = parts[..] else {
        return Err(bad("expected <host BDF>=<guest PCI path>".into()));
    };
    let host = host
        .parse()
        .map_err(|e| bad(format!("host address: {e}")))?;
    if path.is_empty() {
        tracing::warn!(
            option,
            "VFIO device has no guest PCI path; no guest-side setup"
        );
        return Ok(None);
    }
    let path = path.parse().map_err(|e| bad(format!("guest path: {e}")))?;
    Ok(Some((host, path)))
}

fn device_dir(addr: PciAddress) -> PathBuf {
    Path::new(SYS_BUS_PCI)
        .join("devices")
        .join(addr.to_string())
}

/// The IOMMU group of guest device `addr`, from its `iommu_group` link.
fn iommu_group(ctx: &DeviceContext, addr: PciAddress) -> Result<u32, DeviceError> {
    let link = device_dir(addr).join("iommu_group");
    let target = match ctx.sysfs.read_link(&link) {
        Ok(target) => target,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(DeviceError::Iommu(format!("{addr} has no IOMMU group")));
        }
        Err(e) => return Err(DeviceError::sysfs("read link", link, e)),
    };
    target
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            DeviceError::Iommu(format!(
                "{addr}: unexpected iommu_group link {}",
                target.display()
            ))
        })
}

/// Binds guest device `addr` to `vfio-pci`, like `driverctl set-override`: sets
/// `driver_override`, unbinds the current driver if another, and asks the kernel to probe.
fn bind_vfio(ctx: &DeviceContext, addr: PciAddress) -> Result<(), DeviceError> {
    let sysfs = &*ctx.sysfs;
    let dir = device_dir(addr);
    let bdf = addr.to_string();
    let write = |path: PathBuf, data: &[u8]| {
        sysfs
            .write(&path, data)
            .map_err(|e| DeviceError::sysfs("write", path, e))
    };
    write(dir.join("driver_override"), VFIO_DRIVER.as_bytes())?;
    let driver = dir.join("driver");
    match sysfs.read_link(&driver) {
        Ok(current) if current.file_name().is_some_and(|n| n == VFIO_DRIVER) => return Ok(()),
        Ok(current) => {
            tracing::info!(device = %bdf, from = %current.display(), "unbinding PCI driver");
            write(driver.join("unbind"), bdf.as_bytes())?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(DeviceError::sysfs("read link", driver, e)),
    }
    write(Path::new(SYS_BUS_PCI).join("drivers_probe"), bdf.as_bytes())?;
    tracing::info!(device = %bdf, "bound to vfio-pci");
    Ok(())
}

/// Handles one `vfio-pci` (`in_guest`) or `vfio-pci-gk` request.
///
/// Every device is found and (for `vfio-pci`) every IOMMU group checked before any driver is
/// touched, so a malformed or inconsistent request changes nothing. A timeout waiting for the
/// group's node after the rebind leaves the devices bound to `vfio-pci`; a retry finds them so.
pub(crate) async fn vfio_pci(
    ctx: &DeviceContext,
    options: &[String],
    in_guest: bool,
) -> Result<VfioUpdate, DeviceError> {
    let mut pci = Vec::new();
    for option in options {
        let Some((host, path)) = parse_option(option)? else {
            continue;
        };
        let guest = pci_device(ctx, &path).await?;
        pci.push((host, guest.address));
    }
    if !in_guest {
        return Ok(VfioUpdate { dev: None, pci });
    }
    let mut group = None;
    for &(_, guest) in &pci {
        let this = iommu_group(ctx, guest)?;
        match group {
            Some(g) if g != this => {
                return Err(DeviceError::Iommu(format!(
                    "{guest} is in IOMMU group {this}, not in group {g} of the other devices"
                )));
            }
            _ => group = Some(this),
        }
    }
    let group = group.ok_or_else(|| {
        DeviceError::Invalid("vfio-pci device with no guest PCI device in its options".into())
    })?;
    for &(_, guest) in &pci {
        bind_vfio(ctx, guest)?;
    }
    let node = vfio_group(ctx, group).await?;
    let number = |n: u64| {
        i64::try_from(n).map_err(|_| DeviceError::Numbers {
            device: node.path.display().to_string(),
            reason: format!("number {n} out of range"),
        })
    };
    let dev = DevUpdate {
        typ: LinuxDeviceType::C,
        major: number(node.major)?,
        minor: number(node.minor)?,
        final_path: Some(node.path.clone()),
        guest_path: node.path.clone(),
    };
    Ok(VfioUpdate {
        dev: Some(dev),
        pci,
    })
}
