//! The spec's mounts, done under the new root before the pivot: bind (files and directories),
//! proc, sysfs, tmpfs, mqueue, devpts, cgroup ([`super::cgroup_mount`]), and anything else by type; mount options to
//! flags, propagation and data; read-only bind mounts done as bind + remount.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::mount::{MsFlags, mount};
use oci_spec::runtime::Mount;

use super::beneath::open_root;
use super::error::{Result, SetupError, Step};
use super::in_root::{Want, fd_path, open_in_root};
use super::new_mount::{attach, clone_tree, new_fs, set_flags};
use super::source::open_source;

/// A mount's options, split into what `mount(2)` takes.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Options {
    /// Flags for the mount itself.
    pub(super) flags: MsFlags,
    /// A propagation change applied after the mount (`rprivate`, `shared`...).
    pub(super) propagation: MsFlags,
    /// Filesystem-specific options, joined with commas for the data argument.
    pub(super) data: Vec<String>,
}

impl Options {
    fn bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

/// Splits OCI mount options into flags, propagation and data.
pub(super) fn parse_options(options: &[String]) -> Options {
    let mut out = Options {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: Vec::new(),
    };
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            other => {
                let propagation = match other {
                    "private" => MsFlags::MS_PRIVATE,
                    "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                    "shared" => MsFlags::MS_SHARED,
                    "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
                    "slave" => MsFlags::MS_SLAVE,
                    "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
                    "unbindable" => MsFlags::MS_UNBINDABLE,
                    "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
                    _ => {
                        out.data.push(other.to_owned());
                        continue;
                    }
                };
                out.propagation = propagation;
                continue;
            }
        };
        out.flags = (out.flags | set) & !clear;
    }
    out
}

/// Does every mount of the spec under `rootfs` (still the agent's view of it, before the pivot);
/// `cgroup` is the container's cgroup, for a `cgroup` mount. Each target is opened once inside
/// the root ([`open_in_root`]) and mounted onto through its descriptor.
pub(super) fn mount_all(rootfs: &Path, mounts: &[Mount], cgroup: &Path) -> Result<()> {
    let root = open_root(rootfs)?;
    for m in mounts {
        mount_one(root.as_fd(), m, cgroup)?;
    }
    Ok(())
}

fn mount_one(root: BorrowedFd<'_>, m: &Mount, cgroup: &Path) -> Result<()> {
    let typ = m.typ().as_deref().unwrap_or("");
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let shown = m.destination().display().to_string();
    let mounted = if opts.bind() || typ == "bind" {
        bind(root, m, &opts, &shown)?
    } else if typ == "cgroup" {
        let target = open_in_root(root, m.destination(), Want::Dir)?;
        let flags = cgroup_flags(m.options().as_deref().unwrap_or_default(), opts.flags);
        super::cgroup_mount::mount_cgroup(target.as_fd(), &shown, flags, cgroup)?
    } else {
        let target = open_in_root(root, m.destination(), Want::Dir)?;
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.to_owned());
        let tree = new_fs(typ, &source, &opts.data, opts.flags, &shown)?;
        attach(tree.as_fd(), target.as_fd(), &shown)?;
        tree
    };
    if !opts.propagation.is_empty() {
        mount(
            None::<&str>,
            &fd_path(&mounted),
            None::<&str>,
            opts.propagation,
            None::<&str>,
        )
        .step(|| format!("set the propagation of {shown}"))?;
    }
    Ok(())
}

/// The flags of a `cgroup` mount: read-only unless the options end with `rw` (the last of `ro`
/// and `rw` wins, as for any mount; saying neither is read-only).
fn cgroup_flags(options: &[String], flags: MsFlags) -> MsFlags {
    let last = options.iter().rev().find(|o| *o == "ro" || *o == "rw");
    if last.is_some_and(|o| o == "rw") {
        flags
    } else {
        flags | MsFlags::MS_RDONLY
    }
}

/// A bind mount; returns the descriptor of the new mount. The source is opened once
/// ([`open_source`]: no symlink followed), cloned and given its flags detached, then attached
/// onto the target's descriptor: neither path is looked up again.
fn bind(root: BorrowedFd<'_>, m: &Mount, opts: &Options, shown: &str) -> Result<OwnedFd> {
    let source = m
        .source()
        .as_ref()
        .ok_or_else(|| SetupError::spec(format!("bind mount on {shown} has no source")))?;
    let source = open_source(source, shown)?;
    let want = if source.is_dir { Want::Dir } else { Want::File };
    let target = open_in_root(root, m.destination(), want)?;
    let recursive = opts.flags.contains(MsFlags::MS_REC);
    let tree = clone_tree(source.fd.as_fd(), shown, recursive)?;
    // A bind mount takes no flag of its own: they are set on the copy (every mount of an
    // `rbind`), before anything can see it.
    let flags = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
    set_flags(tree.as_fd(), flags, recursive, shown)?;
    attach(tree.as_fd(), target.as_fd(), shown)?;
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[&str]) -> Options {
        parse_options(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let o = parse(&[
            "nosuid",
            "noexec",
            "ro",
            "mode=755",
            "size=65536k",
            "rprivate",
        ]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(o.data, ["mode=755", "size=65536k"]);
        let strings = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ro = MsFlags::MS_RDONLY;
        assert_eq!(
            cgroup_flags(&strings(&["nosuid"]), MsFlags::MS_NOSUID),
            ro | MsFlags::MS_NOSUID
        );
        assert_eq!(
            cgroup_flags(&strings(&["ro", "rw"]), MsFlags::empty()),
            MsFlags::empty()
        );
        assert_eq!(cgroup_flags(&strings(&["rw", "ro"]), ro), ro);
        let o = parse(&["rbind", "ro", "rw"]);
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(o.bind());
    }
}
