//! Boots a guest: `vhost-device-vsock` as the vsock backend (hybrid vsock on a unix socket),
//! then `qemu-system-x86_64` (q35 under TCG, memfd shared memory for vhost-user, PCIe root
//! ports for hotplug, a QMP socket, the serial console in a file).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::QemuError;

/// DIMM slots for memory hotplug.
const DIMM_SLOTS: u32 = 8;
/// The guest's vsock CID (only known to the vhost-device-vsock backend; nothing connects to it).
const GUEST_CID: &str = "3";

/// How to boot.
#[derive(Clone, Debug)]
pub struct LaunchSpec {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initramfs: PathBuf,
    /// Extra kernel command line (the agent's configuration).
    pub cmdline: String,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// The most memory DIMM hotplug may reach, in MiB (no DIMM slots when not above
    /// `memory_mib`).
    pub max_memory_mib: u32,
    /// Boot CPUs.
    pub cpus: u32,
    /// The most CPUs hotplug may reach.
    pub max_cpus: u32,
    /// Where the console and the logs go.
    pub workdir: PathBuf,
    /// Where the sockets go: a short path (a unix socket path has at most 107 bytes); removed
    /// with the guest.
    pub sockets: PathBuf,
    /// PCIe root ports for hotplug: `(id, slot on the root bus)`.
    pub root_ports: Vec<(String, u8)>,
    /// PCI-PCI bridges: `(id, slot on the root bus)`.
    pub bridges: Vec<(String, u8)>,
    /// Disks present at boot.
    pub cold_disks: Vec<ColdDisk>,
}

/// A virtio-blk disk on the QEMU command line (cold-plugged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColdDisk {
    /// Its device id.
    pub id: String,
    /// The bridge or root port it sits on.
    pub bus: String,
    /// Its slot there.
    pub slot: u8,
    /// The raw image file.
    pub image: PathBuf,
}

/// Makes `image`, a raw disk of `size` bytes holding an empty ext4.
pub fn ext4_image(image: &Path, size: u64) -> Result<(), QemuError> {
    let file = File::create(image).map_err(|e| QemuError::io(image, e))?;
    file.set_len(size).map_err(|e| QemuError::io(image, e))?;
    drop(file);
    super::kernel::run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(image)).map(drop)
}

/// A running guest; both processes are killed when it is dropped.
#[derive(Debug)]
pub struct QemuVm {
    vhost: Child,
    qemu: Child,
    workdir: PathBuf,
    sockets: PathBuf,
    /// When QEMU was started.
    pub started: Instant,
}

impl QemuVm {
    /// Starts the vsock backend and QEMU.
    pub fn start(spec: &LaunchSpec) -> Result<QemuVm, QemuError> {
        let dir = &spec.workdir;
        let socks = &spec.sockets;
        for d in [dir, socks] {
            std::fs::create_dir_all(d).map_err(|e| QemuError::io(d, e))?;
        }
        for name in ["vhost.sock", "vm.vsock", "qmp.sock"] {
            let _ = std::fs::remove_file(socks.join(name));
        }
        let mut vhost = spawn(
            Command::new("vhost-device-vsock")
                .arg("--guest-cid")
                .arg(GUEST_CID)
                .arg("--socket")
                .arg(socks.join("vhost.sock"))
                .arg("--uds-path")
                .arg(socks.join("vm.vsock"))
                .stdout(log(dir, "vhost.log")?)
                .stderr(log(dir, "vhost.log")?),
        )?;
        if let Err(e) = wait_for(&socks.join("vhost.sock"), Duration::from_secs(10)) {
            let _ = vhost.kill();
            let _ = vhost.wait();
            return Err(e);
        }
        let qemu = match spawn(
            Command::new("qemu-system-x86_64")
                .args(qemu_args(spec))
                .stdin(Stdio::null())
                .stdout(log(dir, "qemu.log")?)
                .stderr(log(dir, "qemu.log")?),
        ) {
            Ok(q) => q,
            Err(e) => {
                let _ = vhost.kill();
                let _ = vhost.wait();
                return Err(e);
            }
        };
        Ok(QemuVm {
            vhost,
            qemu,
            workdir: dir.clone(),
            sockets: socks.clone(),
            started: Instant::now(),
        })
    }

    /// The hybrid vsock socket, as `unix:///path`.
    pub fn vsock_addr(&self) -> String {
        format!("unix://{}", self.sockets.join("vm.vsock").display())
    }

    /// The folder of its sockets, logs and disk images.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// The QMP socket.
    pub fn qmp_path(&self) -> PathBuf {
        self.sockets.join("qmp.sock")
    }

    /// The guest's serial console so far.
    pub fn console(&self) -> String {
        std::fs::read_to_string(self.workdir.join("console.log")).unwrap_or_default()
    }

    /// Whether QEMU has exited (the guest powered off), with its status.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.qemu.try_wait().ok().flatten()
    }

    /// Waits up to `limit` for QEMU to exit on its own.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for QemuVm {
    fn drop(&mut self) {
        for child in [&mut self.qemu, &mut self.vhost] {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.sockets);
    }
}

/// QEMU's command line: the machine, then the boot (CPUs, memory, kernel, console, QMP,
/// vsock), then the PCI topology, then the cold-plugged disks.
fn qemu_args(spec: &LaunchSpec) -> Vec<String> {
    let mut args = machine_args();
    args.extend(boot_args(spec));
    args.extend(topology_args(spec));
    args.extend(cold_disk_args(spec));
    args
}

