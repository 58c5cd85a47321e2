//! The fake VMM: plays the virtual machine around an in-process agent.
//!
//! It owns the guest's RAM (vm-memory regions), a PCI topology, CPUs and NVDIMMs, and a model
//! of the guest kernel ([`guest::GuestKernel`]) that turns each hotplug request into the sysfs
//! nodes and uevent sequence a Linux guest produces, signalled through a vmm-sys-util eventfd
//! and played on tokio time. Writes the agent makes to sysfs (onlining memory or CPUs, VFIO
//! driver rebinding) reach the model through the fake sysfs' write hooks.

pub mod config;
mod devices;
pub mod guest;
mod hooks;
pub mod kernel;
pub mod pci;
pub mod platform;
mod procfs;
mod vfio;
pub mod virtio;

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use agent_fakes::FakeHost;
use kata_agent::host::NodeKind;

use config::{DeviceKind, Hotplug, VmConfig};
use devices::{Ids, Plugged};
use guest::{Delivery, DeliveryRule, GuestKernel};
use kernel::{KernelEvent, Seq, apply};
use pci::Topology;
use platform::{Cpus, GuestRam};

/// Why the VMM refused a request.
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    /// The VM description is inconsistent.
    #[error("bad VM config: {0}")]
    Config(String),
    /// No port has this id.
    #[error("no PCI port {0:?}")]
    NoSuchPort(String),
    /// Every slot is taken.
    #[error("no free PCI slot")]
    NoFreeSlot,
    /// The slot asked for cannot be used.
    #[error("bad slot: {0}")]
    BadSlot(String),
    /// A size or count the VMM cannot satisfy.
    #[error("bad size: {0}")]
    BadSize(String),
    /// vm-memory refused.
    #[error("guest memory: {0}")]
    Memory(String),
    /// A device with this id is plugged already.
    #[error("a device {0:?} is plugged already")]
    DuplicateId(String),
    /// No device has this id.
    #[error("no device {0:?}")]
    UnknownDevice(String),
    /// A field the device kind needs is missing or wrong.
    #[error("bad device: {0}")]
    BadDevice(String),
    /// Only PCI disks and NICs can be present at boot.
    #[error("{0:?} cannot be cold-plugged (only virtio-blk and virtio-net)")]
    ColdPlug(DeviceKind),
    /// The guest kernel refused a write.
    #[error("refused: {0}")]
    Refused(&'static str),
    /// An OS-level failure (eventfd, sysfs).
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Everything the VMM tracks, behind one lock.
#[derive(Debug)]
struct State {
    topology: Topology,
    devices: BTreeMap<String, Plugged>,
    ram: GuestRam,
    cpus: Cpus,
    ids: Ids,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    kernel: GuestKernel,
    default_delay: Duration,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        agent_fakes::lock(&self.state)
    }
}

/// The fake VMM of one guest. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FakeVmm {
    inner: Arc<Inner>,
}

/// The sysfs every guest has before the first hotplug, apart from PCI, memory and CPUs.
fn base_tree(seq: &mut Seq) {
    for dir in [
        "/dev",
        "/sys/block",
        "/sys/dev/block",
        "/sys/class/block",
        "/sys/class/scsi_host",
        "/sys/class/pci_bus",
        "/sys/kernel/iommu_groups",
        "/sys/bus/pci/devices",
        "/sys/bus/virtio/devices",
        "/sys/bus/virtio/drivers/virtio_blk",
        "/sys/bus/virtio/drivers/virtio_net",
        "/sys/bus/virtio/drivers/virtio_scsi",
        "/sys/bus/scsi/drivers/sd",
        "/sys/devices/virtual/net/lo",
    ] {
        seq.dir(dir);
    }
    seq.file("/sys/bus/pci/drivers_probe", "")
        .file("/sys/bus/pci/rescan", "")
        .file("/etc/resolv.conf", "")
        .file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "0")
        .file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "0")
        .dir("/run")
        .link("/sys/class/net/lo", "../../devices/virtual/net/lo")
        .node("/dev/vfio/vfio", NodeKind::CharDevice, 10, 196)
        .node("/dev/null", NodeKind::CharDevice, 1, 3);
    for driver in ["pcieport", "virtio-pci", "vfio-pci"] {
        vfio::driver_files(seq, driver);
    }
}

