//! The PCI topology: the root bus, its root ports and bridges, slot allocation, and the sysfs
//! nodes and uevents of a PCI function appearing, binding and going away.

use std::collections::BTreeSet;

use super::VmmError;
use super::config::{PortKind, PortSpec};
use super::kernel::{Seq, relative};

/// The root bus's sysfs directory (domain 0000, bus 00).
pub const ROOT: &str = "/sys/devices/pci0000:00";

/// A PCI address on domain 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PciAddr {
    /// Bus number.
    pub bus: u8,
    /// Slot (device) number, 0 to 31.
    pub slot: u8,
}

impl PciAddr {
    /// `0000:BB:SS.0`.
    pub fn bdf(&self) -> String {
        format!("0000:{:02x}:{:02x}.0", self.bus, self.slot)
    }
}

/// A port on the root bus.
#[derive(Clone, Debug)]
struct Port {
    id: String,
    kind: PortKind,
    slot: u8,
    secondary: u8,
    /// Index among root ports (ACPI wakeup source numbering).
    index: usize,
}

/// Where a plugged function sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Its address.
    pub addr: PciAddr,
    /// Its sysfs directory (`/sys/devices/pci0000:00/0000:00:02.0/0000:01:00.0`).
    pub dir: String,
    /// Kata's PCI path (`02/00`).
    pub pci_path: String,
    /// The ACPI wakeup source a PCIe root port announces on hotplug.
    pub wakeup: Option<String>,
}

impl Placement {
    /// The kobject path (`dir` without `/sys`).
    pub fn devpath(&self) -> String {
        self.dir.trim_start_matches("/sys").to_owned()
    }
}

/// The root bus and its ports; tracks which slots are taken.
#[derive(Debug)]
pub struct Topology {
    ports: Vec<Port>,
    used: BTreeSet<PciAddr>,
}

impl Topology {
    /// Checks the ports (unique ids and slots, slot 1 to 31) and numbers their buses in order.
    pub fn new(specs: &[PortSpec]) -> Result<Self, VmmError> {
        let mut ports: Vec<Port> = Vec::new();
        let mut root_ports = 0;
        for (i, spec) in specs.iter().enumerate() {
            if spec.slot == 0 || spec.slot > 31 {
                return Err(VmmError::Config(format!(
                    "port {}: slot {} is not 1 to 31",
                    spec.id, spec.slot
                )));
            }
            if spec.id == "root" || ports.iter().any(|p| p.id == spec.id || p.slot == spec.slot) {
                return Err(VmmError::Config(format!(
                    "port {}: duplicate id or slot {}",
                    spec.id, spec.slot
                )));
            }
            let index = root_ports;
            if spec.kind == PortKind::RootPort {
                root_ports += 1;
            }
            ports.push(Port {
                id: spec.id.clone(),
                kind: spec.kind,
                slot: spec.slot,
                secondary: u8::try_from(i + 1).unwrap_or(u8::MAX),
                index,
            });
        }
        Ok(Topology {
            ports,
            used: BTreeSet::new(),
        })
    }

    /// The cold-plugged part of sysfs: the host bridge and the ports with their `pci_bus/`.
    pub fn boot(&self, seq: &mut Seq) {
        seq.dir(format!("{ROOT}/pci_bus/0000:00"));
        let host = PciFunction {
            dir: format!("{ROOT}/0000:00:00.0"),
            bdf: "0000:00:00.0".into(),
            vendor: 0x8086,
            device: 0x29c0,
            subsys: (0x1af4, 0x1100),
            class: 0x060000,
        };
        host.attributes(seq);
        for port in &self.ports {
            let addr = PciAddr {
                bus: 0,
                slot: port.slot,
            };
            let (vendor, device) = match port.kind {
                PortKind::RootPort => (0x1b36, 0x000c),
                PortKind::PciBridge => (0x1b36, 0x0001),
            };
            let f = PciFunction {
                dir: format!("{ROOT}/{}", addr.bdf()),
                bdf: addr.bdf(),
                vendor,
                device,
                subsys: (0x1af4, 0x1100),
                class: 0x060400,
            };
            f.attributes(seq);
            seq.dir(format!("{}/pci_bus/0000:{:02x}", f.dir, port.secondary));
            seq.link(
                format!("/sys/class/pci_bus/0000:{:02x}", port.secondary),
                relative(
                    "/sys/class/pci_bus",
                    &format!("{}/pci_bus/0000:{:02x}", f.dir, port.secondary),
                ),
            );
            seq.link(
                format!("{}/driver", f.dir),
                relative(&f.dir, "/sys/bus/pci/drivers/pcieport"),
            );
        }
    }

