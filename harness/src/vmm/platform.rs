//! Guest RAM (vm-memory regions) with its memory blocks, CPUs, and NVDIMMs: their sysfs nodes
//! and uevents.

use std::collections::BTreeSet;

use vm_memory::{
    Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, GuestRegionMmap,
};

use super::VmmError;
use super::kernel::Seq;
use super::virtio::Disk;

/// Where hot-added memory starts (above the 32-bit PCI hole, as on q35).
const HOTPLUG_BASE: u64 = 1 << 32;
const MEMORY: &str = "/sys/devices/system/memory";
const CPU: &str = "/sys/devices/system/cpu";

/// The guest's physical memory: vm-memory mmap regions for boot RAM, hot-added DIMMs and
/// NVDIMMs.
#[derive(Debug)]
pub struct GuestRam {
    mem: GuestMemoryMmap,
    block_size: u64,
    max: u64,
    next_base: u64,
}

impl GuestRam {
    /// `boot` bytes at address 0, growing to at most `max`.
    pub fn new(boot: u64, max: u64, block_size: u64) -> Result<Self, VmmError> {
        if block_size == 0 || !block_size.is_power_of_two() {
            return Err(VmmError::Config(format!(
                "memory_block_size {block_size:#x} is not a power of two"
            )));
        }
        if boot == 0 || !boot.is_multiple_of(block_size) || boot > max {
            return Err(VmmError::Config(format!(
                "memory {boot:#x} must be a non-zero multiple of the block size and at most max_memory"
            )));
        }
        let len = usize::try_from(boot).map_err(|_| VmmError::Config("memory too big".into()))?;
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), len)])
            .map_err(|e| VmmError::Memory(e.to_string()))?;
        Ok(GuestRam {
            mem,
            block_size,
            max,
            next_base: HOTPLUG_BASE.max(boot),
        })
    }

    /// The boot memory blocks, online, and `block_size_bytes`.
    pub fn boot(&self, seq: &mut Seq) {
        seq.file(
            format!("{MEMORY}/block_size_bytes"),
            format!("{:x}", self.block_size),
        );
        for region in self.mem.iter() {
            let start = region.start_addr().0 / self.block_size;
            for block in start..start + region.len() / self.block_size {
                block_files(seq, block, true);
            }
        }
    }

    /// Total bytes mapped.
    pub fn total(&self) -> u64 {
        self.mem.iter().map(|r| r.len()).sum()
    }

    /// `(start, length)` of every region, by address.
    pub fn regions(&self) -> Vec<(u64, u64)> {
        self.mem
            .iter()
            .map(|r| (r.start_addr().0, r.len()))
            .collect()
    }

    /// Maps a new region of `size` bytes above the last one; returns its base.
    pub fn add_region(&mut self, size: u64) -> Result<u64, VmmError> {
        if size == 0 || !size.is_multiple_of(self.block_size) {
            return Err(VmmError::BadSize(format!(
                "{size:#x} is not a multiple of the memory block size {:#x}",
                self.block_size
            )));
        }
        if self.total() + size > self.max {
            return Err(VmmError::BadSize(format!(
                "{size:#x} more bytes would exceed max_memory {:#x}",
                self.max
            )));
        }
        let base = self.next_base;
        let len = usize::try_from(size).map_err(|_| VmmError::BadSize("too big".into()))?;
        let region = GuestRegionMmap::<()>::from_range(GuestAddress(base), len, None)
            .map_err(|e| VmmError::Memory(e.to_string()))?;
        self.mem = self
            .mem
            .insert_region(std::sync::Arc::new(region))
            .map_err(|e| VmmError::Memory(e.to_string()))?;
        self.next_base = base + size;
        Ok(base)
    }

    /// Hot-adds a DIMM: a region, then one offline block and `add` per block.
    pub fn hotplug(&mut self, size: u64) -> Result<(Seq, Vec<u64>), VmmError> {
        let base = self.add_region(size)?;
        let first = base / self.block_size;
        let blocks: Vec<u64> = (first..first + size / self.block_size).collect();
        let mut seq = Seq::new();
        for &block in &blocks {
            block_files(&mut seq, block, false);
            seq.event(
                "add",
                &format!("/devices/system/memory/memory{block}"),
                &[("SUBSYSTEM", "memory")],
            );
        }
        Ok((seq, blocks))
    }

    /// Writes and reads back a word at both ends of every region: the guest RAM is really
    /// mapped. Returns the first failure.
    pub fn probe(&self) -> Result<(), VmmError> {
        for region in self.mem.iter() {
            let start = region.start_addr();
            let end = GuestAddress(start.0 + region.len() - 8);
            for addr in [start, end] {
                let pattern = 0x6b61_7461_u64 ^ addr.0;
                self.mem
                    .write_obj(pattern, addr)
                    .and_then(|()| self.mem.read_obj::<u64>(addr))
                    .map_err(|e| VmmError::Memory(format!("{:#x}: {e}", addr.0)))
                    .and_then(|got| {
                        if got == pattern {
                            Ok(())
                        } else {
                            Err(VmmError::Memory(format!(
                                "{:#x}: read back {got:#x}",
                                addr.0
                            )))
                        }
                    })?;
            }
        }
        Ok(())
    }
}

