//! The guest's initramfs: a busybox `/init` that loads the kernel modules (dependencies first)
//! and `exec`s the agent as PID 1, the agent's shared libraries (as `ldd` lists them), and a
//! busybox root filesystem bind-mounted at each container root the scenario names, where Kata
//! would have shared the container's rootfs from the host.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::QemuError;
use super::cpio::Cpio;
use super::kernel::{Kernel, run};
use super::modules::{GUEST_MODULES, load_order};

/// Where the agent lives in the guest.
const AGENT: &str = "/usr/bin/kata-agent";
/// Where the containers' busybox rootfs lives in the guest before it is bind-mounted.
const ROOTFS: &str = "/rootfs";
/// The busybox applets of the container rootfs.
const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "hostname", "ls", "sleep", "id", "true", "false", "head", "mkdir", "kill",
    "mount", "dd", "wc",
];

/// What goes into the initramfs.
#[derive(Clone, Debug)]
pub struct InitramfsSpec {
    /// The agent binary (release build).
    pub agent: PathBuf,
    /// A static busybox.
    pub busybox: PathBuf,
    /// Guest paths where a container rootfs must be found (`OCI.Root.Path` values).
    pub rootfs_paths: Vec<String>,
}

/// The static busybox of the host (Debian's busybox-static).
pub fn host_busybox() -> Result<PathBuf, QemuError> {
    ["/usr/bin/busybox", "/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| QemuError::Missing {
            what: "busybox (apt-get install busybox-static)".into(),
        })
}

/// Writes the initramfs of `spec` for `kernel` to `out`.
pub fn build(spec: &InitramfsSpec, kernel: &Kernel, out: &Path) -> Result<(), QemuError> {
    for path in &spec.rootfs_paths {
        if !path.starts_with("/run/") || path.contains("..") || path.contains(char::is_whitespace) {
            return Err(QemuError::Rootfs { path: path.clone() });
        }
    }
    let modules = load_order(&kernel.modules, GUEST_MODULES)?;
    let file = File::create(out).map_err(|e| QemuError::io(out, e))?;
    let mut cpio = Cpio::new(BufWriter::new(file));
    let io = |e| QemuError::io(out, e);
    let mut dirs = Dirs::default();
    for d in [
        "/bin", "/dev", "/etc", "/proc", "/sys", "/run", "/tmp", "/modules",
    ] {
        dirs.ensure(&mut cpio, d).map_err(io)?;
    }
    // Kata's guest images have one; the agent binds the sandbox's DNS over it.
    cpio.file("/etc/resolv.conf", 0o644, b"").map_err(io)?;
    let busybox = read(&spec.busybox)?;
    cpio.file("/bin/busybox", 0o755, &busybox).map_err(io)?;
    cpio.symlink("/bin/sh", "busybox").map_err(io)?;
    let mut names = Vec::new();
    for (i, module) in modules.iter().enumerate() {
        let name = format!("{i:02}-{}", file_name(module));
        cpio.file(&format!("/modules/{name}"), 0o644, &read(module)?)
            .map_err(io)?;
        names.push(name);
    }
    for lib in libraries(&spec.agent)? {
        let guest = lib.to_string_lossy().into_owned();
        if let Some((parent, _)) = guest.rsplit_once('/') {
            dirs.ensure(&mut cpio, parent).map_err(io)?;
        }
        cpio.file(&guest, 0o755, &read(&lib)?).map_err(io)?;
    }
    dirs.ensure(&mut cpio, "/usr/bin").map_err(io)?;
    cpio.file(AGENT, 0o755, &read(&spec.agent)?).map_err(io)?;
    container_rootfs(&mut cpio, &mut dirs, &busybox).map_err(io)?;
    cpio.file("/init", 0o755, init_script(&spec.rootfs_paths).as_bytes())
        .map_err(io)?;
    cpio.finish().map_err(io)?;
    tracing::info!(modules = ?names, out = %out.display(), "initramfs written");
    Ok(())
}

/// The `/init` script: modules, the container roots, then the agent as PID 1.
fn init_script(rootfs_paths: &[String]) -> String {
    let mut s = String::from("#!/bin/sh\nexport PATH=/bin\n");
    s.push_str("for m in /modules/*.ko; do busybox insmod \"$m\" || echo \"init: insmod $m failed\"; done\n");
    // The agent skips /run when it is already a tmpfs, so the bind mounts stay visible.
    s.push_str("busybox mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run\n");
    for path in rootfs_paths {
        s.push_str(&format!(
            "busybox mkdir -p {path} && busybox mount --bind {ROOTFS} {path}\n"
        ));
    }
    s.push_str(&format!("exec {AGENT}\n"));
    s
}

/// The busybox tree at [`ROOTFS`].
fn container_rootfs<W: std::io::Write>(
    cpio: &mut Cpio<W>,
    dirs: &mut Dirs,
    busybox: &[u8],
) -> std::io::Result<()> {
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
        dirs.ensure(cpio, &format!("{ROOTFS}/{d}"))?;
    }
    cpio.file(&format!("{ROOTFS}/bin/busybox"), 0o755, busybox)?;
    for applet in APPLETS {
        cpio.symlink(&format!("{ROOTFS}/bin/{applet}"), "busybox")?;
    }
    cpio.file(
        &format!("{ROOTFS}/etc/passwd"),
        0o644,
        b"root:x:0:0:root:/:/bin/sh\n",
    )
}

/// The shared libraries `ldd` lists for `binary` (none for a static one).
fn libraries(binary: &Path) -> Result<Vec<PathBuf>, QemuError> {
    let out = match run(Command::new("ldd").arg(binary)) {
        Ok(out) => out,
        // ldd fails on static binaries ("not a dynamic executable").
        Err(QemuError::Command { detail, .. }) if detail.contains("not a dynamic") => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    Ok(out
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.trim(),
                None => line,
            };
            let path = path.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

fn read(path: &Path) -> Result<Vec<u8>, QemuError> {
    std::fs::read(path).map_err(|e| QemuError::io(path, e))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The directories written so far, so each is written once, parents first.
#[derive(Default)]
struct Dirs(std::collections::BTreeSet<String>);

impl Dirs {
    fn ensure<W: std::io::Write>(&mut self, cpio: &mut Cpio<W>, dir: &str) -> std::io::Result<()> {
        let mut at = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            at.push('/');
            at.push_str(part);
            if self.0.insert(at.clone()) {
                let mode = if at == "/tmp" || at.ends_with("/tmp") {
                    0o1777
                } else {
                    0o755
                };
                cpio.dir(&at, mode)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_loads_modules_binds_roots_and_execs_the_agent() {
        let script = init_script(&["/run/kata-containers/shared/containers/c1/rootfs".into()]);
        let insmod = script.find("insmod").unwrap();
        let bind = script
            .find("mount --bind /rootfs /run/kata-containers/shared")
            .unwrap();
        let exec = script.find("exec /usr/bin/kata-agent").unwrap();
        assert!(insmod < bind && bind < exec, "{script}");
    }

    #[test]
    fn libraries_of_a_dynamic_binary_include_libc() {
        let libs = libraries(Path::new("/bin/sh")).unwrap();
        assert!(
            libs.iter().any(|l| l.to_string_lossy().contains("libc.so")),
            "{libs:?}"
        );
    }
}
