//! What a scenario says about its virtual machine and the devices it plugs.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a size could not be read; each names the text given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// No leading number.
    #[error("bad size {0:?}")]
    Number(String),
    /// A unit other than K, M, G, T (with or without `i`/`iB`/`B`).
    #[error("bad size unit in {0:?} (use K, M, G, T)")]
    Unit(String),
    /// More than 2^64 bytes.
    #[error("size {0:?} overflows")]
    Overflow(String),
}

/// A size in bytes, written `512M`, `1G`, `128Mi`, `4096` in scenarios (binary units).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Size(pub u64);

impl Size {
    /// Parses `512M`, `2G`, `128MiB`, `64k`, `4096`.
    pub fn parse(text: &str) -> Result<Size, SizeError> {
        let t = text.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(digits);
        let num: u64 = num
            .parse()
            .map_err(|_| SizeError::Number(text.to_owned()))?;
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "ki" | "kib" | "kb" => 10,
            "m" | "mi" | "mib" | "mb" => 20,
            "g" | "gi" | "gib" | "gb" => 30,
            "t" | "ti" | "tib" | "tb" => 40,
            _ => return Err(SizeError::Unit(text.to_owned())),
        };
        num.checked_mul(1 << shift)
            .map(Size)
            .ok_or_else(|| SizeError::Overflow(text.to_owned()))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [(40, "T"), (30, "G"), (20, "M"), (10, "K")];
        for (shift, unit) in units {
            if self.0 >= 1 << shift && self.0.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(Size(n)),
            Raw::Text(t) => Size::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// A duration written as a humantime string (`1s`, `250ms`, `1m 30s`).
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(serde::de::Error::custom)
}

/// An optional humantime duration.
pub fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
        .transpose()
}

/// Which cgroup hierarchy the fake guest has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// cgroup v1.
    V1,
    /// cgroup v2 (unified).
    #[default]
    V2,
}

/// A PCI port a device can be plugged into.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    /// Its name in scenarios (`rp1`, `br0`).
    pub id: String,
    /// `root-port` (PCIe, one slot) or `pci-bridge` (slots 1 to 31).
    #[serde(rename = "type", default)]
    pub kind: PortKind,
    /// Its slot on the root bus.
    pub slot: u8,
}

/// Kinds of PCI port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortKind {
    /// A PCIe root port (pcie-root-port): one device at slot 0 of its bus.
    #[default]
    RootPort,
    /// A PCI-PCI bridge: devices at slots 1 to 31 of its bus.
    PciBridge,
}

/// What a scripted guest program does (the fake launcher's `Script`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramSpec {
    /// Exit code when it ends by itself.
    #[serde(default)]
    pub exit: i32,
    /// Runs until a signal ends it.
    #[serde(default)]
    pub until_signal: bool,
    /// Writes this to stdout first.
    #[serde(default)]
    pub stdout: Option<String>,
    /// Writes this to stderr first.
    #[serde(default)]
    pub stderr: Option<String>,
    /// Sleeps this long before ending.
    #[serde(default, deserialize_with = "opt_duration")]
    pub sleep: Option<Duration>,
    /// Echoes stdin to stdout until stdin closes.
    #[serde(default)]
    pub cat: bool,
    /// Fails to launch with this errno name.
    #[serde(default)]
    pub fail_launch: Option<String>,
}

/// The virtual machine of a scenario.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VmConfig {
    /// The guest kernel command line the agent's configuration is parsed from.
    pub cmdline: String,
    /// Boot memory.
    pub memory: Size,
    /// The most memory hotplug may reach.
    pub max_memory: Size,
    /// The memory block size (`block_size_bytes`).
    pub memory_block_size: Size,
    /// Boot CPUs.
    pub cpus: u32,
    /// The most CPUs hotplug may reach.
    pub max_cpus: u32,
    /// PCI ports on the root bus; default three root ports `rp1`..`rp3` at slots 2 to 4.
    pub pci: Vec<PortSpec>,
    /// Delay between a VMM request and the guest's uevents, unless a step says otherwise.
    #[serde(deserialize_with = "duration")]
    pub uevent_delay: Duration,
    /// The cgroup hierarchy.
    pub cgroups: CgroupMode,
    /// Programs the fake launcher knows, by name.
    pub programs: BTreeMap<String, ProgramSpec>,
    /// PCI devices present at boot (cold-plugged): the guest has them before the agent
    /// starts, so the agent sees their sysfs nodes but none of their uevents.
    pub devices: Vec<Hotplug>,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            cmdline: String::new(),
            memory: Size(512 << 20),
            max_memory: Size(4 << 30),
            memory_block_size: Size(128 << 20),
            cpus: 1,
            max_cpus: 4,
            pci: (1..=3)
                .map(|i| PortSpec {
                    id: format!("rp{i}"),
                    kind: PortKind::RootPort,
                    slot: i + 1,
                })
                .collect(),
            uevent_delay: Duration::ZERO,
            cgroups: CgroupMode::V2,
            programs: BTreeMap::new(),
            devices: Vec::new(),
        }
    }
}

