//! The guest kernel: Debian's `linux-image-*-cloud-amd64`, fetched with `apt-get download`
//! and unpacked with `dpkg -x` into a cache folder, reused by later runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::QemuError;

/// The meta package whose dependency names the current cloud kernel.
const META_PACKAGE: &str = "linux-image-cloud-amd64";

/// An unpacked kernel package.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// The bootable image.
    pub vmlinuz: PathBuf,
    /// `lib/modules/<release>`.
    pub modules: PathBuf,
    /// The kernel release, e.g. `6.1.0-57-cloud-amd64`.
    pub release: String,
}

impl Kernel {
    /// The kernel unpacked under `cache`, fetched first if it is not there yet.
    pub fn fetch(cache: &Path) -> Result<Kernel, QemuError> {
        let root = cache.join("kernel");
        if let Some(kernel) = Self::unpacked(&root)? {
            return Ok(kernel);
        }
        std::fs::create_dir_all(cache).map_err(|e| QemuError::io(cache, e))?;
        let package = package_name()?;
        tracing::info!(%package, "downloading the guest kernel");
        run(Command::new("apt-get")
            .args(["download", "-q", &package])
            .current_dir(cache))?;
        let deb = find_deb(cache, &package)?;
        let staging = cache.join("kernel.tmp");
        let _ = std::fs::remove_dir_all(&staging);
        run(Command::new("dpkg").arg("-x").arg(&deb).arg(&staging))?;
        std::fs::rename(&staging, &root).map_err(|e| QemuError::io(&root, e))?;
        let _ = std::fs::remove_file(&deb);
        Self::unpacked(&root)?.ok_or_else(|| QemuError::Kernel {
            detail: format!("{} holds no boot/vmlinuz-*", deb.display()),
        })
    }

    fn unpacked(root: &Path) -> Result<Option<Kernel>, QemuError> {
        let boot = root.join("boot");
        let Ok(entries) = std::fs::read_dir(&boot) else {
            return Ok(None);
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(release) = name.strip_prefix("vmlinuz-") {
                let modules = root.join("lib/modules").join(release);
                if !modules.is_dir() {
                    return Err(QemuError::Kernel {
                        detail: format!("{} has no modules folder", root.display()),
                    });
                }
                return Ok(Some(Kernel {
                    vmlinuz: entry.path(),
                    modules,
                    release: release.to_owned(),
                }));
            }
        }
        Ok(None)
    }
}

/// `HARNESS_KERNEL_PACKAGE`, or the package the meta package depends on.
fn package_name() -> Result<String, QemuError> {
    if let Ok(name) = std::env::var("HARNESS_KERNEL_PACKAGE") {
        return Ok(name);
    }
    let out = run(Command::new("apt-cache").args(["depends", META_PACKAGE]))?;
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_owned)
        .ok_or_else(|| QemuError::Kernel {
            detail: format!("apt-cache names no kernel for {META_PACKAGE} (apt-get update?)"),
        })
}

fn find_deb(dir: &Path, package: &str) -> Result<PathBuf, QemuError> {
    let entries = std::fs::read_dir(dir).map_err(|e| QemuError::io(dir, e))?;
    entries
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
        })
        .ok_or_else(|| QemuError::Kernel {
            detail: format!("apt-get download left no {package}_*.deb"),
        })
}

/// Runs a command to completion; its stdout, or an error with its stderr.
pub(crate) fn run(command: &mut Command) -> Result<String, QemuError> {
    let shown = format!("{command:?}");
    let out = command.output().map_err(|source| QemuError::Spawn {
        program: shown.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(QemuError::Command {
            command: shown,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
