//! The agent's rewrites of a container's OCI spec before it is launched.

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{Hook, Hooks, LinuxNamespace, LinuxNamespaceType, Spec};

use super::ContainerError;
use crate::sandbox::SharedNamespaces;

/// The container's cgroup, relative to the hierarchy root: `linux.cgroupsPath` made absolute
/// (a systemd-style `slice:prefix:name` becomes `/slice/prefix/name`, as Kata does when the
/// agent manages cgroupfs itself), or `/<cid>` when the spec has none (Kata's default).
pub(crate) fn cgroup_path(cid: &str, spec: &Spec) -> Result<String, ContainerError> {
    let raw = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    if raw.is_empty() {
        return Ok(format!("/{cid}"));
    }
    let raw = raw.replace(':', "/");
    let mut out = String::new();
    for part in Path::new(&raw).components() {
        match part {
            Component::RootDir => {}
            Component::Normal(name) => {
                out.push('/');
                out.push_str(&name.to_string_lossy());
            }
            Component::CurDir | Component::ParentDir | Component::Prefix(_) => {
                return Err(ContainerError::InvalidSpec(format!(
                    "linux.cgroupsPath {raw:?} must not contain '.' or '..'"
                )));
            }
        }
    }
    if out.is_empty() || raw.contains('\0') {
        return Err(ContainerError::InvalidSpec(format!(
            "linux.cgroupsPath {raw:?} names no cgroup"
        )));
    }
    Ok(out)
}

/// Normalises each `linux.devices[i].path` lexically (`.` dropped, `..` applied) and refuses
/// one that is not then strictly below `/dev` (`/dev/../bin/sh` would replace the rootfs's
/// shell with a device node).
pub(crate) fn normalize_device_paths(spec: &mut Spec) -> Result<(), ContainerError> {
    let Some(devices) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.devices_mut().as_mut())
    else {
        return Ok(());
    };
    for (i, device) in devices.iter_mut().enumerate() {
        let raw = device.path().clone();
        let mut normal = PathBuf::new();
        for part in raw.components() {
            match part {
                Component::RootDir => normal.push("/"),
                Component::Normal(name) => normal.push(name),
                Component::ParentDir => {
                    normal.pop();
                }
                Component::CurDir | Component::Prefix(_) => {}
            }
        }
        let below_dev =
            raw.is_absolute() && normal.starts_with("/dev") && normal.components().count() > 2;
        if !below_dev {
            return Err(ContainerError::InvalidSpec(format!(
                "linux.devices[{i}].path {raw:?} is not below /dev"
            )));
        }
        device.set_path(normal);
    }
    Ok(())
}

/// Points the spec's IPC and UTS namespaces at the sandbox's shared ones and sets its pid
/// namespace: the sandbox's when `sandbox_pidns` is asked (the first container creates it), a
/// new one otherwise. As in Kata, namespaces the spec does not list are not added (but the pid
/// one always is).
pub(crate) fn join_shared_namespaces(
    spec: &mut Spec,
    shared: &SharedNamespaces,
    sandbox_pidns: bool,
    first_container: bool,
) -> Result<(), ContainerError> {
    let pid_path = match (sandbox_pidns, &shared.pid) {
        (false, _) => None,
        (true, Some(path)) => Some(path.clone()),
        (true, None) if first_container => None,
        (true, None) => {
            return Err(ContainerError::InvalidSpec(
                "sandbox_pidns asked but the sandbox has no pid namespace".into(),
            ));
        }
    };
    let linux = spec
        .linux_mut()
        .as_mut()
        .ok_or_else(|| ContainerError::InvalidSpec("the spec has no linux section".into()))?;
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    namespaces.retain(|ns| ns.typ() != LinuxNamespaceType::Pid);
    for ns in &mut namespaces {
        match ns.typ() {
            LinuxNamespaceType::Ipc => {
                ns.set_path(shared.ipc.clone());
            }
            LinuxNamespaceType::Uts => {
                ns.set_path(shared.uts.clone());
            }
            _ => {}
        }
    }
    let mut pid = LinuxNamespace::default();
    pid.set_typ(LinuxNamespaceType::Pid);
    pid.set_path(pid_path);
    namespaces.push(pid);
    linux.set_namespaces(Some(namespaces));
    Ok(())
}

/// Adds the sandbox's guest hooks after the spec's own, kind by kind. (Kata appends guest
/// prestart hooks to *poststart* when the spec has hooks; this agent keeps them prestart.)
pub(crate) fn append_guest_hooks(spec: &mut Spec, guest: Option<&Hooks>) {
    let Some(guest) = guest else { return };
    let mut hooks = spec.hooks().clone().unwrap_or_default();
    let merge = |own: &Option<Vec<Hook>>, extra: &Option<Vec<Hook>>| -> Option<Vec<Hook>> {
        let all: Vec<Hook> = own.iter().chain(extra).flatten().cloned().collect();
        (!all.is_empty()).then_some(all)
    };
    hooks.set_prestart(merge(hooks.prestart(), guest.prestart()));
    hooks.set_poststart(merge(hooks.poststart(), guest.poststart()));
    hooks.set_poststop(merge(hooks.poststop(), guest.poststop()));
    spec.set_hooks(Some(hooks));
}