impl FakeVmm {
    /// Builds the VM of `config` around the fakes of `fake`: cold-plugged sysfs, the guest
    /// model's task (on the current tokio runtime) and the sysfs write hooks.
    pub fn boot(config: &VmConfig, fake: &FakeHost) -> Result<Self, VmmError> {
        let topology = Topology::new(&config.pci)?;
        let ram = GuestRam::new(
            config.memory.0,
            config.max_memory.0,
            config.memory_block_size.0,
        )?;
        let cpus = Cpus::new(config.cpus, config.max_cpus)?;
        let mut seq = Seq::new();
        base_tree(&mut seq);
        topology.boot(&mut seq);
        ram.boot(&mut seq);
        cpus.boot(&mut seq);
        procfs::boot(&mut seq, ram.total(), config.cpus);
        let mut state = State {
            topology,
            devices: BTreeMap::new(),
            ram,
            cpus,
            ids: Ids::default(),
        };
        for device in &config.devices {
            if !matches!(device.kind, DeviceKind::VirtioBlk | DeviceKind::VirtioNet) {
                return Err(VmmError::ColdPlug(device.kind));
            }
            let (_, _, plugged) = state.plug(device)?;
            seq.extend(plugged);
        }
        // Everything before the agent: the nodes stay, the uevents went to nobody.
        for step in seq.into_steps() {
            if let kernel::KernelStep::Sysfs(op) = step {
                apply(&fake.sysfs, &fake.netlink, &op)?;
            }
        }
        let kernel = GuestKernel::start(
            fake.sysfs.clone(),
            fake.netlink.clone(),
            fake.uevents.clone(),
            1,
        )?;
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            kernel,
            default_delay: config.uevent_delay,
        });
        hooks::register(&inner, &fake.sysfs);
        Ok(FakeVmm { inner })
    }

    /// Plugs a device, memory or CPUs; the guest sees it after the request's delay (default:
    /// the VM's `uevent_delay`). Returns the device's id and a one-line description.
    pub fn hotplug(&self, req: &Hotplug) -> Result<(String, String), VmmError> {
        let (id, summary, seq) = self.inner.lock().plug(req)?;
        let delay = req.delay.unwrap_or(self.inner.default_delay);
        self.inner.kernel.submit(seq.into_steps(), delay)?;
        Ok((id, summary))
    }

    /// Unplugs device `id`; the guest sees the removal after `delay` (default: the VM's).
    pub fn unplug(&self, id: &str, delay: Option<Duration>) -> Result<String, VmmError> {
        let (summary, seq) = self.inner.lock().unplug(id)?;
        let delay = delay.unwrap_or(self.inner.default_delay);
        self.inner.kernel.submit(seq.into_steps(), delay)?;
        Ok(summary)
    }

    /// Sends one uevent as given (a replayed real one), after `delay`.
    pub fn raw_uevent(&self, event: KernelEvent, delay: Option<Duration>) -> Result<(), VmmError> {
        let mut seq = Seq::new();
        seq.event_owned(&event.action, &event.devpath, event.fields.clone());
        let mut steps = seq.into_steps();
        if let Some(kernel::KernelStep::Event(e)) = steps.first_mut() {
            e.seqnum = event.seqnum;
        }
        let delay = delay.unwrap_or(self.inner.default_delay);
        self.inner.kernel.submit(steps, delay)?;
        Ok(())
    }

    /// Adds a uevent delivery rule (drop, delay, reorder).
    pub fn add_rule(&self, rule: DeliveryRule) {
        self.inner.kernel.add_rule(rule);
    }

    /// Whether every request was played and every uevent taken by the agent.
    pub fn is_idle(&self) -> bool {
        self.inner.kernel.is_idle()
    }

    /// Every uevent the guest model played, in order.
    pub fn uevent_log(&self) -> Vec<Delivery> {
        self.inner.kernel.log()
    }

    /// Guest RAM regions, `(start, length)`.
    pub fn ram_regions(&self) -> Vec<(u64, u64)> {
        self.inner.lock().ram.regions()
    }

    /// Writes and reads back every guest RAM region.
    pub fn probe_ram(&self) -> Result<(), VmmError> {
        self.inner.lock().ram.probe()
    }

    /// Kata's PCI path of device `id` (`02/00`), if it is a PCI device.
    pub fn pci_path(&self, id: &str) -> Option<String> {
        self.inner
            .lock()
            .devices
            .get(id)
            .and_then(Plugged::pci_path)
    }

    /// Ids of the plugged devices, sorted.
    pub fn device_ids(&self) -> Vec<String> {
        self.inner.lock().devices.keys().cloned().collect()
    }
}
