//! A real guest from start to the agent answering: kernel fetched, initramfs built, QEMU
//! booted, then Health Check retried over hybrid vsock until it is served.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::QemuError;
use super::initramfs::{self, InitramfsSpec};
use super::kernel::Kernel;
use super::launch::{ColdDisk, LaunchSpec, QemuVm, ext4_image};
use super::qmp::Qmp;
use crate::client::{AgentClient, ConnectError, context};

/// The agent's vsock port.
pub const AGENT_PORT: u32 = 1024;
/// How long a boot may take to the first Check answered (TCG on a loaded machine).
const READY_LIMIT: Duration = Duration::from_secs(180);
/// How long one connect + Check may take.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(8);
/// The pause between two attempts while the kernel boots.
const RETRY_BOOTING: Duration = Duration::from_millis(250);
/// The pause between two attempts once the agent has logged its first line, and between two
/// looks at the console: short, so the boot-to-Check figure is within this of the moment the
/// agent could answer.
const RETRY_STARTING: Duration = Duration::from_millis(20);

/// What to boot.
#[derive(Clone, Debug)]
pub struct BootSpec {
    /// The agent binary put in the initramfs.
    pub agent: PathBuf,
    /// The kernel cache and working files.
    pub cache: PathBuf,
    /// This guest's sockets and logs.
    pub workdir: PathBuf,
    /// The agent's configuration on the kernel command line.
    pub cmdline: String,
    /// Where container roots must be found.
    pub rootfs_paths: Vec<String>,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// The most memory DIMM hotplug may reach, in MiB.
    pub max_memory_mib: u32,
    /// Boot CPUs.
    pub cpus: u32,
    /// The most CPUs hotplug may reach.
    pub max_cpus: u32,
    /// PCIe root ports: `(id, slot on the root bus)`.
    pub root_ports: Vec<(String, u8)>,
    /// PCI-PCI bridges: `(id, slot on the root bus)`.
    pub bridges: Vec<(String, u8)>,
    /// Disks present at boot, `(id, bus, slot, size)`: each an empty ext4 image.
    pub cold_disks: Vec<(String, String, u8, u64)>,
}

/// A booted guest whose agent answered Check.
#[derive(Debug)]
pub struct RealGuest {
    /// QEMU and the vsock backend.
    pub vm: QemuVm,
    /// A client connected over hybrid vsock.
    pub client: AgentClient,
    /// QEMU start to the first Check answered.
    pub boot_to_check: Duration,
    qmp: Option<Qmp>,
}

impl RealGuest {
    /// Builds the initramfs, boots, and waits for the agent.
    pub async fn boot(spec: &BootSpec) -> Result<RealGuest, QemuError> {
        let kernel = Kernel::fetch(&spec.cache)?;
        std::fs::create_dir_all(&spec.workdir).map_err(|e| QemuError::io(&spec.workdir, e))?;
        // Socket addresses must be absolute (`unix:///path`).
        let workdir =
            std::path::absolute(&spec.workdir).map_err(|e| QemuError::io(&spec.workdir, e))?;
        let initrd = workdir.join("initramfs.cpio");
        initramfs::build(
            &InitramfsSpec {
                agent: spec.agent.clone(),
                busybox: initramfs::host_busybox()?,
                rootfs_paths: spec.rootfs_paths.clone(),
            },
            &kernel,
            &initrd,
        )?;
        let mut cold_disks = Vec::new();
        for (id, bus, slot, size) in &spec.cold_disks {
            let image = workdir.join(format!("{id}.img"));
            ext4_image(&image, *size)?;
            let (id, bus, slot) = (id.clone(), bus.clone(), *slot);
            cold_disks.push(ColdDisk {
                id,
                bus,
                slot,
                image,
            });
        }
        let mut vm = QemuVm::start(&LaunchSpec {
            kernel: kernel.vmlinuz.clone(),
            initramfs: initrd,
            cmdline: spec.cmdline.clone(),
            memory_mib: spec.memory_mib,
            max_memory_mib: spec.max_memory_mib,
            cpus: spec.cpus,
            max_cpus: spec.max_cpus,
            workdir,
            sockets: sockets_dir(),
            root_ports: spec.root_ports.clone(),
            bridges: spec.bridges.clone(),
            cold_disks,
        })?;
        let client = wait_ready(&mut vm).await?;
        let boot_to_check = vm.started.elapsed();
        Ok(RealGuest {
            vm,
            client,
            boot_to_check,
            qmp: None,
        })
    }

    /// The QMP session, opened on first use.
    pub fn qmp(&mut self) -> Result<&mut Qmp, QemuError> {
        if self.qmp.is_none() {
            self.qmp = Some(Qmp::connect(&self.vm.qmp_path(), Duration::from_secs(10))?);
        }
        Ok(self.qmp.as_mut().expect("just set"))
    }
}

/// A fresh short folder for a guest's sockets, under the temporary folder.
fn sockets_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("kata-vm-{}-{nanos:x}", std::process::id()))
}

/// Retries connect + Check until the agent serves, QEMU exits, or the limit passes: every
/// [`RETRY_BOOTING`] while the kernel boots, every [`RETRY_STARTING`] once the agent has logged
/// on the console (watched every [`RETRY_STARTING`]).
async fn wait_ready(vm: &mut QemuVm) -> Result<AgentClient, QemuError> {
    let addr = vm.vsock_addr();
    let started = Instant::now();
    let mut last = String::from("no attempt");
    let mut tried: Option<Instant> = None;
    while started.elapsed() < READY_LIMIT && vm.exited().is_none() {
        let starting = vm.console().contains("\"pid\":\"1\"");
        if starting || tried.is_none_or(|t| t.elapsed() >= RETRY_BOOTING) {
            tried = Some(Instant::now());
            // Bounded as a whole: the backend may hold a connection, or a stream may never
            // answer.
            match tokio::time::timeout(ATTEMPT_LIMIT, attempt(&addr)).await {
                Ok(Ok(client)) => return Ok(client),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("no answer within {ATTEMPT_LIMIT:?}"),
            }
            tracing::debug!(attempt = %last, "agent not ready");
        }
        tokio::time::sleep(RETRY_STARTING).await;
    }
    let console = vm.console();
    let tail: Vec<&str> = console.lines().rev().take(30).collect();
    Err(QemuError::NotReady {
        seconds: started.elapsed().as_secs(),
        last,
        console: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    })
}

/// Why one connect + Check did not give a serving agent.
#[derive(Debug, thiserror::Error)]
enum NotServing {
    /// No connection to the agent's port.
    #[error("{0}")]
    Connect(#[from] ConnectError),
    /// Connected, but Check failed.
    #[error("Check: {0}")]
    Check(#[from] ttrpc::Error),
}

/// One connect + Check.
async fn attempt(addr: &str) -> Result<AgentClient, NotServing> {
    let client = AgentClient::connect_hybrid_vsock(addr, AGENT_PORT).await?;
    let request = agent_protos::health::CheckRequest::new();
    client
        .health
        .check(context(Duration::from_secs(5)), &request)
        .await?;
    Ok(client)
}
