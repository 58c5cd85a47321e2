//! PCI addresses and paths, and resolving a path to the device's sysfs directory.
//!
//! A [`PciPath`] is how the runtime names a hot-plugged device: the slot/function of each hop
//! from the root bus (`"02/01"`: the bridge at slot 2 of the root bus, then slot 1 behind it).
//! The guest's bus numbers are only known in the guest, so [`resolve`] walks the bridges in
//! sysfs to turn the path into the kernel's devpath (`/devices/pci0000:00/0000:00:02.0/0000:01:01.0`).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::host::Sysfs;

const SLOT_BITS: u8 = 5;
const FUNCTION_BITS: u8 = 3;
const SLOT_MAX: u8 = (1 << SLOT_BITS) - 1;
const FUNCTION_MAX: u8 = (1 << FUNCTION_BITS) - 1;
/// The first bus number QEMU's pxb-pcie expander bridges use for extra root complexes; a path
/// element at or above it (which no 5-bit slot can be) names the root complex.
const PXB_ROOT_BUS_MIN: u8 = 0x20;

/// Why a PCI path or address is refused, or cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum PciError {
    /// The path has no element.
    #[error("empty PCI path")]
    EmptyPath,
    /// An element of a path or address is malformed.
    #[error("bad PCI {what} {text:?}: {reason}")]
    Syntax {
        /// `path`, `slot/function`, `address`.
        what: &'static str,
        /// The text refused.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading a bridge in sysfs failed.
    #[error("reading PCI bridge {path}: {source}")]
    Sysfs {
        /// The sysfs path read.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A bridge does not tell which bus is behind it.
    #[error("PCI bridge {bridge}: {reason}")]
    Bridge {
        /// The bridge's sysfs directory.
        bridge: PathBuf,
        /// What was found instead of one secondary bus.
        reason: String,
    },
}

fn syntax(what: &'static str, text: &str, reason: impl Into<String>) -> PciError {
    PciError::Syntax {
        what,
        text: text.to_owned(),
        reason: reason.into(),
    }
}

fn hex_u8(what: &'static str, text: &str, field: &str) -> Result<u8, PciError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(syntax(what, text, format!("{field} is not hexadecimal")));
    }
    u8::from_str_radix(text, 16).map_err(|_| syntax(what, text, format!("{field} is too large")))
}

/// A slot (5 bits) and function (3 bits) on one bus: `SS.F`, or `SS` for function 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotFn(u8);

impl SlotFn {
    /// Slot `slot` (0..=0x1f), function `function` (0..=7).
    pub fn new(slot: u8, function: u8) -> Result<Self, PciError> {
        let text = format!("{slot:x}.{function:x}");
        if slot > SLOT_MAX {
            return Err(syntax("slot/function", &text, "slot is above 0x1f"));
        }
        if function > FUNCTION_MAX {
            return Err(syntax("slot/function", &text, "function is above 7"));
        }
        Ok(SlotFn((slot << FUNCTION_BITS) | function))
    }

    /// The slot.
    pub fn slot(self) -> u8 {
        self.0 >> FUNCTION_BITS
    }

    /// The function.
    pub fn function(self) -> u8 {
        self.0 & FUNCTION_MAX
    }
}

impl FromStr for SlotFn {
    type Err = PciError;

    fn from_str(s: &str) -> Result<Self, PciError> {
        const WHAT: &str = "slot/function";
        let (slot, function) = match s.split_once('.') {
            Some((slot, function)) => (slot, Some(function)),
            None => (s, None),
        };
        let whole = |e: PciError| match e {
            PciError::Syntax { reason, .. } => syntax(WHAT, s, reason),
            other => other,
        };
        let slot = hex_u8(WHAT, slot, "slot").map_err(whole)?;
        let function = match function {
            Some(f) => hex_u8(WHAT, f, "function").map_err(whole)?,
            None => 0,
        };
        SlotFn::new(slot, function).map_err(whole)
    }
}

impl fmt::Display for SlotFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}.{:x}", self.slot(), self.function())
    }
}

/// A PCI address `DDDD:BB:SS.F` (domain, bus, slot, function).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    /// The domain (segment).
    pub domain: u16,
    /// The bus.
    pub bus: u8,
    /// Slot and function on the bus.
    pub slot_fn: SlotFn,
}

impl FromStr for PciAddress {
    type Err = PciError;

