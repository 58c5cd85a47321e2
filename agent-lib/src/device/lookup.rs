//! Finding devices: block disks by PCI path, name, SCSI address or pmem name; PCI devices;
//! NICs; VFIO groups.
//!
//! Every lookup goes the same way: a device the watcher already saw is returned at once; a
//! device already in sysfs (cold-plugged before the agent listened, so possibly never
//! announced to it) is found there; otherwise the lookup waits up to the hotplug timeout for
//! its uevent. The wait re-checks what arrived under the watcher's lock before registering,
//! so an event that lands between the sysfs look and the wait is not lost.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::error::DeviceError;
use super::matchers::{
    NetPciMatcher, PciDeviceMatcher, PmemMatcher, ScsiBlockMatcher, VfioGroupMatcher,
    VirtioBlkMmioMatcher, VirtioBlkPciMatcher, is_virtio_dir,
};
use super::pci::{self, PciDevice, PciPath};
use super::uevent::Uevent;
use super::watcher::{DeviceWatcher, UeventMatcher};
use crate::host::{NodeKind, Sysfs};

/// What device lookups need: the watcher, sysfs/dev, and how long to wait for a hotplug.
#[derive(Clone)]
pub struct DeviceContext {
    /// The devices announced so far and pending waits.
    pub watcher: Arc<DeviceWatcher>,
    /// /sys and /dev.
    pub sysfs: Arc<dyn Sysfs>,
    /// How long to wait for a device that is not there yet (`agent.hotplug_timeout`).
    pub hotplug_timeout: Duration,
}

impl fmt::Debug for DeviceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceContext")
            .field("watcher", &self.watcher)
            .field("hotplug_timeout", &self.hotplug_timeout)
            .finish_non_exhaustive()
    }
}

/// A device node the agent found: a block disk, or a VFIO group's character device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceNode {
    /// The kernel's name (`vda`, `sda`, `pmem0`, `vfio/12`).
    pub devname: String,
    /// The node: `/dev/<devname>`.
    pub path: PathBuf,
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
}

/// A block disk (see [`DeviceNode`]).
pub type BlockDevice = DeviceNode;

/// A device as the watcher or sysfs showed it.
struct Seen {
    devpath: String,
    devname: String,
    numbers: Option<(u64, u64)>,
}

impl From<Uevent> for Seen {
    fn from(event: Uevent) -> Self {
        let number = |key| event.var(key).and_then(|v| v.parse::<u64>().ok());
        let numbers = number("MAJOR").zip(number("MINOR"));
        Seen {
            devpath: event.devpath,
            devname: event.devname,
            numbers,
        }
    }
}

/// Looks in the watcher, then with `probe` in sysfs, then waits for `matcher`.
async fn locate(
    ctx: &DeviceContext,
    matcher: Box<dyn UeventMatcher>,
    probe: impl FnOnce(&dyn Sysfs, &dyn UeventMatcher) -> Option<Seen>,
) -> Result<Seen, DeviceError> {
    if let Some(event) = ctx.watcher.find(&*matcher) {
        tracing::debug!(device = %matcher, devpath = %event.devpath, "device already announced");
        return Ok(event.into());
    }
    if let Some(seen) = probe(&*ctx.sysfs, &*matcher) {
        tracing::debug!(device = %matcher, devpath = %seen.devpath, "device found in sysfs");
        return Ok(seen);
    }
    Ok(ctx
        .watcher
        .wait_for(matcher, ctx.hotplug_timeout)
        .await?
        .into())
}

/// Whether a device at `devpath` named `devname` would be announced by an event `matcher`
/// picks: sysfs finds are held to the same rule as uevents.
fn fits(matcher: &dyn UeventMatcher, subsystem: &str, devpath: &str, devname: &str) -> bool {
    matcher.matches(&Uevent {
        action: "add".into(),
        devpath: devpath.into(),
        subsystem: subsystem.into(),
        devname: devname.into(),
        interface: String::new(),
        seqnum: 0,
        vars: Default::default(),
    })
}

