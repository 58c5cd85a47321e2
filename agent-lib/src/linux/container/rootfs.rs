//! The container's root: propagation, the spec's mounts and devices under it, createContainer
//! hooks, then `pivot_root` (or `MS_MOVE` + `chroot` on an initramfs guest root), masked and
//! read-only paths, and the read-only root.

use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::error::{Result, SetupError, Step};
use super::hooks::{self, HookState};
use super::namespaces::has;
use super::paths::{make_readonly, mask, remount_readonly};
use super::{devices, mounts};

/// The root path from the spec, which must be absolute (the agent made it so).
pub(super) fn root_path(spec: &Spec) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| SetupError::spec("the spec has no root"))?;
    let path = root.path();
    if !path.is_absolute() {
        return Err(SetupError::spec(format!(
            "root.path {} is not absolute",
            path.display()
        )));
    }
    path.canonicalize()
        .step(|| format!("rootfs {}", path.display()))
}

/// Builds the root and enters it. Runs in the helper's own mount namespace.
pub(super) fn set_up(spec: &Spec, no_pivot_root: bool, state: &HookState) -> Result<()> {
    let rootfs = root_path(spec)?;
    let linux = spec.linux().clone().unwrap_or_default();
    // Nothing done below may reach the guest's mounts.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .step(|| "make / rslave".to_owned())?;
    mount(
        Some(&rootfs),
        &rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .step(|| format!("bind the rootfs {} onto itself", rootfs.display()))?;
    let cgroup = linux.cgroups_path().clone().unwrap_or_default();
    mounts::mount_all(
        &rootfs,
        spec.mounts().as_deref().unwrap_or_default(),
        &cgroup,
    )?;
    let userns = has(spec, LinuxNamespaceType::User);
    devices::create(
        &rootfs,
        linux.devices().as_deref().unwrap_or_default(),
        userns,
    )?;
    if let Some(list) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().clone())
    {
        hooks::run("createContainer", &list, state)?;
    }
    // The guest's /dev/null, for the masked files: it is out of reach after the pivot.
    let masked = linux.masked_paths().clone().unwrap_or_default();
    let nulls = super::source::null_mounts(masked.len())?;
    if no_pivot_root {
        move_root(&rootfs)?;
    } else {
        pivot(&rootfs)?;
    }
    if let Some(prop) = linux.rootfs_propagation().as_deref() {
        let flags = mounts::parse_options(&[prop.to_owned()]).propagation;
        if flags.is_empty() {
            return Err(SetupError::spec(format!("rootfsPropagation {prop:?}")));
        }
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .step(|| format!("set the root propagation {prop}"))?;
    }
    mask(&masked, nulls)?;
    make_readonly(linux.readonly_paths().as_deref().unwrap_or_default())?;
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly() == Some(true))
    {
        remount_readonly(Path::new("/"), true, MsFlags::empty())?;
    }
    Ok(())
}

/// `pivot_root(rootfs, rootfs)`, then the old root (stacked under the new one) is detached.
fn pivot(rootfs: &Path) -> Result<()> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = open("/", flags, Mode::empty()).step(|| "open /".to_owned())?;
    let new = open(rootfs, flags, Mode::empty()).step(|| "open the rootfs".to_owned())?;
    fchdir(&new).step(|| "enter the rootfs".to_owned())?;
    pivot_root(".", ".").step(|| format!("pivot_root to {}", rootfs.display()))?;
    fchdir(&old).step(|| "enter the old root".to_owned())?;
    // The old root must not pass the unmount to the guest's mounts.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .step(|| "make the old root rslave".to_owned())?;
    umount2(".", MntFlags::MNT_DETACH).step(|| "detach the old root".to_owned())?;
    chdir("/").step(|| "chdir /".to_owned())
}

/// For an initramfs guest root, where `pivot_root` cannot work: move the rootfs over `/` and
/// chroot into it.
fn move_root(rootfs: &Path) -> Result<()> {
    chdir(rootfs).step(|| "enter the rootfs".to_owned())?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .step(|| "move the rootfs onto /".to_owned())?;
    chroot(".").step(|| "chroot into the rootfs".to_owned())?;
    chdir("/").step(|| "chdir /".to_owned())
}