    /// Takes a slot: on port `bus` (or `root`), at `slot` or the first free one.
    pub fn place(&mut self, bus: Option<&str>, slot: Option<u8>) -> Result<Placement, VmmError> {
        let placement = match bus {
            Some("root") => self.on_root(slot)?,
            Some(id) => {
                let port = self
                    .ports
                    .iter()
                    .find(|p| p.id == id)
                    .cloned()
                    .ok_or_else(|| VmmError::NoSuchPort(id.to_owned()))?;
                self.on_port(&port, slot)?
            }
            None => {
                let free = self.ports.iter().find(|p| {
                    Self::slots(p.kind).any(|s| {
                        !self.used.contains(&PciAddr {
                            bus: p.secondary,
                            slot: s,
                        })
                    })
                });
                let port = free.cloned().ok_or(VmmError::NoFreeSlot)?;
                self.on_port(&port, slot)?
            }
        };
        self.used.insert(placement.addr);
        Ok(placement)
    }

    /// Frees the slot at `addr`.
    pub fn release(&mut self, addr: PciAddr) {
        self.used.remove(&addr);
    }

    fn slots(kind: PortKind) -> std::ops::RangeInclusive<u8> {
        match kind {
            PortKind::RootPort => 0..=0,
            PortKind::PciBridge => 1..=31,
        }
    }

    fn on_port(&self, port: &Port, slot: Option<u8>) -> Result<Placement, VmmError> {
        let slot = match slot {
            Some(s) if Self::slots(port.kind).contains(&s) => s,
            Some(s) => {
                return Err(VmmError::BadSlot(format!(
                    "slot {s} does not exist on {}",
                    port.id
                )));
            }
            None => Self::slots(port.kind)
                .find(|&s| {
                    !self.used.contains(&PciAddr {
                        bus: port.secondary,
                        slot: s,
                    })
                })
                .ok_or(VmmError::NoFreeSlot)?,
        };
        let addr = PciAddr {
            bus: port.secondary,
            slot,
        };
        if self.used.contains(&addr) {
            return Err(VmmError::BadSlot(format!("{} is taken", addr.bdf())));
        }
        let bridge = PciAddr {
            bus: 0,
            slot: port.slot,
        };
        let wakeup = (port.kind == PortKind::RootPort).then(|| {
            let i = port.index;
            format!(
                "/devices/LNXSYSTM:00/LNXSYBUS:00/PNP0A08:00/device:{:02x}/device:{:02x}/wakeup/wakeup{}",
                2 * i + 2,
                2 * i + 3,
                11 + i
            )
        });
        Ok(Placement {
            addr,
            dir: format!("{ROOT}/{}/{}", bridge.bdf(), addr.bdf()),
            pci_path: format!("{:02x}/{:02x}", port.slot, slot),
            wakeup,
        })
    }

    fn on_root(&self, slot: Option<u8>) -> Result<Placement, VmmError> {
        let taken = |s: u8| {
            s == 0
                || self.ports.iter().any(|p| p.slot == s)
                || self.used.contains(&PciAddr { bus: 0, slot: s })
        };
        let slot = match slot {
            Some(s) if s <= 31 && !taken(s) => s,
            Some(s) => return Err(VmmError::BadSlot(format!("root bus slot {s} is taken"))),
            None => (1..=31).find(|&s| !taken(s)).ok_or(VmmError::NoFreeSlot)?,
        };
        let addr = PciAddr { bus: 0, slot };
        Ok(Placement {
            addr,
            dir: format!("{ROOT}/{}", addr.bdf()),
            pci_path: format!("{slot:02x}"),
            wakeup: None,
        })
    }
}

/// A PCI function's identity and where its sysfs directory is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciFunction {
    /// Its sysfs directory.
    pub dir: String,
    /// `0000:BB:SS.F`.
    pub bdf: String,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Subsystem vendor and device ids.
    pub subsys: (u16, u16),
    /// Class code (`0x010000` for a SCSI/virtio-blk storage controller).
    pub class: u32,
}

impl PciFunction {
    /// The kobject path.
    pub fn devpath(&self) -> String {
        self.dir.trim_start_matches("/sys").to_owned()
    }

    /// `pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00`.
    pub fn modalias(&self) -> String {
        format!(
            "pci:v{:08X}d{:08X}sv{:08X}sd{:08X}bc{:02X}sc{:02X}i{:02X}",
            self.vendor,
            self.device,
            self.subsys.0,
            self.subsys.1,
            self.class >> 16,
            (self.class >> 8) & 0xff,
            self.class & 0xff
        )
    }