fn block_files(seq: &mut Seq, block: u64, online: bool) {
    let dir = format!("{MEMORY}/memory{block}");
    seq.dir(&dir)
        .file(format!("{dir}/online"), if online { "1" } else { "0" })
        .file(
            format!("{dir}/state"),
            if online { "online" } else { "offline" },
        )
        .file(format!("{dir}/phys_index"), format!("{block:08x}"))
        .file(format!("{dir}/removable"), "1");
}

/// A memory block's `online` was written: `state` follows and the kernel says `online` or
/// `offline`. `Ok(None)` when nothing changes; an error for a value the kernel refuses.
pub fn memory_online_written(
    block_dir: &str,
    current: Option<&str>,
    data: &[u8],
) -> Result<Option<Seq>, VmmError> {
    let online = parse_online(data)?;
    if current == Some(if online { "1" } else { "0" }) {
        return Ok(None);
    }
    let mut seq = Seq::new();
    seq.file(
        format!("{block_dir}/state"),
        if online { "online" } else { "offline" },
    );
    seq.event(
        if online { "online" } else { "offline" },
        block_dir.trim_start_matches("/sys"),
        &[("SUBSYSTEM", "memory")],
    );
    Ok(Some(seq))
}

fn parse_online(data: &[u8]) -> Result<bool, VmmError> {
    match std::str::from_utf8(data).map(str::trim) {
        Ok("1") => Ok(true),
        Ok("0") => Ok(false),
        _ => Err(VmmError::Refused("online takes 0 or 1")),
    }
}