/// The devpath a sysfs link (`/sys/class/block/vda -> ../../devices/...`) points to.
fn link_devpath(sysfs: &dyn Sysfs, link: &Path) -> Option<String> {
    let target = sysfs.read_link(link).ok()?;
    let mut resolved = if target.is_absolute() {
        PathBuf::from("/")
    } else {
        link.parent()?.to_owned()
    };
    for part in target.components() {
        match part {
            Component::ParentDir => {
                resolved.pop();
            }
            Component::Normal(name) => resolved.push(name),
            _ => {}
        }
    }
    let text = resolved.to_str()?;
    text.strip_prefix("/sys").map(str::to_owned)
}

fn names(sysfs: &dyn Sysfs, dir: &str) -> Vec<String> {
    sysfs
        .read_dir(Path::new(dir))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .collect()
}

/// A disk by name through `/sys/class/block/<name>` (or `/sys/block/<name>`).
fn probe_named_block(sysfs: &dyn Sysfs, matcher: &dyn UeventMatcher, name: &str) -> Option<Seen> {
    ["/sys/class/block", "/sys/block"]
        .iter()
        .filter_map(|dir| link_devpath(sysfs, &Path::new(dir).join(name)))
        .find(|devpath| fits(matcher, "block", devpath, name))
        .map(|devpath| Seen {
            devpath,
            devname: name.to_owned(),
            numbers: None,
        })
}

/// The device's major:minor: from its uevent, else sysfs `dev`, else its /dev node.
fn node(
    sysfs: &dyn Sysfs,
    seen: Seen,
    device: &dyn fmt::Display,
) -> Result<DeviceNode, DeviceError> {
    let path = PathBuf::from(format!("/dev/{}", seen.devname));
    if seen.devname.is_empty() {
        return Err(DeviceError::Numbers {
            device: device.to_string(),
            reason: format!("no device name for {}", seen.devpath),
        });
    }
    let from_sysfs = || {
        let text = sysfs
            .read_string(Path::new(&format!("/sys{}/dev", seen.devpath)))
            .ok()?;
        let (major, minor) = text.split_once(':')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    };
    let numbers = match seen.numbers.or_else(from_sysfs) {
        Some(numbers) => numbers,
        None => {
            let info = sysfs
                .stat(&path)
                .map_err(|e| DeviceError::sysfs("stat", &path, e))?;
            (info.major, info.minor)
        }
    };
    Ok(DeviceNode {
        devname: seen.devname,
        path,
        major: numbers.0,
        minor: numbers.1,
    })
}

/// The name in `/dev/<name>`.
fn dev_name<'a>(vm_path: &'a str, kind: &str) -> Result<&'a str, DeviceError> {
    vm_path
        .strip_prefix("/dev/")
        .filter(|n| !n.is_empty() && !n.contains('/') && *n != "." && *n != "..")
        .ok_or_else(|| {
            DeviceError::Invalid(format!(
                "{kind} device path {vm_path:?} must be /dev/<name>"
            ))
        })
}

/// The whole disk of the virtio-blk PCI device at `path` (`/dev/vdX`).
pub async fn virtio_blk_pci(
    ctx: &DeviceContext,
    path: &PciPath,
) -> Result<BlockDevice, DeviceError> {
    let pci = pci::resolve(&*ctx.sysfs, path)?;
    let matcher = VirtioBlkPciMatcher::new(&pci.devpath);
    let label = format!("virtio-blk PCI {path}: {matcher}");
    let probe = |sysfs: &dyn Sysfs, m: &dyn UeventMatcher| {
        names(sysfs, &format!("/sys{}", pci.devpath))
            .into_iter()
            .filter(|n| is_virtio_dir(n))
            .flat_map(|v| {
                let block = format!("{}/{v}/block", pci.devpath);
                names(sysfs, &format!("/sys{block}"))
                    .into_iter()
                    .map(move |d| (format!("{block}/{d}"), d))
            })
            .find(|(devpath, devname)| fits(m, "block", devpath, devname))
            .map(|(devpath, devname)| Seen {
                devpath,
                devname,
                numbers: None,
            })
    };
    let seen = locate(ctx, Box::new(matcher), probe).await?;
    node(&*ctx.sysfs, seen, &label)
}

