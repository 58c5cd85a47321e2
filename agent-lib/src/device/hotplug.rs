//! CPU and memory hotplug: onlining what the VMM plugged (OnlineCPUMem), probing memory
//! (MemHotplugByProbe), and widening container cpusets to the CPUs now online.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use oci_spec::runtime::{LinuxCpu, LinuxResources};

use super::error::DeviceError;
use crate::host::{Cgroups, Sysfs};

const CPU_DIR: &str = "/sys/devices/system/cpu";
const CPU_ONLINE: &str = "/sys/devices/system/cpu/online";
const MEMORY_DIR: &str = "/sys/devices/system/memory";
const MEMORY_PROBE: &str = "/sys/devices/system/memory/probe";
/// Onlining CPUs is retried this many times (QEMU creates vCPUs lazily)...
const CPU_RETRIES: u32 = 100;
/// ...this far apart: 5 s in all, as Kata.
const CPU_RETRY_DELAY: Duration = Duration::from_millis(50);

/// A set of CPUs in the kernel's list format (`0-3,6`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuList(BTreeSet<u32>);

impl CpuList {
    /// How many CPUs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every CPU of `self` is in `other`.
    pub fn is_subset(&self, other: &CpuList) -> bool {
        self.0.is_subset(&other.0)
    }
}

impl FromStr for CpuList {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, DeviceError> {
        let bad = || DeviceError::Invalid(format!("bad CPU list {s:?}"));
        let mut cpus = BTreeSet::new();
        for part in s.trim().split(',').filter(|p| !p.is_empty()) {
            let (first, last): (u32, u32) = match part.split_once('-') {
                Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
                None => {
                    let cpu = part.parse().map_err(|_| bad())?;
                    (cpu, cpu)
                }
            };
            // A bound keeps a hostile list from allocating without limit.
            if first > last || last - first > 65_536 {
                return Err(bad());
            }
            cpus.extend(first..=last);
        }
        Ok(CpuList(cpus))
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut iter = self.0.iter().copied().peekable();
        let mut first = true;
        while let Some(start) = iter.next() {
            let mut end = start;
            while iter.peek() == Some(&(end + 1)) {
                end += 1;
                iter.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            match end == start {
                true => write!(f, "{start}")?,
                false => write!(f, "{start}-{end}")?,
            }
        }
        Ok(())
    }
}

/// A container cgroup whose cpuset follows the guest's online CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpusetTarget {
    /// The container's cgroup path (`/kubepods/pod1/ctr`).
    pub cgroup_path: String,
    /// The CPUs the container asked for (`linux.resources.cpu.cpus`), if any.
    pub cpus: Option<String>,
}

fn online_cpus(sysfs: &dyn Sysfs) -> Result<CpuList, DeviceError> {
    let text = sysfs
        .read_string(Path::new(CPU_ONLINE))
        .map_err(|e| DeviceError::sysfs("read", CPU_ONLINE, e))?;
    text.parse()
}

/// Writes `1` to the `online` file of each `<prefix>N` entry of `dir` that reads `0`, up to
/// `limit` of them; returns how many were onlined. Entries without an `online` file (cpu0)
/// and failed writes are skipped.
fn online_entries(
    sysfs: &dyn Sysfs,
    dir: &str,
    prefix: &str,
    limit: Option<usize>,
) -> Result<usize, DeviceError> {
    let names = sysfs
        .read_dir(Path::new(dir))
        .map_err(|e| DeviceError::sysfs("list", dir, e))?;
    let mut onlined = 0;
    for name in names {
        if limit.is_some_and(|l| onlined >= l) {
            break;
        }
        let Some(name) = name.to_str() else { continue };
        let numbered = name
            .strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !numbered {
            continue;
        }
        let online = Path::new(dir).join(name).join("online");
        if sysfs.read_string(&online).is_ok_and(|state| state == "0") {
            match sysfs.write(&online, b"1") {
                Ok(()) => onlined += 1,
                Err(e) => tracing::debug!(path = %online.display(), error = %e, "cannot online"),
            }
        }
    }
    Ok(onlined)
}

/// Onlines CPUs until at least `wanted` are online, retrying 100 times 50 ms apart (tokio
/// time); returns at once when enough already are (some VMMs online CPUs themselves).
async fn online_cpus_until(sysfs: &dyn Sysfs, wanted: u32) -> Result<CpuList, DeviceError> {
    let wanted_len = wanted as usize;
    let mut online = online_cpus(sysfs)?;
    if online.len() >= wanted_len {
        return Ok(online);
    }
    for attempt in 0..CPU_RETRIES {
        online_entries(sysfs, CPU_DIR, "cpu", Some(wanted_len - online.len()))?;
        online = online_cpus(sysfs)?;
        if online.len() >= wanted_len {
            tracing::info!(online = %online, attempt, "CPUs online");
            return Ok(online);
        }
        tokio::time::sleep(CPU_RETRY_DELAY).await;
    }
    Err(DeviceError::CpuOnline {
        wanted,
        online: u32::try_from(online.len()).unwrap_or(u32::MAX),
        retries: CPU_RETRIES,
    })
}

