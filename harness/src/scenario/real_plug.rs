//! Hot-plug on a real guest through QMP: virtio-blk and virtio-net on a PCIe root port,
//! memory as a pc-dimm, CPUs. Each plug returns the trace's summary and a shell condition that
//! holds once the guest kernel has the device (what `settle` waits for).

use serde_json::{Value as Json, json};

use crate::qemu::{QemuError, RealGuest};
use crate::vmm::config::{DeviceKind, Hotplug, Size};

/// A device QEMU took.
#[derive(Debug)]
pub(super) struct Plugged {
    /// What the trace says: `blk1: virtio-blk (pci path 02/00)`.
    pub(super) summary: String,
    /// A shell condition that holds once the guest kernel sees the device.
    pub(super) probe: String,
}

/// The QMP side of the real backend's hot-plug steps.
#[derive(Debug)]
pub(super) struct Plugger {
    /// Root ports by id, with their slot on the root bus.
    ports: Vec<(String, u8)>,
    /// Root ports nothing was plugged into yet, in slot order.
    free_ports: Vec<String>,
    /// The guest's memory block size.
    block_size: u64,
    /// Numbers for devices without an id.
    next_id: usize,
    /// How many CPUs the guest has (boot plus plugged).
    cpus: u32,
}

impl Plugger {
    pub(super) fn new(ports: Vec<(String, u8)>, block_size: u64, cpus: u32) -> Self {
        Plugger {
            free_ports: ports.iter().map(|(id, _)| id.clone()).collect(),
            ports,
            block_size,
            next_id: 1,
            cpus,
        }
    }

    /// Whether `kind` is mapped to QMP.
    pub(super) fn supports(kind: DeviceKind) -> bool {
        matches!(
            kind,
            DeviceKind::VirtioBlk | DeviceKind::VirtioNet | DeviceKind::Memory | DeviceKind::Cpu
        )
    }

    fn id(&mut self, h: &Hotplug) -> String {
        h.id.clone().unwrap_or_else(|| {
            let id = format!("dev{}", self.next_id);
            self.next_id += 1;
            id
        })
    }

    /// Plugs `h` into `guest`.
    pub(super) fn plug(
        &mut self,
        guest: &mut RealGuest,
        h: &Hotplug,
    ) -> Result<Plugged, QemuError> {
        let id = self.id(h);
        match h.kind {
            DeviceKind::VirtioBlk => self.blk(guest, h, &id),
            DeviceKind::VirtioNet => self.net(guest, h, &id),
            DeviceKind::Memory => self.memory(guest, h, &id),
            DeviceKind::Cpu => self.cpus(guest, h, &id),
            other => Err(QemuError::Missing {
                what: format!("a QMP mapping for {other:?}"),
            }),
        }
    }

    /// The named or the next free root port, with its slot.
    fn port(&mut self, h: &Hotplug) -> Result<(String, u8), QemuError> {
        let bus = match &h.bus {
            Some(bus) => bus.clone(),
            None => self.free_ports.first().cloned().ok_or(QemuError::Missing {
                what: "a free root port".into(),
            })?,
        };
        let slot = self
            .ports
            .iter()
            .find(|(id, _)| *id == bus)
            .map(|(_, slot)| *slot)
            .ok_or_else(|| QemuError::Missing {
                what: format!("root port {bus:?}"),
            })?;
        self.free_ports.retain(|p| *p != bus);
        Ok((bus, slot))
    }

    /// A virtio-blk disk: a sparse raw file holding an empty ext4.
    fn blk(&mut self, guest: &mut RealGuest, h: &Hotplug, id: &str) -> Result<Plugged, QemuError> {
        let (bus, slot) = self.port(h)?;
        let size = h.size.map_or(64 << 20, |s| s.0);
        let image = guest.vm.workdir().join(format!("{id}.img"));
        crate::qemu::launch::ext4_image(&image, size)?;
        let node = format!("drive-{id}");
        let qmp = guest.qmp()?;
        qmp.execute(
            "blockdev-add",
            json!({
                "node-name": node,
                "driver": "raw",
                "file": { "driver": "file", "filename": image.display().to_string() },
            }),
        )?;
        qmp.execute(
            "device_add",
            json!({ "driver": "virtio-blk-pci", "id": id, "drive": node, "bus": bus }),
        )?;
        Ok(Plugged {
            summary: format!("{id}: virtio-blk (pci path {slot:02x}/00)"),
            probe: format!(
                "/bin/busybox ls -d /sys/bus/pci/devices/0000:00:{slot:02x}.0/0000:*/virtio*/block/*"
            ),
        })
    }