/// The virtio-blk MMIO disk `vm_path` (`/dev/vda`), or any disk known by its /dev name.
pub async fn virtio_blk_mmio(
    ctx: &DeviceContext,
    vm_path: &str,
) -> Result<BlockDevice, DeviceError> {
    let name = dev_name(vm_path, "virtio-blk MMIO")?;
    let matcher = VirtioBlkMmioMatcher::new(name);
    let label = matcher.to_string();
    let seen = locate(ctx, Box::new(matcher), |s, m| probe_named_block(s, m, name)).await?;
    node(&*ctx.sysfs, seen, &label)
}

/// The NVDIMM disk `vm_path` (`/dev/pmem0`).
pub async fn pmem(ctx: &DeviceContext, vm_path: &str) -> Result<BlockDevice, DeviceError> {
    let name = dev_name(vm_path, "pmem")?;
    let matcher = PmemMatcher::new(name);
    let label = matcher.to_string();
    let seen = locate(ctx, Box::new(matcher), |s, m| probe_named_block(s, m, name)).await?;
    node(&*ctx.sysfs, seen, &label)
}

/// Parses a SCSI address `"<id>:<lun>"`.
pub fn parse_scsi_address(addr: &str) -> Result<(u32, u32), DeviceError> {
    let bad = || DeviceError::Invalid(format!("SCSI address {addr:?} must be <id>:<lun>"));
    let (id, lun) = addr.split_once(':').ok_or_else(bad)?;
    Ok((
        id.parse().map_err(|_| bad())?,
        lun.parse().map_err(|_| bad())?,
    ))
}

/// The SCSI disk at `addr` (`"<id>:<lun>"`, channel 0 of host 0). When the disk is not known
/// yet, asks every SCSI host to scan for it (`"0 <id> <lun>"` into `/sys/class/scsi_host/*/scan`)
/// before waiting.
pub async fn scsi(ctx: &DeviceContext, addr: &str) -> Result<BlockDevice, DeviceError> {
    let (id, lun) = parse_scsi_address(addr)?;
    let matcher = ScsiBlockMatcher::new(id, lun);
    let label = matcher.to_string();
    let hctl = matcher.hctl();
    let probe = |sysfs: &dyn Sysfs, m: &dyn UeventMatcher| {
        let dev = format!("/sys/bus/scsi/devices/{hctl}");
        let devpath = link_devpath(sysfs, Path::new(&dev))?;
        names(sysfs, &format!("{dev}/block"))
            .into_iter()
            .map(|d| (format!("{devpath}/block/{d}"), d))
            .find(|(devpath, devname)| fits(m, "block", devpath, devname))
            .map(|(devpath, devname)| Seen {
                devpath,
                devname,
                numbers: None,
            })
    };
    let seen = match ctx.watcher.find(&matcher) {
        Some(event) => event.into(),
        None => match probe(&*ctx.sysfs, &matcher) {
            Some(seen) => seen,
            None => {
                scan_scsi_hosts(&*ctx.sysfs, id, lun)?;
                locate(ctx, Box::new(matcher), probe).await?
            }
        },
    };
    node(&*ctx.sysfs, seen, &label)
}

fn scan_scsi_hosts(sysfs: &dyn Sysfs, id: u32, lun: u32) -> Result<(), DeviceError> {
    const HOSTS: &str = "/sys/class/scsi_host";
    let hosts = sysfs
        .read_dir(Path::new(HOSTS))
        .map_err(|e| DeviceError::sysfs("list", HOSTS, e))?;
    let request = format!("0 {id} {lun}");
    for host in hosts {
        let scan = Path::new(HOSTS).join(host).join("scan");
        sysfs
            .write(&scan, request.as_bytes())
            .map_err(|e| DeviceError::sysfs("write", &scan, e))?;
        tracing::debug!(scan = %scan.display(), %request, "SCSI scan requested");
    }
    Ok(())
}