    /// The variables of its uevents, in the kernel's order.
    pub fn fields(&self, driver: Option<&str>, modalias: bool) -> Vec<(String, String)> {
        let mut out = vec![("SUBSYSTEM".to_owned(), "pci".to_owned())];
        if let Some(driver) = driver {
            out.push(("DRIVER".into(), driver.into()));
        }
        out.push(("PCI_CLASS".into(), format!("{:X}", self.class)));
        out.push((
            "PCI_ID".into(),
            format!("{:04X}:{:04X}", self.vendor, self.device),
        ));
        out.push((
            "PCI_SUBSYS_ID".into(),
            format!("{:04X}:{:04X}", self.subsys.0, self.subsys.1),
        ));
        out.push(("PCI_SLOT_NAME".into(), self.bdf.clone()));
        if modalias {
            out.push(("MODALIAS".into(), self.modalias()));
        }
        out
    }

    /// Its directory, attribute files and `/sys/bus/pci/devices` link.
    fn attributes(&self, seq: &mut Seq) {
        seq.dir(&self.dir)
            .file(
                format!("{}/vendor", self.dir),
                format!("0x{:04x}", self.vendor),
            )
            .file(
                format!("{}/device", self.dir),
                format!("0x{:04x}", self.device),
            )
            .file(
                format!("{}/subsystem_vendor", self.dir),
                format!("0x{:04x}", self.subsys.0),
            )
            .file(
                format!("{}/subsystem_device", self.dir),
                format!("0x{:04x}", self.subsys.1),
            )
            .file(
                format!("{}/class", self.dir),
                format!("0x{:06x}", self.class),
            )
            .file(format!("{}/modalias", self.dir), self.modalias())
            .file(format!("{}/driver_override", self.dir), "(null)")
            .link(
                format!("/sys/bus/pci/devices/{}", self.bdf),
                relative("/sys/bus/pci/devices", &self.dir),
            );
    }

    /// The function appears: the root port's wakeup source, the sysfs nodes, `add`.
    pub fn appear(&self, seq: &mut Seq, wakeup: Option<&str>) {
        if let Some(wakeup) = wakeup {
            seq.event("add", wakeup, &[("SUBSYSTEM", "wakeup")]);
        }
        self.attributes(seq);
        seq.event_owned("add", &self.devpath(), self.fields(None, true));
    }

    /// A driver binds: the `driver` link, `bind`.
    pub fn bind(&self, seq: &mut Seq, driver: &str) {
        seq.link(
            format!("{}/driver", self.dir),
            relative(&self.dir, &format!("/sys/bus/pci/drivers/{driver}")),
        );
        seq.link(
            format!("/sys/bus/pci/drivers/{driver}/{}", self.bdf),
            relative(&format!("/sys/bus/pci/drivers/{driver}"), &self.dir),
        );
        seq.event_owned("bind", &self.devpath(), self.fields(Some(driver), true));
    }

    /// The driver lets go: `unbind` (its variables carry no MODALIAS).
    pub fn unbind(&self, seq: &mut Seq, driver: &str) {
        seq.remove(format!("{}/driver", self.dir));
        seq.remove(format!("/sys/bus/pci/drivers/{driver}/{}", self.bdf));
        seq.event_owned("unbind", &self.devpath(), self.fields(None, false));
    }

    /// The function goes away: the wakeup source, then `remove` and the sysfs nodes.
    pub fn disappear(&self, seq: &mut Seq, wakeup: Option<&str>) {
        if let Some(wakeup) = wakeup {
            seq.event("remove", wakeup, &[("SUBSYSTEM", "wakeup")]);
        }
        seq.remove(format!("/sys/bus/pci/devices/{}", self.bdf));
        seq.remove(&self.dir);
        seq.event_owned("remove", &self.devpath(), self.fields(None, true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmm::config::VmConfig;

    #[test]
    fn places_devices_on_free_ports_with_kata_pci_paths() {
        let mut topo = Topology::new(&VmConfig::default().pci).unwrap();
        let first = topo.place(None, None).unwrap();
        assert_eq!(first.addr.bdf(), "0000:01:00.0");
        assert_eq!(first.pci_path, "02/00");
        assert_eq!(
            first.dir,
            "/sys/devices/pci0000:00/0000:00:02.0/0000:01:00.0"
        );
        let second = topo.place(None, None).unwrap();
        assert_eq!(second.pci_path, "03/00");
        assert!(topo.place(Some("rp1"), None).is_err());
        topo.release(first.addr);
        assert_eq!(topo.place(Some("rp1"), None).unwrap().pci_path, "02/00");
        assert!(matches!(
            topo.place(Some("nope"), None),
            Err(VmmError::NoSuchPort(_))
        ));
    }

    #[test]
    fn modalias_matches_the_kernel() {
        let f = PciFunction {
            dir: String::new(),
            bdf: "0000:01:00.0".into(),
            vendor: 0x1af4,
            device: 0x1042,
            subsys: (0x1af4, 0x1100),
            class: 0x010000,
        };
        assert_eq!(
            f.modalias(),
            "pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00"
        );
    }
}