    /// A virtio-net NIC on a user-mode backend that reaches nothing (`restrict=on`).
    fn net(&mut self, guest: &mut RealGuest, h: &Hotplug, id: &str) -> Result<Plugged, QemuError> {
        let (bus, slot) = self.port(h)?;
        let netdev = format!("netdev-{id}");
        let qmp = guest.qmp()?;
        qmp.execute(
            "netdev_add",
            json!({ "type": "user", "id": netdev, "restrict": true }),
        )?;
        let mut device =
            json!({ "driver": "virtio-net-pci", "id": id, "netdev": netdev, "bus": bus });
        if let Some(mac) = &h.mac {
            device["mac"] = json!(mac);
        }
        if let Some(mtu) = h.mtu {
            device["host_mtu"] = json!(mtu);
        }
        qmp.execute("device_add", device)?;
        Ok(Plugged {
            summary: format!("{id}: virtio-net (pci path {slot:02x}/00)"),
            probe: format!(
                "/bin/busybox ls -d /sys/bus/pci/devices/0000:00:{slot:02x}.0/0000:*/virtio*/net/*"
            ),
        })
    }

    /// A pc-dimm on a shared memfd backend (vhost-user maps every guest region).
    fn memory(
        &mut self,
        guest: &mut RealGuest,
        h: &Hotplug,
        id: &str,
    ) -> Result<Plugged, QemuError> {
        let size = h.size.unwrap_or(Size(self.block_size));
        if !size.0.is_multiple_of(self.block_size) {
            // QEMU would take it and the guest kernel fail to add it; Kata's runtime rounds
            // to the guest's memory block size before it asks.
            return Err(QemuError::Refused {
                detail: format!(
                    "{:#x} is not a multiple of the memory block size {:#x}",
                    size.0, self.block_size
                ),
            });
        }
        let backend = format!("mem-{id}");
        let qmp = guest.qmp()?;
        qmp.execute(
            "object-add",
            json!({ "qom-type": "memory-backend-memfd", "id": backend, "size": size.0, "share": true }),
        )?;
        if let Err(e) = qmp.execute(
            "device_add",
            json!({ "driver": "pc-dimm", "id": id, "memdev": backend }),
        ) {
            let _ = qmp.execute("object-del", json!({ "id": backend }));
            return Err(e);
        }
        let devices = qmp.execute("query-memory-devices", json!({}))?;
        let addr = dimm_addr(&devices, id).ok_or_else(|| QemuError::Qmp {
            command: "query-memory-devices".into(),
            detail: format!("no DIMM {id:?} in {devices}"),
        })?;
        let first = addr / self.block_size;
        let blocks: Vec<u64> = (first..first + size.0 / self.block_size).collect();
        let names: Vec<String> = blocks.iter().map(ToString::to_string).collect();
        let probe = blocks
            .iter()
            .map(|b| format!("/bin/busybox test -e /sys/devices/system/memory/memory{b}"))
            .collect::<Vec<_>>()
            .join(" && ");
        Ok(Plugged {
            summary: format!(
                "{id}: memory {size} at {addr:#x}: blocks {}",
                names.join(",")
            ),
            probe,
        })
    }

    /// `count` vCPUs, lowest free socket first; the guest numbers them after the boot CPUs.
    fn cpus(&mut self, guest: &mut RealGuest, h: &Hotplug, id: &str) -> Result<Plugged, QemuError> {
        let count = h.count.unwrap_or(1);
        let qmp = guest.qmp()?;
        let slots = qmp.execute("query-hotpluggable-cpus", json!({}))?;
        let mut free: Vec<&Json> = slots
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s.get("qom-path").is_none())
            .collect();
        free.sort_by_key(|s| s["props"]["socket-id"].as_u64().unwrap_or(u64::MAX));
        if free.len() < count as usize {
            return Err(QemuError::Missing {
                what: format!("{count} free CPU slot(s) (only {})", free.len()),
            });
        }
        let mut names = Vec::new();
        for slot in free.into_iter().take(count as usize) {
            let mut device = slot["props"].clone();
            device["driver"] = slot["type"].clone();
            device["id"] = json!(format!("{id}-cpu{}", self.cpus));
            qmp.execute("device_add", device)?;
            names.push(format!("cpu{}", self.cpus));
            self.cpus += 1;
        }
        let probe = names
            .iter()
            .map(|n| format!("/bin/busybox test -e /sys/devices/system/cpu/{n}"))
            .collect::<Vec<_>>()
            .join(" && ");
        Ok(Plugged {
            summary: format!("{id}: cpu: {}", names.join(",")),
            probe,
        })
    }
}

/// The address of DIMM `id` in a `query-memory-devices` answer.
fn dimm_addr(devices: &Json, id: &str) -> Option<u64> {
    devices.as_array()?.iter().find_map(|d| {
        let data = d.get("data")?;
        (data.get("id")?.as_str()? == id).then(|| data.get("addr")?.as_u64())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimm_address_by_id() {
        let answer = json!([
            { "type": "dimm", "data": { "id": "a", "addr": 4294967296u64, "size": 268435456 } },
            { "type": "dimm", "data": { "id": "b", "addr": 4563402752u64 } },
        ]);
        assert_eq!(dimm_addr(&answer, "b"), Some(4_563_402_752));
        assert_eq!(dimm_addr(&answer, "c"), None);
    }
}