/// A block device given by its node (`/dev/vda`), which must exist and be a block device.
pub fn block_device_node(ctx: &DeviceContext, vm_path: &str) -> Result<BlockDevice, DeviceError> {
    let name = dev_name(vm_path, "block")?;
    let info = ctx
        .sysfs
        .stat(Path::new(vm_path))
        .map_err(|e| DeviceError::sysfs("stat", vm_path, e))?;
    if info.kind != NodeKind::BlockDevice {
        return Err(DeviceError::Invalid(format!(
            "{vm_path} is not a block device ({:?})",
            info.kind
        )));
    }
    Ok(DeviceNode {
        devname: name.to_owned(),
        path: PathBuf::from(vm_path),
        major: info.major,
        minor: info.minor,
    })
}

/// The PCI device at `path`, present in sysfs or announced within the hotplug timeout.
pub async fn pci_device(ctx: &DeviceContext, path: &PciPath) -> Result<PciDevice, DeviceError> {
    let pci = pci::resolve(&*ctx.sysfs, path)?;
    let matcher = PciDeviceMatcher::new(&pci.devpath);
    let probe = |sysfs: &dyn Sysfs, _: &dyn UeventMatcher| {
        sysfs.exists(&pci.sysfs_dir()).then(|| Seen {
            devpath: pci.devpath.clone(),
            devname: String::new(),
            numbers: None,
        })
    };
    locate(ctx, Box::new(matcher), probe).await?;
    Ok(pci)
}

/// The character device of VFIO group `group` (`/dev/vfio/<group>`).
pub async fn vfio_group(ctx: &DeviceContext, group: u32) -> Result<DeviceNode, DeviceError> {
    let matcher = VfioGroupMatcher::new(group);
    let label = matcher.to_string();
    let devpath = matcher.devpath();
    let probe = |sysfs: &dyn Sysfs, _: &dyn UeventMatcher| {
        let dev = format!("/dev/vfio/{group}");
        let present = sysfs.exists(Path::new(&format!("/sys{devpath}")))
            || sysfs
                .stat(Path::new(&dev))
                .is_ok_and(|i| i.kind == NodeKind::CharDevice);
        present.then(|| Seen {
            devpath: devpath.clone(),
            devname: format!("vfio/{group}"),
            numbers: None,
        })
    };
    let mut seen = locate(ctx, Box::new(matcher), probe).await?;
    if seen.devname.is_empty() {
        seen.devname = format!("vfio/{group}");
    }
    node(&*ctx.sysfs, seen, &label)
}

/// The network interface of the NIC at PCI path `path` (virtio-net under `…/virtioN/net/`, or
/// a NIC with its own driver, such as a VFIO-assigned one, under `…/net/`), present in sysfs or
/// announced within the hotplug timeout. Returns its current name, read again from sysfs so a
/// rename since its uevent is seen.
pub async fn net_pci(ctx: &DeviceContext, path: &PciPath) -> Result<String, DeviceError> {
    let pci = pci::resolve(&*ctx.sysfs, path)?;
    let matcher = NetPciMatcher::new(&pci.devpath);
    let current = |sysfs: &dyn Sysfs| -> Option<String> {
        let direct = format!("/sys{}/net", pci.devpath);
        let virtio = names(sysfs, &format!("/sys{}", pci.devpath))
            .into_iter()
            .filter(|n| is_virtio_dir(n))
            .map(|v| format!("/sys{}/{v}/net", pci.devpath));
        std::iter::once(direct)
            .chain(virtio)
            .find_map(|dir| names(sysfs, &dir).into_iter().next())
    };
    let probe = |sysfs: &dyn Sysfs, _: &dyn UeventMatcher| {
        current(sysfs).map(|name| Seen {
            devpath: pci.devpath.clone(),
            devname: name,
            numbers: None,
        })
    };
    if let Some(name) = probe(&*ctx.sysfs, &matcher).map(|s| s.devname) {
        return Ok(name);
    }
    let event = ctx
        .watcher
        .wait_for(Box::new(matcher), ctx.hotplug_timeout)
        .await?;
    Ok(current(&*ctx.sysfs).unwrap_or(event.interface))
}