/// Formats a CPU set as the kernel does: `0-3,6`.
pub fn cpu_list(cpus: &BTreeSet<u32>) -> String {
    let mut parts = Vec::new();
    let mut iter = cpus.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// CPUs the VMM has plugged (present) and the most it may.
#[derive(Debug)]
pub struct Cpus {
    present: BTreeSet<u32>,
    max: u32,
}

const CPU_MODALIAS: &str = "cpu:type:x86,ven0000fam0006mod0055:feature:,0000,0001,0002,0003";

impl Cpus {
    /// `boot` CPUs of at most `max`.
    pub fn new(boot: u32, max: u32) -> Result<Self, VmmError> {
        if boot == 0 || boot > max {
            return Err(VmmError::Config(format!(
                "cpus {boot} must be 1 to max_cpus {max}"
            )));
        }
        Ok(Cpus {
            present: (0..boot).collect(),
            max,
        })
    }

    /// The boot CPUs, online (cpu0 has no `online` file, as on x86).
    pub fn boot(&self, seq: &mut Seq) {
        for &cpu in &self.present {
            seq.dir(format!("{CPU}/cpu{cpu}"));
            if cpu > 0 {
                seq.file(format!("{CPU}/cpu{cpu}/online"), "1");
            }
        }
        seq.file(format!("{CPU}/online"), cpu_list(&self.present))
            .file(format!("{CPU}/present"), cpu_list(&self.present))
            .file(
                format!("{CPU}/possible"),
                cpu_list(&(0..self.max).collect()),
            );
    }

    /// Hot-adds `count` CPUs, offline: `cpuN/online` = 0, `present` grows, `add` and `bind`.
    pub fn hotplug(&mut self, count: u32) -> Result<(Seq, Vec<u32>), VmmError> {
        let free: Vec<u32> = (0..self.max)
            .filter(|c| !self.present.contains(c))
            .take(count as usize)
            .collect();
        if count == 0 || free.len() < count as usize {
            return Err(VmmError::BadSize(format!(
                "cannot add {count} CPU(s): {} of max_cpus {} present",
                self.present.len(),
                self.max
            )));
        }
        let mut seq = Seq::new();
        for &cpu in &free {
            self.present.insert(cpu);
            let dir = format!("{CPU}/cpu{cpu}");
            seq.dir(&dir)
                .file(format!("{dir}/online"), "0")
                .file(format!("{CPU}/present"), cpu_list(&self.present));
            let devpath = format!("/devices/system/cpu/cpu{cpu}");
            seq.event(
                "add",
                &devpath,
                &[("SUBSYSTEM", "cpu"), ("MODALIAS", CPU_MODALIAS)],
            );
            seq.event(
                "bind",
                &devpath,
                &[
                    ("SUBSYSTEM", "cpu"),
                    ("DRIVER", "processor"),
                    ("MODALIAS", CPU_MODALIAS),
                ],
            );
        }
        Ok((seq, free))
    }
}

/// A CPU's `online` was written: the `online` list follows and the kernel says so. `others`
/// are the CPUs online apart from this one.
pub fn cpu_online_written(
    cpu: u32,
    others: &BTreeSet<u32>,
    current: Option<&str>,
    data: &[u8],
) -> Result<Option<Seq>, VmmError> {
    let online = parse_online(data)?;
    if current == Some(if online { "1" } else { "0" }) {
        return Ok(None);
    }
    let mut now = others.clone();
    if online {
        now.insert(cpu);
    }
    let mut seq = Seq::new();
    seq.file(format!("{CPU}/online"), cpu_list(&now));
    seq.event(
        if online { "online" } else { "offline" },
        &format!("/devices/system/cpu/cpu{cpu}"),
        &[("SUBSYSTEM", "cpu")],
    );
    Ok(Some(seq))
}

/// The NVDIMM bus (ACPI NFIT).
const NDBUS: &str = "/sys/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0012:00/ndbus0";

/// The namespace directory of NVDIMM region `index`, which holds `block/pmemN`.
pub fn nvdimm_namespace_dir(index: u32) -> String {
    format!("{NDBUS}/region{index}/namespace{index}.0")
}

/// An NVDIMM appears: (the bus,) region, namespace, pmem disk, driver binds.
pub fn nvdimm_add(index: u32, disk: &Disk, first: bool) -> Seq {
    let mut seq = Seq::new();
    let strip = |p: &str| p.trim_start_matches("/sys").to_owned();
    if first {
        seq.dir(NDBUS);
        seq.event("add", &strip(NDBUS), &[("SUBSYSTEM", "nd")]);
    }
    let region = format!("{NDBUS}/region{index}");
    let ns = nvdimm_namespace_dir(index);
    seq.dir(&region);
    seq.event(
        "add",
        &strip(&region),
        &[("SUBSYSTEM", "nd"), ("DEVTYPE", "nd_pmem")],
    );
    seq.dir(&ns);
    seq.event(
        "add",
        &strip(&ns),
        &[("SUBSYSTEM", "nd"), ("DEVTYPE", "nd_namespace_io")],
    );
    disk.appear(&mut seq, &ns);
    seq.event(
        "bind",
        &strip(&ns),
        &[
            ("SUBSYSTEM", "nd"),
            ("DEVTYPE", "nd_namespace_io"),
            ("DRIVER", "nd_pmem"),
        ],
    );
    seq.event(
        "bind",
        &strip(&region),
        &[
            ("SUBSYSTEM", "nd"),
            ("DEVTYPE", "nd_pmem"),
            ("DRIVER", "nd_region"),
        ],
    );
    seq
}

/// An NVDIMM goes: pmem disk, namespace, region.
pub fn nvdimm_remove(index: u32, disk: &Disk) -> Seq {
    let mut seq = Seq::new();
    let strip = |p: &str| p.trim_start_matches("/sys").to_owned();
    let region = format!("{NDBUS}/region{index}");
    let ns = nvdimm_namespace_dir(index);
    disk.disappear(&mut seq, &ns);
    seq.event(
        "unbind",
        &strip(&ns),
        &[("SUBSYSTEM", "nd"), ("DEVTYPE", "nd_namespace_io")],
    );
    seq.event(
        "remove",
        &strip(&ns),
        &[("SUBSYSTEM", "nd"), ("DEVTYPE", "nd_namespace_io")],
    );
    seq.event(
        "unbind",
        &strip(&region),
        &[("SUBSYSTEM", "nd"), ("DEVTYPE", "nd_pmem")],
    );
    seq.remove(&region);
    seq.event(
        "remove",
        &strip(&region),
        &[("SUBSYSTEM", "nd"), ("DEVTYPE", "nd_pmem")],
    );
    seq
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_use_ranges() {
        assert_eq!(cpu_list(&[0, 1, 2, 3, 6].into()), "0-3,6");
        assert_eq!(cpu_list(&[0].into()), "0");
        assert_eq!(cpu_list(&BTreeSet::new()), "");
    }

    #[test]
    fn hotplugged_memory_is_a_new_mapped_region_above_4g() {
        let mut ram = GuestRam::new(512 << 20, 2 << 30, 128 << 20).unwrap();
        let (_, blocks) = ram.hotplug(256 << 20).unwrap();
        assert_eq!(blocks, vec![32, 33]);
        assert_eq!(ram.regions(), vec![(0, 512 << 20), (1 << 32, 256 << 20)]);
        ram.probe().unwrap();
        assert!(ram.hotplug(100).is_err());
        assert!(ram.hotplug(2 << 30).is_err());
    }
}
