//! The process's security labels for its next execve, as runc sets them: the SELinux label
//! written to `attr/exec`, the AppArmor profile as `exec <profile>` to `attr/apparmor/exec`
//! (or, on kernels without the per-LSM folder, `attr/exec`). The agent has checked that the
//! LSM is enabled; a write the kernel refuses is an error naming the label.

use std::io::{self, Write};
use std::path::Path;

use oci_spec::runtime::Process;

use super::error::{Result, Step};

/// The calling thread's LSM attributes.
const ATTR: &str = "/proc/thread-self/attr";

/// Sets the labels `process` asks for on the calling thread, for its next execve.
pub(super) fn set_exec_labels(process: &Process) -> Result<()> {
    let selinux = process.selinux_label().as_deref().filter(|l| !l.is_empty());
    let apparmor = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty());
    if let Some(label) = selinux {
        write_selinux(Path::new(ATTR), label)
            .step(|| format!("set the SELinux exec label {label:?}"))?;
    }
    if let Some(profile) = apparmor {
        write_apparmor(Path::new(ATTR), profile)
            .step(|| format!("set the AppArmor exec profile {profile:?}"))?;
    }
    Ok(())
}

/// Writes an SELinux exec label into the attribute folder `attr`.
pub(crate) fn write_selinux(attr: &Path, label: &str) -> io::Result<()> {
    write_attr(&attr.join("exec"), label.as_bytes())
}

/// Writes an AppArmor exec profile into the attribute folder `attr`.
pub(crate) fn write_apparmor(attr: &Path, profile: &str) -> io::Result<()> {
    let own = attr.join("apparmor/exec");
    let path = if own.exists() { own } else { attr.join("exec") };
    write_attr(&path, format!("exec {profile}").as_bytes())
}

/// One write(2) of the whole value to an existing attribute file, as the kernel expects.
fn write_attr(path: &Path, value: &[u8]) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    let n = file.write(value)?;
    if n != value.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write to {}", path.display()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake attribute folder: `exec`, and `apparmor/exec` when `per_lsm`.
    fn attr_dir(per_lsm: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("exec"), "").unwrap();
        if per_lsm {
            std::fs::create_dir(dir.path().join("apparmor")).unwrap();
            std::fs::write(dir.path().join("apparmor/exec"), "").unwrap();
        }
        dir
    }

    fn read(dir: &tempfile::TempDir, name: &str) -> String {
        std::fs::read_to_string(dir.path().join(name)).unwrap()
    }

    #[test]
    fn selinux_labels_go_to_exec() {
        let dir = attr_dir(true);
        write_selinux(dir.path(), "system_u:system_r:container_t:s0:c1,c2").unwrap();
        assert_eq!(read(&dir, "exec"), "system_u:system_r:container_t:s0:c1,c2");
        assert_eq!(read(&dir, "apparmor/exec"), "");
    }

    #[test]
    fn apparmor_profiles_prefer_their_own_folder() {
        let dir = attr_dir(true);
        write_apparmor(dir.path(), "cri-containerd.apparmor.d").unwrap();
        assert_eq!(
            read(&dir, "apparmor/exec"),
            "exec cri-containerd.apparmor.d"
        );
        assert_eq!(read(&dir, "exec"), "");
        let old = attr_dir(false);
        write_apparmor(old.path(), "docker-default").unwrap();
        assert_eq!(read(&old, "exec"), "exec docker-default");
    }

    #[test]
    fn a_missing_attribute_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_selinux(dir.path(), "a_u:b_r:c_t:s0").is_err());
    }

    /// On a kernel without SELinux and AppArmor (this machine), the kernel refuses the write:
    /// the helper fails instead of running the program unconfined.
    #[test]
    fn without_the_lsm_the_kernel_refuses_the_label() {
        let lsm_on = Path::new("/sys/fs/selinux/enforce").exists()
            || Path::new("/sys/kernel/security/apparmor").exists()
            || Path::new("/sys/module/apparmor").exists();
        if lsm_on {
            eprintln!("skipped: an LSM is enabled here; writing would label this test thread");
            return;
        }
        let attr = Path::new(ATTR);
        assert!(write_selinux(attr, "system_u:system_r:container_t:s0").is_err());
        assert!(write_apparmor(attr, "docker-default").is_err());
    }
}
