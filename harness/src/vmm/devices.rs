//! Plugging and unplugging: allocates names and numbers the way Linux does (lowest free
//! index), records what is plugged, and builds the kernel sequence of each change.

use std::collections::BTreeSet;

use super::config::{DeviceKind, Hotplug, Size};
use super::kernel::Seq;
use super::pci::{PciAddr, PciFunction, Placement};
use super::platform::{nvdimm_add, nvdimm_remove};
use super::vfio::{VfioDev, vfio_add, vfio_remove, vfio_unbind};
use super::virtio::{
    Disk, Nic, ScsiDisk, ScsiHost, VIRTIO_VENDOR, VirtioDev, blk_add, blk_remove, net_add,
    net_remove, scsi_disk_add, scsi_disk_remove, scsi_host_add, scsi_host_remove,
};
use super::{State, VmmError};

/// Lowest-free index allocation (the kernel's IDA).
#[derive(Debug, Default)]
pub(super) struct Ida(BTreeSet<u32>);

impl Ida {
    pub(super) fn alloc(&mut self) -> u32 {
        let n = (0..).find(|n| !self.0.contains(n)).unwrap_or(0);
        self.0.insert(n);
        n
    }

    pub(super) fn free(&mut self, n: u32) {
        self.0.remove(&n);
    }
}

/// Name and number allocators of one guest.
#[derive(Debug)]
pub(super) struct Ids {
    virtio: Ida,
    vd: Ida,
    sd: Ida,
    scsi_host: Ida,
    eth: Ida,
    pmem: Ida,
    bsg: Ida,
    diskseq: u64,
    next_group: u32,
    auto: u32,
}

impl Default for Ids {
    /// A booted guest's: its vsock device (`vhost-vsock-pci`, cold-plugged in every Kata VM,
    /// and the agent's own channel) is virtio0, so hot-plugged virtio devices start at
    /// virtio1, as on a real guest.
    fn default() -> Self {
        let mut virtio = Ida::default();
        virtio.alloc();
        Ids {
            virtio,
            vd: Ida::default(),
            sd: Ida::default(),
            scsi_host: Ida::default(),
            eth: Ida::default(),
            pmem: Ida::default(),
            bsg: Ida::default(),
            diskseq: 0,
            next_group: 0,
            auto: 0,
        }
    }
}

/// `a`..`z`, `aa`.. as in `vda`, `sdaa`.
fn letters(mut n: u32) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A plugged thing and what the VMM must remember to unplug it.
#[derive(Debug)]
pub(super) enum Plugged {
    Blk {
        dev: VirtioDev,
        disk: Disk,
        slot: Slot,
    },
    Net {
        dev: VirtioDev,
        nic: Nic,
        slot: Slot,
    },
    Scsi {
        host: ScsiHost,
        slot: Slot,
    },
    ScsiDisk {
        controller: String,
        disk: ScsiDisk,
    },
    Nvdimm {
        index: u32,
        disk: Disk,
    },
    Vfio {
        dev: VfioDev,
        slot: Slot,
    },
    Memory,
    Cpu,
}

/// A PCI placement.
#[derive(Debug)]
pub(super) struct Slot {
    addr: PciAddr,
    pci_path: String,
    wakeup: Option<String>,
}

impl From<Placement> for Slot {
    fn from(p: Placement) -> Self {
        Slot {
            addr: p.addr,
            pci_path: p.pci_path,
            wakeup: p.wakeup,
        }
    }
}

impl Plugged {
    pub(super) fn pci_path(&self) -> Option<String> {
        match self {
            Plugged::Blk { slot, .. }
            | Plugged::Net { slot, .. }
            | Plugged::Scsi { slot, .. }
            | Plugged::Vfio { slot, .. } => Some(slot.pci_path.clone()),
            _ => None,
        }
    }

    pub(super) fn vfio(&self) -> Option<&VfioDev> {
        match self {
            Plugged::Vfio { dev, .. } => Some(dev),
            _ => None,
        }
    }