/// A q35 machine under single-threaded TCG, with nothing but what the other arguments add.
fn machine_args() -> Vec<String> {
    [
        "-machine",
        "q35,memory-backend=mem",
        // Multi-threaded TCG never brings a hot-added vCPU up (the guest's online write
        // hangs); single-threaded TCG does.
        "-accel",
        "tcg,thread=single",
        "-cpu",
        "max",
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-vga",
        "none",
        "-no-reboot",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// CPUs and memory (with hot-plug room), kernel, initramfs and command line, the serial
/// console to a file, QMP and the vhost-user vsock device.
fn boot_args(spec: &LaunchSpec) -> Vec<String> {
    let dir = spec.workdir.display();
    let socks = spec.sockets.display();
    let mem = spec.memory_mib;
    let memory = if spec.max_memory_mib > mem {
        format!("{mem}M,slots={DIMM_SLOTS},maxmem={}M", spec.max_memory_mib)
    } else {
        format!("{mem}M")
    };
    vec![
        "-smp".into(),
        format!("{},maxcpus={}", spec.cpus, spec.max_cpus.max(spec.cpus)),
        "-m".into(),
        memory,
        "-object".into(),
        format!("memory-backend-memfd,id=mem,size={mem}M,share=on"),
        "-kernel".into(),
        spec.kernel.display().to_string(),
        "-initrd".into(),
        spec.initramfs.display().to_string(),
        "-append".into(),
        format!("console=ttyS0 panic=-1 {}", spec.cmdline)
            .trim()
            .to_owned(),
        "-serial".into(),
        format!("file:{dir}/console.log"),
        "-qmp".into(),
        format!("unix:{socks}/qmp.sock,server=on,wait=off"),
        "-chardev".into(),
        format!("socket,id=vc,path={socks}/vhost.sock"),
        "-device".into(),
        "vhost-user-vsock-pci,chardev=vc".into(),
    ]
}

/// The PCIe root ports, then the PCI bridges, numbered on from them.
fn topology_args(spec: &LaunchSpec) -> Vec<String> {
    let mut args = Vec::new();
    for (n, (id, slot)) in (1..).zip(&spec.root_ports) {
        args.push("-device".into());
        args.push(format!(
            "pcie-root-port,id={id},chassis={n},slot={n},bus=pcie.0,addr=0x{slot:x}"
        ));
    }
    let first_chassis = spec.root_ports.len() + 1;
    for (n, (id, slot)) in (first_chassis..).zip(&spec.bridges) {
        args.push("-device".into());
        args.push(format!(
            "pci-bridge,id={id},chassis_nr={n},bus=pcie.0,addr=0x{slot:x}"
        ));
    }
    args
}

/// A raw block node and a virtio-blk device for each disk present at boot.
fn cold_disk_args(spec: &LaunchSpec) -> Vec<String> {
    let mut args = Vec::new();
    for disk in &spec.cold_disks {
        let ColdDisk {
            id,
            bus,
            slot,
            image,
        } = disk;
        args.extend([
            "-blockdev".into(),
            format!(
                "driver=raw,node-name=drive-{id},file.driver=file,file.filename={}",
                image.display()
            ),
            "-device".into(),
            format!("virtio-blk-pci,id={id},drive=drive-{id},bus={bus},addr=0x{slot:x}"),
        ]);
    }
    args
}

fn spawn(command: &mut Command) -> Result<Child, QemuError> {
    command.spawn().map_err(|source| QemuError::Spawn {
        program: command.get_program().to_string_lossy().into_owned(),
        source,
    })
}

fn log(dir: &Path, name: &str) -> Result<File, QemuError> {
    let path = dir.join(name);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| QemuError::io(&path, e))
}

fn wait_for(path: &Path, limit: Duration) -> Result<(), QemuError> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if path.exists() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(QemuError::Missing {
        what: format!("{} after {limit:?}", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_place_root_ports_and_share_memory() {
        let spec = LaunchSpec {
            kernel: "/k".into(),
            initramfs: "/i".into(),
            cmdline: "agent.log=debug".into(),
            memory_mib: 1024,
            max_memory_mib: 4096,
            cpus: 1,
            max_cpus: 4,
            workdir: "/w".into(),
            sockets: "/s".into(),
            root_ports: vec![("rp1".into(), 5), ("rp2".into(), 6)],
            bridges: vec![("br0".into(), 7)],
            cold_disks: vec![ColdDisk {
                id: "blk1".into(),
                bus: "br0".into(),
                slot: 1,
                image: "/w/blk1.img".into(),
            }],
        };
        let args = qemu_args(&spec).join(" ");
        assert!(args.contains("memory-backend-memfd,id=mem,size=1024M,share=on"));
        assert!(args.contains("pcie-root-port,id=rp1,chassis=1,slot=1,bus=pcie.0,addr=0x5"));
        assert!(args.contains("pcie-root-port,id=rp2,chassis=2,slot=2,bus=pcie.0,addr=0x6"));
        assert!(
            args.contains("pci-bridge,id=br0,chassis_nr=3,bus=pcie.0,addr=0x7"),
            "{args}"
        );
        assert!(args.contains(
            "-blockdev driver=raw,node-name=drive-blk1,file.driver=file,file.filename=/w/blk1.img"
        ));
        assert!(args.contains("virtio-blk-pci,id=blk1,drive=drive-blk1,bus=br0,addr=0x1"));
        assert!(args.contains("-append console=ttyS0 panic=-1 agent.log=debug"));
        assert!(args.contains("-smp 1,maxcpus=4"), "{args}");
        assert!(args.contains("-m 1024M,slots=8,maxmem=4096M"), "{args}");
        assert!(args.contains("vhost-user-vsock-pci,chardev=vc"));
        assert!(args.contains("socket,id=vc,path=/s/vhost.sock"));
        assert!(args.contains("file:/w/console.log"));
    }
}
