//! `/dev` of a new container: the default devices and the spec's, by `mknod` (or by binding the
//! guest's node in a user namespace, where `mknod` is not allowed), and the standard links.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use nix::unistd::{Gid, Uid, chown};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::error::{Result, SetupError, Step};
use super::paths::{create_dirs, create_file, secure_join};

/// One device node to create.
struct Node {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
}

/// The devices every container gets (OCI runtime spec, "Default Devices").
const DEFAULTS: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// The standard links of `/dev`.
const LINKS: [(&str, &str); 4] = [
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
];

/// Creates the nodes and links under `rootfs/dev` (before the pivot). `bind` binds the guest's
/// nodes instead of `mknod` (user namespaces).
pub(super) fn create(rootfs: &Path, spec_devices: &[LinuxDevice], bind: bool) -> Result<()> {
    let dev = secure_join(rootfs, Path::new("/dev"))?;
    create_dirs(&dev).step(|| "create /dev".to_owned())?;
    let mut nodes: Vec<Node> = DEFAULTS
        .iter()
        .map(|&(path, major, minor)| Node {
            path: path.into(),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: None,
            gid: None,
        })
        .collect();
    for d in spec_devices {
        let node = spec_node(d)?;
        nodes.retain(|n| n.path != node.path);
        nodes.push(node);
    }
    for node in &nodes {
        let target = secure_join(rootfs, &node.path)?;
        let shown = node.path.display();
        if let Some(parent) = target.parent() {
            create_dirs(parent).step(|| format!("create the parent of {shown}"))?;
        }
        remove_non_dir(&target).step(|| format!("replace {shown}"))?;
        if bind {
            create_file(&target).step(|| format!("create {shown}"))?;
            mount(
                Some(&node.path),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .step(|| format!("bind device {shown}"))?;
        } else {
            let mode = Mode::from_bits_truncate(node.mode & 0o7777);
            mknod(&target, node.kind, mode, makedev(node.major, node.minor))
                .step(|| format!("mknod {shown}"))?;
            if node.uid.is_some() || node.gid.is_some() {
                chown(
                    &target,
                    node.uid.map(Uid::from_raw),
                    node.gid.map(Gid::from_raw),
                )
                .step(|| format!("chown {shown}"))?;
            }
        }
    }
    for (target, link) in LINKS {
        let at = secure_join(rootfs, Path::new(link))?;
        remove_non_dir(&at).step(|| format!("replace {link}"))?;
        symlink(target, &at).step(|| format!("link {link}"))?;
    }
    // /dev/ptmx is the devpts instance's own, when there is one.
    let pts = secure_join(rootfs, Path::new("/dev/pts/ptmx"))?;
    if pts.exists() {
        let at = secure_join(rootfs, Path::new("/dev/ptmx"))?;
        remove_non_dir(&at).step(|| "replace /dev/ptmx".to_owned())?;
        symlink("pts/ptmx", &at).step(|| "link /dev/ptmx".to_owned())?;
    }
    let shm = secure_join(rootfs, Path::new("/dev/shm"))?;
    create_dirs(&shm).step(|| "create /dev/shm".to_owned())?;
    Ok(())
}

fn spec_node(d: &LinuxDevice) -> Result<Node> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(SetupError::spec(format!(
                "device {}: type \"a\" is not a node type",
                d.path().display()
            )));
        }
    };
    let number = |n: i64, what: &str| {
        u64::try_from(n)
            .map_err(|_| SetupError::spec(format!("device {}: {what} {n}", d.path().display())))
    };
    if !d.path().is_absolute() || !d.path().starts_with("/dev") {
        return Err(SetupError::spec(format!(
            "device path {} is not under /dev",
            d.path().display()
        )));
    }
    Ok(Node {
        path: d.path().clone(),
        kind,
        major: number(d.major(), "major")?,
        minor: number(d.minor(), "minor")?,
        mode: d.file_mode().unwrap_or(0o666),
        uid: d.uid(),
        gid: d.gid(),
    })
}

/// Removes whatever non-directory is at `path`; a missing path is fine.
fn remove_non_dir(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Err(io::Error::from_raw_os_error(libc::EISDIR)),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
