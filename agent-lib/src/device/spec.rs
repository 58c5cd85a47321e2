//! Rewriting a container's OCI spec for the guest: device numbers, device cgroup rules, and
//! the PCI addresses in `PCIDEVICE_*` variables.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, Spec};

use super::error::DeviceError;
use super::pci::PciAddress;

/// Host PCI address → guest PCI address of a container's passed-through devices.
pub type PciMap = BTreeMap<PciAddress, PciAddress>;

/// How one requested device looks in the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DevUpdate {
    pub typ: LinuxDeviceType,
    pub major: i64,
    pub minor: i64,
    /// A new node path inside the container (VFIO groups get the guest's group number).
    pub final_path: Option<PathBuf>,
    /// The node in the guest.
    pub guest_path: PathBuf,
}

/// A hashable name of a device type (`LinuxDeviceType` is not `Hash`).
fn type_key(typ: LinuxDeviceType) -> &'static str {
    match typ {
        LinuxDeviceType::A => "a",
        LinuxDeviceType::B => "b",
        LinuxDeviceType::C => "c",
        LinuxDeviceType::U => "u",
        LinuxDeviceType::P => "p",
    }
}

/// Applies `updates` (by container path) to `spec`: each `linux.devices` entry at that path
/// gets the guest's numbers (and path), `linux.resources.devices` rules naming the host numbers
/// get the guest's, and an `rwm` allow rule is added for each guest device.
pub(crate) fn apply_updates(
    spec: &mut Spec,
    updates: &BTreeMap<String, DevUpdate>,
) -> Result<(), DeviceError> {
    if updates.is_empty() {
        return Ok(());
    }
    let linux = spec
        .linux_mut()
        .as_mut()
        .ok_or_else(|| DeviceError::Spec("the spec has no linux section".into()))?;
    let mut pending: BTreeMap<&str, &DevUpdate> =
        updates.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut by_host: HashMap<(&'static str, i64, i64), &DevUpdate> = HashMap::new();
    for dev in linux.devices_mut().iter_mut().flatten() {
        let Some(path) = dev.path().to_str() else {
            continue;
        };
        let Some(update) = pending.remove(path) else {
            continue;
        };
        let host = (type_key(dev.typ()), dev.major(), dev.minor());
        if by_host.insert(host, update).is_some() {
            return Err(DeviceError::Spec(format!(
                "two devices have host numbers {}:{}",
                host.1, host.2
            )));
        }
        tracing::debug!(
            container_path = path,
            host = %format!("{}:{}", host.1, host.2),
            guest = %format!("{}:{}", update.major, update.minor),
            "rewriting spec device"
        );
        dev.set_major(update.major);
        dev.set_minor(update.minor);
        if let Some(final_path) = &update.final_path {
            dev.set_path(final_path.clone());
        }
    }
    if !pending.is_empty() {
        let missing: Vec<&str> = pending.keys().copied().collect();
        return Err(DeviceError::Spec(format!(
            "devices missing from linux.devices: {}",
            missing.join(", ")
        )));
    }
    let resources = linux
        .resources_mut()
        .get_or_insert_with(LinuxResources::default);
    let rules = resources.devices_mut().get_or_insert_with(Vec::new);
    for rule in rules.iter_mut() {
        let (Some(major), Some(minor)) = (rule.major(), rule.minor()) else {
            continue;
        };
        let typ = type_key(rule.typ().unwrap_or_default());
        if let Some(update) = by_host.get(&(typ, major, minor)) {
            rule.set_major(Some(update.major));
            rule.set_minor(Some(update.minor));
        }
    }
    for update in updates.values() {
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(update.typ));
        rule.set_major(Some(update.major));
        rule.set_minor(Some(update.minor));
        rule.set_access(Some("rwm".into()));
        rules.push(rule);
    }
    Ok(())
}

/// Rewrites the host PCI addresses in SR-IOV device-plugin variables to the guest's:
/// `PCIDEVICE_<res>=<addr>[,<addr>...]` is rewritten when every address is in `map`, and then
/// its `PCIDEVICE_<res>_INFO` has the same addresses replaced. A variable with an address that
/// is not a PCI address, or not in `map`, is left alone.
pub fn rewrite_pci_env(env: &mut [String], map: &PciMap) {
    let mut info_maps: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for var in env.iter_mut() {
        let Some((name, value)) = var.split_once('=') else {
            continue;
        };
        if !name.starts_with("PCIDEVICE_") || name.ends_with("_INFO") {
            continue;
        }
        let mut pairs = Vec::new();
        for host in value.split(',') {
            let guest = host
                .parse::<PciAddress>()
                .ok()
                .and_then(|addr| map.get(&addr));
            match guest {
                Some(guest) => pairs.push((host.to_owned(), guest.to_string())),
                None => {
                    tracing::warn!(
                        name,
                        host,
                        "PCI address not translated; variable left as is"
                    );
                    pairs.clear();
                    break;
                }
            }
        }
        if pairs.is_empty() {
            continue;
        }
        let guests: Vec<&str> = pairs.iter().map(|(_, g)| g.as_str()).collect();
        let rewritten = format!("{name}={}", guests.join(","));
        info_maps.insert(format!("{name}_INFO"), pairs);
        *var = rewritten;
    }
    for var in env.iter_mut() {
        let Some((name, _)) = var.split_once('=') else {
            continue;
        };
        if let Some(pairs) = info_maps.get(name) {
            for (host, guest) in pairs {
                *var = var.replace(host.as_str(), guest);
            }
        }
    }
}