    fn from_str(s: &str) -> Result<Self, PciError> {
        const WHAT: &str = "address";
        let parts: Vec<&str> = s.split(':').collect();
        let [domain, bus, slot_fn] = parts[..] else {
            return Err(syntax(WHAT, s, "expected DDDD:BB:SS.F"));
        };
        if domain.is_empty() || domain.len() > 4 || !domain.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(syntax(WHAT, s, "domain is not 1-4 hex digits"));
        }
        let domain = u16::from_str_radix(domain, 16)
            .map_err(|_| syntax(WHAT, s, "domain is not hexadecimal"))?;
        let bus = hex_u8(WHAT, bus, "bus").map_err(|_| syntax(WHAT, s, "bad bus"))?;
        if !slot_fn.contains('.') {
            return Err(syntax(WHAT, s, "expected DDDD:BB:SS.F"));
        }
        let slot_fn = slot_fn.parse().map_err(|e| match e {
            PciError::Syntax { reason, .. } => syntax(WHAT, s, reason),
            other => other,
        })?;
        Ok(PciAddress {
            domain,
            bus,
            slot_fn,
        })
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:02x}:{}", self.domain, self.bus, self.slot_fn)
    }
}

/// A device's place in the PCI topology as the runtime names it: `SS[.F]/SS[.F]/...` in hex,
/// each element the slot/function on the bus behind the previous one, starting at the root
/// bus. A first element of `20` or more (with more elements after it) names the root complex
/// of a pxb-pcie expander (`"20/00/02"`); otherwise the root complex is `00`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PciPath {
    root_complex: u8,
    slots: Vec<SlotFn>,
}

impl PciPath {
    /// A path under root complex `root_complex`; `slots` must not be empty.
    pub fn new(root_complex: u8, slots: Vec<SlotFn>) -> Result<Self, PciError> {
        if slots.is_empty() {
            return Err(PciError::EmptyPath);
        }
        Ok(PciPath {
            root_complex,
            slots,
        })
    }

    /// The root complex's bus number (`0x00`, or `0x20`... behind a pxb-pcie).
    pub fn root_complex(&self) -> u8 {
        self.root_complex
    }

    /// The hops, from the root bus to the device.
    pub fn slots(&self) -> &[SlotFn] {
        &self.slots
    }

    /// The root bus's devpath: `/devices/pci0000:<rc>`.
    pub fn root_bus_devpath(&self) -> String {
        format!("/devices/pci0000:{:02x}", self.root_complex)
    }
}

impl FromStr for PciPath {
    type Err = PciError;

    fn from_str(s: &str) -> Result<Self, PciError> {
        if s.is_empty() {
            return Err(PciError::EmptyPath);
        }
        let mut elements: Vec<&str> = s.split('/').collect();
        let mut root_complex = 0;
        if elements.len() >= 2
            && let Ok(rc) = hex_u8("path", elements[0], "root complex")
            && rc >= PXB_ROOT_BUS_MIN
        {
            root_complex = rc;
            elements.remove(0);
        }
        let slots = elements
            .iter()
            .map(|e| {
                e.parse::<SlotFn>().map_err(|err| match err {
                    PciError::Syntax { reason, .. } => {
                        syntax("path", s, format!("element {e:?}: {reason}"))
                    }
                    other => other,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        PciPath::new(root_complex, slots)
    }
}

impl fmt::Display for PciPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.root_complex != 0 {
            write!(f, "{:02x}/", self.root_complex)?;
        }
        for (i, slot) in self.slots.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            // The runtime's form: `SS` for function 0, `SS.F` otherwise.
            match slot.function() {
                0 => write!(f, "{:02x}", slot.slot())?,
                func => write!(f, "{:02x}.{func:x}", slot.slot())?,
            }
        }
        Ok(())
    }
}

/// Where a [`PciPath`] leads in sysfs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDevice {
    /// The kernel's devpath of the device (`/devices/pci0000:00/0000:00:02.0/0000:01:01.0`);
    /// the sysfs directory is `/sys` followed by it.
    pub devpath: String,
    /// The device's guest address.
    pub address: PciAddress,
}

impl PciDevice {
    /// The device's sysfs directory.
    pub fn sysfs_dir(&self) -> PathBuf {
        PathBuf::from(format!("/sys{}", self.devpath))
    }
}

/// Resolves `path` to the devpath the device has (or will have once plugged): walks from the
/// root bus, reading each bridge's `pci_bus/` directory (exactly one entry: the secondary bus)
/// or, when a bridge has none, the bus of the devices below it. The device itself need not be
/// present yet; every bridge on the way must be.
pub fn resolve(sysfs: &dyn Sysfs, path: &PciPath) -> Result<PciDevice, PciError> {
    let mut devpath = path.root_bus_devpath();
    let mut bus = (0u16, path.root_complex());
    let (last, bridges) = path.slots().split_last().ok_or(PciError::EmptyPath)?;
    for slot in bridges {
        let bridge = PciAddress {
            domain: bus.0,
            bus: bus.1,
            slot_fn: *slot,
        };
        devpath = format!("{devpath}/{bridge}");
        bus = secondary_bus(sysfs, Path::new(&format!("/sys{devpath}")))?;
    }
    let address = PciAddress {
        domain: bus.0,
        bus: bus.1,
        slot_fn: *last,
    };
    Ok(PciDevice {
        devpath: format!("{devpath}/{address}"),
        address,
    })
}

