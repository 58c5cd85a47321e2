//! The device handlers of CreateContainer: find each requested device in the guest and
//! rewrite the container's OCI spec for it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::error::DeviceError;
use super::lookup::{DeviceContext, DeviceNode, pmem, scsi, virtio_blk_mmio, virtio_blk_pci};
use super::pci::PciPath;
use super::spec::{DevUpdate, PciMap, apply_updates, rewrite_pci_env};
use super::vfio::vfio_pci;

/// One device of a CreateContainer request (Kata's `Device` message).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceRequest {
    /// How the runtime identifies the device: a PCI path (`blk`), `<id>:<lun>` (`scsi`).
    pub id: String,
    /// The handler: `blk`, `mmioblk`, `scsi`, `nvdimm`, `vfio-pci`, `vfio-pci-gk`.
    pub kind: String,
    /// The device's node in the guest, when the runtime knows it (`mmioblk`, `nvdimm`).
    pub vm_path: String,
    /// The device's path in the container; it names the `linux.devices` entry to rewrite.
    pub container_path: String,
    /// Handler options (`vfio-pci`: `<host BDF>=<guest PCI path>` per device).
    pub options: Vec<String>,
}

/// One device added to a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedDevice {
    /// The request's container path.
    pub container_path: String,
    /// `b` or `c`.
    pub typ: LinuxDeviceType,
    /// The node in the guest (`/dev/vda`, `/dev/vfio/12`).
    pub guest_path: PathBuf,
    /// Guest major number.
    pub major: i64,
    /// Guest minor number.
    pub minor: i64,
}

/// What [`add_devices`] did, for the container to keep.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceAdditions {
    /// The devices, in request order (VFIO-GK requests add none).
    pub devices: Vec<AddedDevice>,
    /// Host → guest PCI addresses of the container's VFIO devices: keep it to rewrite
    /// `PCIDEVICE_*` in later ExecProcess requests ([`super::rewrite_pci_env`]).
    pub pci_map: PciMap,
}

/// The device types CreateContainer handles (GetGuestDetails' `device_handlers`).
pub const DEVICE_HANDLERS: [&str; 6] = [
    "blk",
    "mmioblk",
    "nvdimm",
    "scsi",
    "vfio-pci",
    "vfio-pci-gk",
];

fn validate(device: &DeviceRequest) -> Result<(), DeviceError> {
    let what = || {
        format!(
            "device {{ type: {:?}, id: {:?}, vm_path: {:?}, container_path: {:?} }}",
            device.kind, device.id, device.vm_path, device.container_path
        )
    };
    if device.kind.is_empty() {
        return Err(DeviceError::Invalid(format!("{}: empty type", what())));
    }
    if device.id.is_empty() && device.vm_path.is_empty() {
        return Err(DeviceError::Invalid(format!(
            "{}: no id and no vm_path",
            what()
        )));
    }
    if device.container_path.is_empty() {
        return Err(DeviceError::Invalid(format!(
            "{}: empty container_path",
            what()
        )));
    }
    match device.kind.as_str() {
        "blk" | "scsi" | "vfio-pci" | "vfio-pci-gk" => Ok(()),
        "mmioblk" | "nvdimm" if device.vm_path.is_empty() => Err(DeviceError::Invalid(format!(
            "{}: {} needs vm_path",
            what(),
            device.kind
        ))),
        "mmioblk" | "nvdimm" => Ok(()),
        other => Err(DeviceError::Invalid(format!(
            "{}: no handler for device type {other:?}",
            what()
        ))),
    }
}

fn block_update(node: &DeviceNode) -> Result<DevUpdate, DeviceError> {
    let number = |n: u64| {
        i64::try_from(n).map_err(|_| DeviceError::Numbers {
            device: node.path.display().to_string(),
            reason: format!("number {n} out of range"),
        })
    };
    Ok(DevUpdate {
        typ: LinuxDeviceType::B,
        major: number(node.major)?,
        minor: number(node.minor)?,
        final_path: None,
        guest_path: node.path.clone(),
    })
}