fn cpuset(cpus: &str) -> LinuxResources {
    let mut cpu = LinuxCpu::default();
    cpu.set_cpus(Some(cpus.to_owned()));
    let mut resources = LinuxResources::default();
    resources.set_cpu(Some(cpu));
    resources
}

/// Writes the guest's online CPUs into each container's cpuset and its parents (top down, the
/// root excluded), then the container's own request if the guest has those CPUs. Best effort:
/// failures are logged.
fn propagate_cpusets(cgroups: &dyn Cgroups, online: &CpuList, containers: &[CpusetTarget]) {
    let all = online.to_string();
    for target in containers {
        let parts: Vec<&str> = target
            .cgroup_path
            .split('/')
            .filter(|p| !p.is_empty())
            .collect();
        for depth in 1..=parts.len() {
            let path = format!("/{}", parts[..depth].join("/"));
            if let Err(e) = cgroups.set(&path, &cpuset(&all)) {
                tracing::warn!(cgroup = %path, cpus = %all, error = %e, "cannot widen cpuset");
            }
        }
        let Some(requested) = target.cpus.as_deref().filter(|c| !c.trim().is_empty()) else {
            continue;
        };
        match requested.parse::<CpuList>() {
            Ok(list) if list.is_subset(online) => {
                if let Err(e) = cgroups.set(&target.cgroup_path, &cpuset(requested)) {
                    tracing::warn!(cgroup = %target.cgroup_path, cpus = requested, error = %e,
                        "cannot set container cpuset");
                }
            }
            Ok(_) => tracing::warn!(cgroup = %target.cgroup_path, cpus = requested, online = %all,
                "container asks for CPUs the guest does not have; request ignored"),
            Err(e) => tracing::warn!(cgroup = %target.cgroup_path, error = %e,
                "container cpuset request ignored"),
        }
    }
}

/// OnlineCPUMem: onlines CPUs until `nb_cpus` are online (none asked: 0), then every offline
/// memory block unless `cpu_only`, then (when CPUs were asked for) widens the cpusets of
/// `containers` to the online CPUs.
pub async fn online_cpu_mem(
    sysfs: &dyn Sysfs,
    cgroups: &dyn Cgroups,
    nb_cpus: u32,
    cpu_only: bool,
    containers: &[CpusetTarget],
) -> Result<(), DeviceError> {
    let online = match nb_cpus {
        0 => None,
        n => Some(online_cpus_until(sysfs, n).await?),
    };
    if !cpu_only {
        let onlined = online_offline_memory(sysfs)?;
        tracing::info!(onlined, "memory blocks onlined");
    }
    if let Some(online) = online {
        propagate_cpusets(cgroups, &online, containers);
    }
    Ok(())
}

/// Onlines every offline memory block; returns how many. The uevent loop calls it after its
/// socket overflowed, when `add` events of hot-added blocks may have been lost.
pub(super) fn online_offline_memory(sysfs: &dyn Sysfs) -> Result<usize, DeviceError> {
    online_entries(sysfs, MEMORY_DIR, "memory", None)
}

/// MemHotplugByProbe: announces each memory block at `addrs` to the kernel through
/// `/sys/devices/system/memory/probe` (`0x...` hex, as Kata writes it).
pub fn mem_hotplug_by_probe(sysfs: &dyn Sysfs, addrs: &[u64]) -> Result<(), DeviceError> {
    for addr in addrs {
        let text = format!("{addr:#X}");
        sysfs
            .write(Path::new(MEMORY_PROBE), text.as_bytes())
            .map_err(|e| DeviceError::sysfs("write", format!("{MEMORY_PROBE} ({text})"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_and_print() {
        let list: CpuList = "0-3,5,7-8\n".parse().unwrap();
        assert_eq!(list.len(), 7);
        assert_eq!(list.to_string(), "0-3,5,7-8");
        assert_eq!("".parse::<CpuList>().unwrap().len(), 0);
        assert!("1-0".parse::<CpuList>().is_err());
        assert!("a".parse::<CpuList>().is_err());
        assert!("0-4294967295".parse::<CpuList>().is_err());
        assert!("0-1".parse::<CpuList>().unwrap().is_subset(&list));
    }
}