    pub(super) fn vfio_mut(&mut self) -> Option<&mut VfioDev> {
        match self {
            Plugged::Vfio { dev, .. } => Some(dev),
            _ => None,
        }
    }
}

fn hex_u16(field: &str, value: Option<&str>, default: u16) -> Result<u16, VmmError> {
    value.map_or(Ok(default), |v| {
        u16::from_str_radix(v.trim_start_matches("0x"), 16)
            .map_err(|_| VmmError::BadDevice(format!("{field} {v:?} is not a hex u16")))
    })
}

fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

impl State {
    fn new_virtio(
        &mut self,
        placement: &Placement,
        device: u16,
        class: u32,
        virtio_id: u32,
        driver: &'static str,
    ) -> VirtioDev {
        VirtioDev {
            pci: PciFunction {
                dir: placement.dir.clone(),
                bdf: placement.addr.bdf(),
                vendor: VIRTIO_VENDOR,
                device,
                subsys: (VIRTIO_VENDOR, 0x1100),
                class,
            },
            index: self.ids.virtio.alloc(),
            virtio_id,
            driver,
        }
    }

    fn new_disk(&mut self, name: String, major: u64, minor: u64, size: u64) -> Disk {
        self.ids.diskseq += 1;
        Disk {
            name,
            major,
            minor,
            diskseq: self.ids.diskseq,
            sectors: size / 512,
        }
    }

    /// Records a new device and returns its id, a description and its kernel sequence.
    pub(super) fn plug(&mut self, req: &Hotplug) -> Result<(String, String, Seq), VmmError> {
        let id = match &req.id {
            Some(id) => id.clone(),
            None => {
                self.ids.auto += 1;
                format!("dev{}", self.ids.auto)
            }
        };
        if self.devices.contains_key(&id) {
            return Err(VmmError::DuplicateId(id));
        }
        let size = req.size.unwrap_or(Size(1 << 30)).0;
        let (plugged, summary, seq) = match req.kind {
            DeviceKind::VirtioBlk => self.plug_blk(req, size)?,
            DeviceKind::VirtioNet => self.plug_net(req)?,
            DeviceKind::VirtioScsi => self.plug_scsi_host(req)?,
            DeviceKind::ScsiDisk => return self.plug_scsi_disk(id, req, size),
            DeviceKind::Nvdimm => self.plug_nvdimm(req)?,
            DeviceKind::Vfio => self.plug_vfio(req)?,
            DeviceKind::Memory => self.plug_memory(req)?,
            DeviceKind::Cpu => self.plug_cpu(req)?,
        };
        self.devices.insert(id.clone(), plugged);
        Ok((id, summary, seq))
    }

    /// A virtio-blk disk on a PCI port.
    fn plug_blk(&mut self, req: &Hotplug, size: u64) -> Result<(Plugged, String, Seq), VmmError> {
        let p = self.topology.place(req.bus.as_deref(), req.slot)?;
        let dev = self.new_virtio(&p, 0x1042, 0x010000, 2, "virtio_blk");
        let n = self.ids.vd.alloc();
        let disk = self.new_disk(format!("vd{}", letters(n)), 254, u64::from(n) * 16, size);
        let seq = blk_add(&dev, &disk, p.wakeup.as_deref());
        let summary = format!(
            "virtio-blk at {} (pci path {}): {} {}",
            p.addr.bdf(),
            p.pci_path,
            disk.name,
            disk.dev()
        );
        Ok((
            Plugged::Blk {
                dev,
                disk,
                slot: p.into(),
            },
            summary,
            seq,
        ))
    }

