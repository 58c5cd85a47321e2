//! `/dev` of a new container: the default devices and the spec's, by `mknod` (or by binding the
//! guest's node in a user namespace, where `mknod` is not allowed), and the standard links; all
//! fd-relative below the rootfs's `/dev`, never through a symlink, undone on failure.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sys::stat::{SFlag, makedev};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::beneath::{self, Made, below_dev};
use super::error::{Result, SetupError, Step};

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

/// The standard links of `/dev`: target, name in `/dev`.
const LINKS: [(&str, &str); 4] = [
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
];

/// Creates the nodes and links under `rootfs/dev` (before the pivot). `bind` binds the guest's
/// nodes instead of `mknod` (user namespaces). Every path is walked from a descriptor of the
/// rootfs without following a symlink and must stay below `/dev`; on failure everything this
/// call made is removed again.
pub(super) fn create(rootfs: &Path, spec_devices: &[LinuxDevice], bind: bool) -> Result<()> {
    let root = beneath::open_root(rootfs)?;
    let mut made = Made::default();
    let result = create_below(root.as_fd(), spec_devices, bind, &mut made);
    if result.is_err() {
        made.undo();
    }
    result
}

fn create_below(
    root: BorrowedFd<'_>,
    spec_devices: &[LinuxDevice],
    bind: bool,
    made: &mut Made,
) -> Result<()> {
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
    let dev = beneath::dirs(root, &[OsString::from("dev")], made, "/")?;
    for node in &nodes {
        let shown = node.path.display();
        let mut components = below_dev(&node.path)?;
        let name = components.pop().unwrap_or_default();
        let parent = beneath::dirs(dev.as_fd(), &components, made, "/dev")?;
        beneath::remove_non_dir(parent.as_fd(), &name).step(|| format!("replace {shown}"))?;
        if bind {
            beneath::bind_file(parent.as_fd(), &name, &node.path, made)
                .step(|| format!("bind device {shown}"))?;
        } else {
            let owner = (node.uid, node.gid);
            let number = makedev(node.major, node.minor);
            beneath::node(
                parent.as_fd(),
                &name,
                node.kind,
                node.mode,
                number,
                owner,
                made,
            )
            .step(|| format!("mknod {shown}"))?;
        }
    }
    let mut links: Vec<(&str, &str)> = LINKS.to_vec();
    // /dev/ptmx is the devpts instance's own, when there is one.
    if beneath::exists(dev.as_fd(), "pts/ptmx") {
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        let name = OsStr::new(name);
        beneath::remove_non_dir(dev.as_fd(), name).step(|| format!("replace /dev/{target}"))?;
        beneath::link(dev.as_fd(), name, target, made).step(|| format!("link /dev/{target}"))?;
    }
    beneath::dirs(dev.as_fd(), &[OsString::from("shm")], made, "/dev")?;
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
    below_dev(d.path())?;
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