/// Kinds of hot-pluggable hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    /// virtio-blk-pci: a disk `/dev/vdX`.
    VirtioBlk,
    /// virtio-net-pci: a NIC `ethN`.
    VirtioNet,
    /// virtio-scsi-pci: a SCSI controller `hostN`.
    VirtioScsi,
    /// scsi-hd on a controller: a disk `/dev/sdX` at `scsi_id:lun`.
    ScsiDisk,
    /// An NVDIMM: a pmem disk `/dev/pmemN` backed by guest memory.
    Nvdimm,
    /// A VFIO PCI device (e.g. a GPU) with its IOMMU group.
    Vfio,
    /// DIMM memory: a guest RAM region and its memory blocks.
    Memory,
    /// CPUs.
    Cpu,
}

/// A hotplug request (the `hotplug:` step); which fields count depends on the kind.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hotplug {
    /// What to plug.
    #[serde(rename = "hotplug")]
    pub kind: DeviceKind,
    /// The device's name in later steps (`unplug: blk1`); default `<kind><n>`.
    #[serde(default)]
    pub id: Option<String>,
    /// The PCI port (`rp1`, `br0`) or `root`; default: the first port with a free slot.
    #[serde(default)]
    pub bus: Option<String>,
    /// The slot on a bridge or the root bus.
    #[serde(default)]
    pub slot: Option<u8>,
    /// virtio-net: MAC address.
    #[serde(default)]
    pub mac: Option<String>,
    /// virtio-net: MTU (default 1500).
    #[serde(default)]
    pub mtu: Option<u32>,
    /// scsi-disk: the controller's id.
    #[serde(default)]
    pub controller: Option<String>,
    /// scsi-disk: SCSI target id.
    #[serde(default)]
    pub scsi_id: Option<u32>,
    /// scsi-disk: LUN.
    #[serde(default)]
    pub lun: Option<u32>,
    /// Disk, nvdimm or memory size.
    #[serde(default)]
    pub size: Option<Size>,
    /// cpu: how many (default 1).
    #[serde(default)]
    pub count: Option<u32>,
    /// vfio: PCI vendor id, hex (default `10de`).
    #[serde(default)]
    pub vendor: Option<String>,
    /// vfio: PCI device id, hex (default `1db6`).
    #[serde(default)]
    pub device: Option<String>,
    /// vfio: PCI class, hex (default `030200`).
    #[serde(default)]
    pub class: Option<String>,
    /// vfio: IOMMU group (default: a new one).
    #[serde(default)]
    pub iommu_group: Option<u32>,
    /// vfio: the guest driver bound at plug time (default none).
    #[serde(default)]
    pub driver: Option<String>,
    /// Delay before the guest sees it (default: the VM's `uevent_delay`).
    #[serde(default, deserialize_with = "opt_duration")]
    pub delay: Option<Duration>,
    /// The VMM must refuse the request with a message containing this (scenarios only).
    #[serde(default)]
    pub refused: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::{Size, SizeError};

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(Size::parse("512M"), Ok(Size(512 << 20)));
        assert_eq!(Size::parse("1Gi"), Ok(Size(1 << 30)));
        assert_eq!(Size::parse("4096"), Ok(Size(4096)));
        assert_eq!(Size::parse("12X"), Err(SizeError::Unit("12X".into())));
        assert_eq!(Size::parse("M"), Err(SizeError::Number("M".into())));
        assert_eq!(
            Size::parse("99999999999T"),
            Err(SizeError::Overflow("99999999999T".into()))
        );
        assert_eq!(Size(128 << 20).to_string(), "128M");
        assert_eq!(Size(3 << 30).to_string(), "3G");
    }
}