/// The bus behind bridge `dir` (a sysfs directory), as (domain, bus).
fn secondary_bus(sysfs: &dyn Sysfs, dir: &Path) -> Result<(u16, u8), PciError> {
    let bridge_err = |reason: String| PciError::Bridge {
        bridge: dir.to_owned(),
        reason,
    };
    let read_dir = |path: &Path| {
        sysfs.read_dir(path).map_err(|source| PciError::Sysfs {
            path: path.to_owned(),
            source,
        })
    };
    let pci_bus = dir.join("pci_bus");
    let buses: Vec<(u16, u8)> = match sysfs.read_dir(&pci_bus) {
        Ok(names) => {
            let [name] = &names[..] else {
                return Err(bridge_err(format!(
                    "expected exactly one entry in pci_bus/, found {}",
                    names.len()
                )));
            };
            let name = name.to_string_lossy();
            vec![parse_bus(&name).ok_or_else(|| bridge_err(format!("bad bus name {name:?}")))?]
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // No pci_bus/ (or no bridge): the bus of the devices below it, if any.
            let mut buses: Vec<(u16, u8)> = read_dir(dir)?
                .iter()
                .filter_map(|n| n.to_str()?.parse::<PciAddress>().ok())
                .map(|a| (a.domain, a.bus))
                .collect();
            buses.sort_unstable();
            buses.dedup();
            buses
        }
        Err(source) => {
            return Err(PciError::Sysfs {
                path: pci_bus,
                source,
            });
        }
    };
    match buses[..] {
        [bus] => Ok(bus),
        [] => Err(bridge_err("no pci_bus/ and no device below it".into())),
        _ => Err(bridge_err(format!(
            "devices below it are on {} buses",
            buses.len()
        ))),
    }
}

/// `DDDD:BB` as in `pci_bus/0000:01`.
fn parse_bus(name: &str) -> Option<(u16, u8)> {
    let (domain, bus) = name.split_once(':')?;
    if domain.len() != 4 || bus.len() != 2 {
        return None;
    }
    Some((
        u16::from_str_radix(domain, 16).ok()?,
        u8::from_str_radix(bus, 16).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_fn_round_trips_and_checks_ranges() {
        assert_eq!(
            "1f.7".parse::<SlotFn>().unwrap(),
            SlotFn::new(31, 7).unwrap()
        );
        assert_eq!("02".parse::<SlotFn>().unwrap().to_string(), "02.0");
        for bad in ["20", "00.8", "", "x", "1.2.3", "-1", "0.", ".1"] {
            assert!(bad.parse::<SlotFn>().is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_parse_and_print() {
        let a: PciAddress = "0000:01:1f.7".parse().unwrap();
        assert_eq!(
            (a.domain, a.bus, a.slot_fn.slot(), a.slot_fn.function()),
            (0, 1, 31, 7)
        );
        assert_eq!(a.to_string(), "0000:01:1f.7");
        for bad in [
            "0000:01:1f",
            "0000:01",
            "00000:01:00.0",
            "0000:100:00.0",
            "g:00:00.0",
        ] {
            let err = bad.parse::<PciAddress>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn paths_parse_with_root_complexes() {
        let p: PciPath = "02/01".parse().unwrap();
        assert_eq!((p.root_complex(), p.slots().len()), (0, 2));
        assert_eq!(p.to_string(), "02/01");
        assert_eq!(p.root_bus_devpath(), "/devices/pci0000:00");
        let p: PciPath = "20/00/02.1".parse().unwrap();
        assert_eq!(p.root_complex(), 0x20);
        assert_eq!(p.to_string(), "20/00/02.1");
        assert_eq!(p.root_bus_devpath(), "/devices/pci0000:20");
        assert!(matches!("".parse::<PciPath>(), Err(PciError::EmptyPath)));
        let err = "02/zz".parse::<PciPath>().unwrap_err().to_string();
        assert!(err.contains("\"zz\""), "{err}");
        assert!("20".parse::<PciPath>().is_err());
        assert!("02//01".parse::<PciPath>().is_err());
    }
}