    /// A virtio-net NIC on a PCI port.
    fn plug_net(&mut self, req: &Hotplug) -> Result<(Plugged, String, Seq), VmmError> {
        let mac = req
            .mac
            .clone()
            .unwrap_or_else(|| "02:00:00:00:00:01".into());
        if !valid_mac(&mac) {
            return Err(VmmError::BadDevice(format!("bad MAC {mac:?}")));
        }
        let p = self.topology.place(req.bus.as_deref(), req.slot)?;
        let dev = self.new_virtio(&p, 0x1041, 0x020000, 1, "virtio_net");
        let nic = Nic {
            name: format!("eth{}", self.ids.eth.alloc()),
            mac: mac.to_ascii_lowercase(),
            mtu: req.mtu.unwrap_or(1500),
        };
        let seq = net_add(&dev, &nic, p.wakeup.as_deref());
        let summary = format!(
            "virtio-net at {} (pci path {}): {} {}",
            p.addr.bdf(),
            p.pci_path,
            nic.name,
            nic.mac
        );
        Ok((
            Plugged::Net {
                dev,
                nic,
                slot: p.into(),
            },
            summary,
            seq,
        ))
    }

    /// A virtio-scsi controller (a SCSI host) on a PCI port.
    fn plug_scsi_host(&mut self, req: &Hotplug) -> Result<(Plugged, String, Seq), VmmError> {
        let p = self.topology.place(req.bus.as_deref(), req.slot)?;
        let dev = self.new_virtio(&p, 0x1048, 0x010000, 8, "virtio_scsi");
        let host = ScsiHost {
            dev,
            host: self.ids.scsi_host.alloc(),
        };
        let seq = scsi_host_add(&host, p.wakeup.as_deref());
        let summary = format!(
            "virtio-scsi at {} (pci path {}): host{}",
            p.addr.bdf(),
            p.pci_path,
            host.host
        );
        Ok((
            Plugged::Scsi {
                host,
                slot: p.into(),
            },
            summary,
            seq,
        ))
    }

    /// An NVDIMM: a region of guest RAM and a pmem disk.
    fn plug_nvdimm(&mut self, req: &Hotplug) -> Result<(Plugged, String, Seq), VmmError> {
        let size = req.size.unwrap_or(Size(128 << 20)).0;
        let base = self.ram.add_region(size)?;
        let first = !self
            .devices
            .values()
            .any(|d| matches!(d, Plugged::Nvdimm { .. }));
        let index = self.ids.pmem.alloc();
        let disk = self.new_disk(format!("pmem{index}"), 259, u64::from(index), size);
        let seq = nvdimm_add(index, &disk, first);
        let summary = format!(
            "nvdimm at {base:#x} ({}): {} {}",
            Size(size),
            disk.name,
            disk.dev()
        );
        Ok((Plugged::Nvdimm { index, disk }, summary, seq))
    }

    /// A VFIO-assigned PCI device.
    fn plug_vfio(&mut self, req: &Hotplug) -> Result<(Plugged, String, Seq), VmmError> {
        let vendor = hex_u16("vendor", req.vendor.as_deref(), 0x10de)?;
        let device = hex_u16("device", req.device.as_deref(), 0x1db6)?;
        let class = match &req.class {
            Some(c) => u32::from_str_radix(c.trim_start_matches("0x"), 16)
                .map_err(|_| VmmError::BadDevice(format!("class {c:?} is not hex")))?,
            None => 0x030200,
        };
        let group = match req.iommu_group {
            Some(g) => g,
            None => {
                self.ids.next_group += 1;
                self.ids.next_group
            }
        };
        let p = self.topology.place(req.bus.as_deref(), req.slot)?;
        let dev = VfioDev {
            pci: PciFunction {
                dir: p.dir.clone(),
                bdf: p.addr.bdf(),
                vendor,
                device,
                subsys: (vendor, device),
                class,
            },
            group,
            driver: req.driver.clone(),
        };
        let seq = vfio_add(&dev, p.wakeup.as_deref());
        let summary = format!(
            "vfio {vendor:04x}:{device:04x} at {} (pci path {}): iommu group {group}",
            p.addr.bdf(),
            p.pci_path
        );
        Ok((
            Plugged::Vfio {
                dev,
                slot: p.into(),
            },
            summary,
            seq,
        ))
    }

