//! The guest kernel's reactions to sysfs writes the agent makes: onlining memory blocks and
//! CPUs, and the VFIO rebinding dance (`driver_override`, `unbind`, `drivers_probe`).

use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::sync::{Arc, Weak};

use agent_fakes::FakeSysfs;

use super::platform::{cpu_online_written, memory_online_written};
use super::vfio::{vfio_bind, vfio_unbind};
use super::{Inner, VmmError};

fn io_error(err: VmmError) -> io::Error {
    match err {
        VmmError::Io(e) => e,
        VmmError::UnknownDevice(_) => {
            io::Error::from_raw_os_error(nix::errno::Errno::ENODEV as i32)
        }
        _ => io::Error::from_raw_os_error(nix::errno::Errno::EINVAL as i32),
    }
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).trim().to_owned()
}

/// Registers the hooks on `sysfs`. They hold the VMM weakly: the fake outlives nothing.
pub(super) fn register(inner: &Arc<Inner>, sysfs: &FakeSysfs) {
    let weak = Arc::downgrade(inner);
    sysfs.on_write("/sys/devices/system/memory", move |fs, path, data| {
        with(&weak, |inner| memory_online(inner, fs, path, data))
    });
    let weak = Arc::downgrade(inner);
    sysfs.on_write("/sys/devices/system/cpu", move |fs, path, data| {
        with(&weak, |inner| cpu_online(inner, fs, path, data))
    });
    let weak = Arc::downgrade(inner);
    sysfs.on_write("/sys/bus/pci", move |fs, path, data| {
        with(&weak, |inner| pci_driver_write(inner, fs, path, data))
    });
}

fn with(weak: &Weak<Inner>, f: impl FnOnce(&Inner) -> Result<(), VmmError>) -> io::Result<()> {
    match weak.upgrade() {
        Some(inner) => f(&inner).map_err(io_error),
        None => Ok(()),
    }
}

/// `/sys/devices/system/memory/memoryN/online`.
fn memory_online(inner: &Inner, fs: &FakeSysfs, path: &Path, data: &[u8]) -> Result<(), VmmError> {
    if path.file_name().and_then(|n| n.to_str()) != Some("online") {
        return Ok(());
    }
    let Some(dir) = path.parent().and_then(Path::to_str) else {
        return Ok(());
    };
    let current = fs.contents(path).map(|c| text(&c));
    if let Some(mut seq) = memory_online_written(dir, current.as_deref(), data)? {
        // The kernel counts the block in or out of MemTotal.
        let block = fs
            .contents("/sys/devices/system/memory/block_size_bytes")
            .and_then(|c| u64::from_str_radix(&text(&c), 16).ok());
        let total = fs
            .contents("/proc/meminfo")
            .and_then(|c| super::procfs::mem_total(&String::from_utf8_lossy(&c)));
        if let (Some(block), Some(total)) = (block, total) {
            let total = if text(data) == "1" {
                total + block
            } else {
                total.saturating_sub(block)
            };
            seq.file("/proc/meminfo", super::procfs::meminfo(total));
        }
        inner.kernel.play_now(seq.into_steps())?;
    }
    Ok(())
}

/// `/sys/devices/system/cpu/cpuN/online`.
fn cpu_online(inner: &Inner, fs: &FakeSysfs, path: &Path, data: &[u8]) -> Result<(), VmmError> {
    if path.file_name().and_then(|n| n.to_str()) != Some("online") {
        return Ok(());
    }
    let Some(cpu) = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("cpu"))
        .and_then(|n| n.parse::<u32>().ok())
    else {
        return Ok(());
    };
    let mut others = BTreeSet::from([0]);
    for other in 1..1024 {
        if other == cpu {
            continue;
        }
        match fs.contents(format!("/sys/devices/system/cpu/cpu{other}/online")) {
            Some(state) if text(&state) == "1" => {
                others.insert(other);
            }
            Some(_) => {}
            None if fs
                .kind(format!("/sys/devices/system/cpu/cpu{other}"))
                .is_none() =>
            {
                break;
            }
            None => {}
        }
    }
    let current = fs.contents(path).map(|c| text(&c));
    if let Some(seq) = cpu_online_written(cpu, &others, current.as_deref(), data)? {
        inner.kernel.play_now(seq.into_steps())?;
    }
    Ok(())
}

/// `drivers/<drv>/unbind` and `drivers_probe`, written with a BDF.
fn pci_driver_write(
    inner: &Inner,
    fs: &FakeSysfs,
    path: &Path,
    data: &[u8],
) -> Result<(), VmmError> {
    let bdf = text(data);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let driver_dir = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let seq = {
        let mut state = inner.lock();
        let Some(id) = state
            .devices
            .iter()
            .find(|(_, d)| d.vfio().is_some_and(|v| v.pci.bdf == bdf))
            .map(|(id, _)| id.clone())
        else {
            // Not a device the VMM models as rebindable: the write just lands.
            return Ok(());
        };
        let Some(dev) = state.devices.get(&id).and_then(|d| d.vfio()).cloned() else {
            return Ok(());
        };
        match name {
            "unbind" => {
                if dev.driver.as_deref() != Some(driver_dir.as_str()) {
                    return Err(VmmError::UnknownDevice(bdf));
                }
                let node = state.vfio_group_node_released(&dev, &driver_dir);
                if let Some(d) = state.devices.get_mut(&id).and_then(|d| d.vfio_mut()) {
                    d.driver = None;
                }
                vfio_unbind(&dev, &driver_dir, node)
            }
            "drivers_probe" => {
                let over = fs
                    .contents(format!("{}/driver_override", dev.pci.dir))
                    .map(|c| text(&c));
                if dev.driver.is_some() || over.as_deref() != Some("vfio-pci") {
                    return Ok(());
                }
                let node = state.vfio_group_node_created(&dev);
                if let Some(d) = state.devices.get_mut(&id).and_then(|d| d.vfio_mut()) {
                    d.driver = Some("vfio-pci".into());
                }
                vfio_bind(&dev, node)
            }
            _ => return Ok(()),
        }
    };
    inner.kernel.play_now(seq.into_steps())?;
    Ok(())
}
