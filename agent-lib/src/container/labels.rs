//! Security labels: `process.selinuxLabel`, `process.apparmorProfile` and
//! `linux.mountLabel`, used only when the guest kernel has that LSM, refused otherwise.
//!
//! Kata and runc refuse an SELinux process label without SELinux; this agent refuses every
//! label whose LSM is absent, rather than run the container unconfined. The process labels are
//! written by the container setup helper just before its program runs (`/proc/thread-self/attr`,
//! as runc); the mount label is added here as `context="..."` to the spec's mounts that take
//! one (runc and Kata skip proc, sysfs, mqueue and cgroup filesystems, and bind mounts).

use std::path::Path;

use oci_spec::runtime::{Process as OciProcess, Spec};

use super::ContainerError;
use crate::host::Sysfs;

/// The LSMs securityfs lists as active.
const LSM_LIST: &str = "/sys/kernel/security/lsm";
/// Present when selinuxfs is mounted (SELinux enabled).
const SELINUX_FS: &str = "/sys/fs/selinux/enforce";
/// AppArmor's securityfs folder.
const APPARMOR_FS: &str = "/sys/kernel/security/apparmor";
/// `Y` when AppArmor is enabled.
const APPARMOR_PARAM: &str = "/sys/module/apparmor/parameters/enabled";
/// Filesystem types that take no `context=` option.
const UNLABELED: [&str; 5] = ["proc", "sysfs", "mqueue", "cgroup", "cgroup2"];

/// Which LSMs the guest kernel has enabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lsms {
    /// SELinux.
    pub selinux: bool,
    /// AppArmor.
    pub apparmor: bool,
}

impl Lsms {
    /// Reads what the guest kernel reports: the securityfs list, else selinuxfs and AppArmor's
    /// securityfs folder or module parameter.
    pub fn detect(sysfs: &dyn Sysfs) -> Lsms {
        let list = sysfs.read_string(Path::new(LSM_LIST)).unwrap_or_default();
        let listed = |name: &str| list.split(',').any(|l| l.trim() == name);
        let apparmor_param = sysfs
            .read_string(Path::new(APPARMOR_PARAM))
            .is_ok_and(|v| v.starts_with('Y'));
        Lsms {
            selinux: listed("selinux") || sysfs.exists(Path::new(SELINUX_FS)),
            apparmor: listed("apparmor") || sysfs.exists(Path::new(APPARMOR_FS)) || apparmor_param,
        }
    }
}

fn label(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn missing(field: &'static str, value: &str, lsm: &'static str) -> ContainerError {
    ContainerError::LsmMissing {
        field,
        value: value.to_owned(),
        lsm,
    }
}

/// Refuses a process label whose LSM the guest lacks (the kernel is asked only when a label
/// is set).
pub fn check_process(process: &OciProcess, sysfs: &dyn Sysfs) -> Result<(), ContainerError> {
    let selinux = label(process.selinux_label());
    let apparmor = label(process.apparmor_profile());
    if selinux.is_none() && apparmor.is_none() {
        return Ok(());
    }
    let lsms = Lsms::detect(sysfs);
    if let Some(l) = selinux
        && !lsms.selinux
    {
        return Err(missing("process.selinuxLabel", l, "SELinux"));
    }
    if let Some(p) = apparmor
        && !lsms.apparmor
    {
        return Err(missing("process.apparmorProfile", p, "AppArmor"));
    }
    Ok(())
}

/// Checks the spec's labels and adds the mount label to the mounts that take one.
pub fn apply_labels(spec: &mut Spec, sysfs: &dyn Sysfs) -> Result<(), ContainerError> {
    if let Some(process) = spec.process() {
        check_process(process, sysfs)?;
    }
    let Some(mount_label) = spec
        .linux()
        .as_ref()
        .and_then(|l| label(l.mount_label()).map(str::to_owned))
    else {
        return Ok(());
    };
    if !Lsms::detect(sysfs).selinux {
        return Err(missing("linux.mountLabel", &mount_label, "SELinux"));
    }
    if mount_label.contains('"') || mount_label.contains(',') {
        return Err(ContainerError::InvalidSpec(format!(
            "linux.mountLabel {mount_label:?} contains a quote or a comma"
        )));
    }
    let Some(mounts) = spec.mounts_mut() else {
        return Ok(());
    };
    for m in mounts.iter_mut() {
        let options = m.options().clone().unwrap_or_default();
        let bind = options.iter().any(|o| o == "bind" || o == "rbind");
        let typ = m.typ().as_deref().unwrap_or_default();
        if bind || typ == "bind" || UNLABELED.contains(&typ) {
            continue;
        }
        let mut options = options;
        options.push(format!("context=\"{mount_label}\""));
        m.set_options(Some(options));
    }
    Ok(())
}