/// Finds one device; returns its spec update and PCI pairs.
async fn handle(
    ctx: &DeviceContext,
    device: &DeviceRequest,
) -> Result<
    (
        Option<DevUpdate>,
        Vec<(super::PciAddress, super::PciAddress)>,
    ),
    DeviceError,
> {
    let node = match device.kind.as_str() {
        "blk" => {
            let path: PciPath = device.id.parse()?;
            virtio_blk_pci(ctx, &path).await?
        }
        "mmioblk" => virtio_blk_mmio(ctx, &device.vm_path).await?,
        "scsi" => scsi(ctx, &device.id).await?,
        "nvdimm" => pmem(ctx, &device.vm_path).await?,
        kind @ ("vfio-pci" | "vfio-pci-gk") => {
            let update = vfio_pci(ctx, &device.options, kind == "vfio-pci").await?;
            return Ok((update.dev, update.pci));
        }
        other => {
            return Err(DeviceError::Invalid(format!(
                "no handler for device type {other:?}"
            )));
        }
    };
    Ok((Some(block_update(&node)?), Vec::new()))
}

/// Finds every requested device (waiting up to the hotplug timeout for each one not there
/// yet), then rewrites `spec` for the guest: `linux.devices` numbers (and VFIO paths) by
/// container path, `linux.resources.devices` rules from host to guest numbers, one `rwm`
/// allow rule per device, and the PCI addresses in `PCIDEVICE_*` variables of `process.env`.
///
/// All requests are validated before any device is looked up, and `spec` is only changed
/// when everything succeeded. Side effects in the guest that a failure leaves behind are the
/// SCSI scans and VFIO rebinds already done (harmless and idempotent).
pub async fn add_devices(
    ctx: &DeviceContext,
    devices: &[DeviceRequest],
    spec: &mut Spec,
) -> Result<DeviceAdditions, DeviceError> {
    for device in devices {
        validate(device)?;
    }
    let mut updates: BTreeMap<String, DevUpdate> = BTreeMap::new();
    let mut additions = DeviceAdditions::default();
    for device in devices {
        tracing::info!(
            kind = %device.kind,
            id = %device.id,
            vm_path = %device.vm_path,
            container_path = %device.container_path,
            "adding device"
        );
        let (update, pci) = handle(ctx, device).await?;
        for (host, guest) in pci {
            match additions.pci_map.insert(host, guest) {
                Some(other) if other != guest => {
                    return Err(DeviceError::Invalid(format!(
                        "host PCI device {host} maps to guest {other} and {guest}"
                    )));
                }
                _ => {}
            }
        }
        let Some(update) = update else { continue };
        if updates.contains_key(&device.container_path) {
            return Err(DeviceError::Invalid(format!(
                "two devices for container path {}",
                device.container_path
            )));
        }
        additions.devices.push(AddedDevice {
            container_path: device.container_path.clone(),
            typ: update.typ,
            guest_path: update.guest_path.clone(),
            major: update.major,
            minor: update.minor,
        });
        updates.insert(device.container_path.clone(), update);
    }
    let mut rewritten = spec.clone();
    apply_updates(&mut rewritten, &updates)?;
    if !additions.pci_map.is_empty()
        && let Some(env) = rewritten
            .process_mut()
            .as_mut()
            .and_then(|p| p.env_mut().as_mut())
    {
        rewrite_pci_env(env, &additions.pci_map);
    }
    *spec = rewritten;
    Ok(additions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_handler_is_accepted_and_others_are_not() {
        let device = |kind: &str| DeviceRequest {
            id: "02/00".into(),
            kind: kind.into(),
            vm_path: "/dev/vda".into(),
            container_path: "/dev/xda".into(),
            options: Vec::new(),
        };
        for kind in DEVICE_HANDLERS {
            validate(&device(kind)).unwrap_or_else(|e| panic!("{kind}: {e}"));
        }
        assert!(validate(&device("virtio-fs")).is_err());
    }
}
