//! Namespaces in the helper: joining the spec's paths, creating the others; and what depends on
//! them: hostname and sysctls.

use std::fs::File;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::sched::{CloneFlags, setns, unshare};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};

use super::error::{Result, SetupError, Step};

/// The clone flag of a namespace type.
fn flag(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // nix has no constant for CLONE_NEWTIME.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

fn namespaces(spec: &Spec) -> Vec<LinuxNamespace> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
}

/// Whether the spec lists a namespace of this type (new or joined).
pub(super) fn has(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    namespaces(spec).iter().any(|ns| ns.typ() == typ)
}

/// Whether the spec asks for a new cgroup namespace (created after `Go`, once the agent has put
/// the process into its cgroup, so that the namespace is rooted there).
pub(super) fn wants_new_cgroupns(spec: &Spec) -> bool {
    namespaces(spec)
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::Cgroup && ns.path().is_none())
}

/// Joins the spec's namespace paths (the user namespace first) and creates the remaining new
/// ones, except pid and user (made by the agent's `clone`) and cgroup (see
/// [`wants_new_cgroupns`]).
pub(super) fn enter_init(spec: &Spec) -> Result<()> {
    let list = namespaces(spec);
    let mut joins: Vec<&LinuxNamespace> = list
        .iter()
        .filter(|ns| ns.path().is_some() && ns.typ() != LinuxNamespaceType::Pid)
        .collect();
    joins.sort_by_key(|ns| ns.typ() != LinuxNamespaceType::User);
    for ns in joins {
        let path = ns.path().as_deref().unwrap_or(Path::new(""));
        let file = File::open(path).step(|| format!("open namespace {}", path.display()))?;
        setns(file.as_fd(), flag(ns.typ()))
            .step(|| format!("join the {} namespace {}", ns.typ(), path.display()))?;
    }
    let mut new = CloneFlags::empty();
    for ns in list.iter().filter(|ns| ns.path().is_none()) {
        match ns.typ() {
            LinuxNamespaceType::Pid | LinuxNamespaceType::User | LinuxNamespaceType::Cgroup => {}
            LinuxNamespaceType::Time => {
                return Err(SetupError::spec("time namespaces are not supported"));
            }
            typ => new |= flag(typ),
        }
    }
    if !new.is_empty() {
        unshare(new).step(|| format!("unshare namespaces {new:?}"))?;
    }
    Ok(())
}

/// Creates the cgroup namespace.
pub(super) fn unshare_cgroupns() -> Result<()> {
    unshare(CloneFlags::CLONE_NEWCGROUP).step(|| "unshare the cgroup namespace".to_owned())
}

/// Sets the hostname and domain name the spec gives.
pub(super) fn set_names(spec: &Spec) -> Result<()> {
    if let Some(name) = spec.hostname().as_deref().filter(|n| !n.is_empty()) {
        nix::unistd::sethostname(name).step(|| format!("set the hostname {name}"))?;
    }
    if let Some(name) = spec.domainname().as_deref().filter(|n| !n.is_empty()) {
        // SAFETY: setdomainname reads `len` bytes of the string.
        let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
        if ret < 0 {
            return Err(std::io::Error::last_os_error())
                .step(|| format!("set the domain name {name}"));
        }
    }
    Ok(())
}

/// Writes the spec's sysctls (before the pivot, through the guest's /proc, which shows the
/// helper's new namespaces). Only namespaced keys are allowed, and only when the spec gives the
/// container its own namespace of that kind: anything else would change the whole guest.
pub(super) fn apply_sysctls(spec: &Spec) -> Result<()> {
    let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().clone()) else {
        return Ok(());
    };
    let mut keys: Vec<_> = sysctls.keys().collect();
    keys.sort();
    for key in keys {
        let ns = namespace_of(key)
            .ok_or_else(|| SetupError::spec(format!("sysctl {key} is not namespaced: refused")))?;
        if !has(spec, ns) {
            return Err(SetupError::spec(format!(
                "sysctl {key} needs the container's own {ns} namespace"
            )));
        }
        if key.contains('/') || key.split('.').any(|p| p.is_empty() || p == "..") {
            return Err(SetupError::spec(format!("sysctl key {key:?} is invalid")));
        }
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, &sysctls[key]).step(|| format!("set sysctl {key}"))?;
    }
    Ok(())
}

/// The namespace a sysctl belongs to, if it is namespaced.
fn namespace_of(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// Takes ownership of an inherited descriptor number, if it is open.
pub(super) fn inherited(fd: i32) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only inspects the descriptor table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the agent handed this descriptor to the helper; nothing else owns it here.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: F_SETFD on a descriptor we own.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    Some(owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespaced_sysctls_are_allowed() {
        assert_eq!(
            namespace_of("net.ipv4.ip_forward"),
            Some(LinuxNamespaceType::Network)
        );
        assert_eq!(namespace_of("kernel.shmmax"), Some(LinuxNamespaceType::Ipc));
        assert_eq!(
            namespace_of("fs.mqueue.msg_max"),
            Some(LinuxNamespaceType::Ipc)
        );
        assert_eq!(namespace_of("kernel.panic"), None);
        assert_eq!(namespace_of("vm.overcommit_memory"), None);
    }
}