    /// A memory DIMM: new blocks, offline.
    fn plug_memory(&mut self, req: &Hotplug) -> Result<(Plugged, String, Seq), VmmError> {
        let size = req.size.unwrap_or(Size(128 << 20)).0;
        let (seq, blocks) = self.ram.hotplug(size)?;
        let summary = format!(
            "memory {} at {:#x}: blocks {}",
            Size(size),
            self.ram.regions().last().map_or(0, |r| r.0),
            blocks
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        Ok((Plugged::Memory, summary, seq))
    }

    /// CPUs, offline.
    fn plug_cpu(&mut self, req: &Hotplug) -> Result<(Plugged, String, Seq), VmmError> {
        let (seq, cpus) = self.cpus.hotplug(req.count.unwrap_or(1))?;
        let list: Vec<String> = cpus.iter().map(|c| format!("cpu{c}")).collect();
        Ok((Plugged::Cpu, format!("cpu: {}", list.join(",")), seq))
    }

    fn plug_scsi_disk(
        &mut self,
        id: String,
        req: &Hotplug,
        size: u64,
    ) -> Result<(String, String, Seq), VmmError> {
        let controller = req
            .controller
            .clone()
            .ok_or_else(|| VmmError::BadDevice("scsi-disk needs controller".into()))?;
        let host = match self.devices.get(&controller) {
            Some(Plugged::Scsi { host, .. }) => host.clone(),
            _ => {
                return Err(VmmError::BadDevice(format!(
                    "{controller:?} is not a virtio-scsi controller"
                )));
            }
        };
        let (scsi_id, lun) = (req.scsi_id.unwrap_or(0), req.lun.unwrap_or(0));
        let mut new_target = true;
        for d in self.devices.values() {
            if let Plugged::ScsiDisk {
                controller: c,
                disk,
            } = d
                && *c == controller
                && disk.id == scsi_id
            {
                if disk.lun == lun {
                    return Err(VmmError::BadDevice(format!("{scsi_id}:{lun} is taken")));
                }
                new_target = false;
            }
        }
        let n = self.ids.sd.alloc();
        let disk = self.new_disk(format!("sd{}", letters(n)), 8, u64::from(n) * 16, size);
        let disk = ScsiDisk {
            id: scsi_id,
            lun,
            disk,
            bsg_minor: u64::from(self.ids.bsg.alloc()),
        };
        let seq = scsi_disk_add(&host, &disk, new_target);
        let summary = format!(
            "scsi-disk on {controller} {}: {} {}",
            host.hctl(scsi_id, lun),
            disk.disk.name,
            disk.disk.dev()
        );
        self.devices
            .insert(id.clone(), Plugged::ScsiDisk { controller, disk });
        Ok((id, summary, seq))
    }

    /// Forgets device `id`; returns a description and its removal sequence.
    pub(super) fn unplug(&mut self, id: &str) -> Result<(String, Seq), VmmError> {
        let plugged = self
            .devices
            .get(id)
            .ok_or_else(|| VmmError::UnknownDevice(id.to_owned()))?;
        if matches!(plugged, Plugged::Memory | Plugged::Cpu) {
            return Err(VmmError::BadDevice(format!(
                "{id}: memory and CPU unplug are not modelled"
            )));
        }
        let mut seq = Seq::new();
        // A controller's disks go first, in id order.
        if matches!(plugged, Plugged::Scsi { .. }) {
            let disks: Vec<String> = self
                .devices
                .iter()
                .filter(
                    |(_, d)| matches!(d, Plugged::ScsiDisk { controller, .. } if controller == id),
                )
                .map(|(k, _)| k.clone())
                .collect();
            for disk in disks {
                seq.extend(self.unplug(&disk)?.1);
            }
        }
        let Some(plugged) = self.devices.remove(id) else {
            return Err(VmmError::UnknownDevice(id.to_owned()));
        };
        let summary = match plugged {
            Plugged::Blk { dev, disk, slot } => {
                seq.extend(blk_remove(&dev, &disk, slot.wakeup.as_deref()));
                self.release_virtio(&dev, &slot);
                self.ids.vd.free((disk.minor / 16) as u32);
                format!("virtio-blk {}", disk.name)
            }
            Plugged::Net { dev, nic, slot } => {
                seq.extend(net_remove(&dev, &nic, slot.wakeup.as_deref()));
                self.release_virtio(&dev, &slot);
                if let Ok(n) = nic.name.trim_start_matches("eth").parse() {
                    self.ids.eth.free(n);
                }
                format!("virtio-net {}", nic.name)
            }
            Plugged::Scsi { host, slot } => {
                seq.extend(scsi_host_remove(&host, slot.wakeup.as_deref()));
                self.release_virtio(&host.dev, &slot);
                self.ids.scsi_host.free(host.host);
                format!("virtio-scsi host{}", host.host)
            }
            Plugged::ScsiDisk { controller, disk } => {
                let last = !self.devices.values().any(|d| {
                    matches!(d, Plugged::ScsiDisk { controller: c, disk: o } if *c == controller && o.id == disk.id)
                });
                if let Some(Plugged::Scsi { host, .. }) = self.devices.get(&controller) {
                    seq.extend(scsi_disk_remove(host, &disk, last));
                }
                self.ids.sd.free((disk.disk.minor / 16) as u32);
                self.ids.bsg.free(disk.bsg_minor as u32);
                format!("scsi-disk {}", disk.disk.name)
            }
            Plugged::Nvdimm { index, disk } => {
                seq.extend(nvdimm_remove(index, &disk));
                self.ids.pmem.free(index);
                format!("nvdimm {}", disk.name)
            }
            Plugged::Vfio { dev, slot } => {
                if let Some(driver) = dev.driver.clone() {
                    let node = self.vfio_group_node_released(&dev, &driver);
                    seq.extend(vfio_unbind(&dev, &driver, node));
                }
                seq.extend(vfio_remove(&dev, slot.wakeup.as_deref()));
                self.topology.release(slot.addr);
                format!("vfio {}", dev.pci.bdf)
            }
            // Refused above, before anything was removed.
            Plugged::Memory | Plugged::Cpu => id.to_owned(),
        };
        Ok((summary, seq))
    }

    fn release_virtio(&mut self, dev: &VirtioDev, slot: &Slot) {
        self.ids.virtio.free(dev.index);
        self.topology.release(slot.addr);
    }

    /// When `dev` (bound to `driver`) lets go: the minor of its group node if it was the
    /// group's last device bound to vfio-pci (the node then goes), else `None`.
    pub(super) fn vfio_group_node_released(&mut self, dev: &VfioDev, driver: &str) -> Option<u64> {
        if driver != "vfio-pci" {
            return None;
        }
        let others = self.devices.values().filter_map(Plugged::vfio).any(|o| {
            o.group == dev.group
                && o.pci.bdf != dev.pci.bdf
                && o.driver.as_deref() == Some("vfio-pci")
        });
        (!others).then_some(u64::from(dev.group))
    }

    /// When `dev` binds to vfio-pci: the minor of its group node if the node is new (no other
    /// device of the group is bound to vfio-pci). Group nodes use the group number as minor.
    pub(super) fn vfio_group_node_created(&self, dev: &VfioDev) -> Option<u64> {
        let others = self.devices.values().filter_map(Plugged::vfio).any(|o| {
            o.group == dev.group
                && o.pci.bdf != dev.pci.bdf
                && o.driver.as_deref() == Some("vfio-pci")
        });
        (!others).then_some(u64::from(dev.group))
    }
}

#[cfg(test)]
mod tests {
    use super::letters;

    #[test]
    fn disk_letters_follow_the_kernel() {
        assert_eq!(letters(0), "a");
        assert_eq!(letters(25), "z");
        assert_eq!(letters(26), "aa");
        assert_eq!(letters(27), "ab");
    }
}
