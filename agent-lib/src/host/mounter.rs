//! The `Mounter` seam: mount(2), umount2(2) and the mount table.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// One mount(2) call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountSpec {
    /// Device, directory or pseudo source (`tmpfs`, `proc`...); `None` for remounts.
    pub source: Option<String>,
    /// Where to mount.
    pub target: PathBuf,
    /// Filesystem type; `None` for bind mounts and remounts.
    pub fstype: Option<String>,
    /// `MS_*` flags.
    pub flags: MsFlags,
    /// Filesystem-specific options (`size=64m,mode=755`).
    pub data: Option<String>,
}

impl MountSpec {
    /// A mount of `fstype` from `source` on `target`.
    pub fn new(source: &str, target: impl Into<PathBuf>, fstype: &str) -> Self {
        MountSpec {
            source: Some(source.to_owned()),
            target: target.into(),
            fstype: Some(fstype.to_owned()),
            flags: MsFlags::empty(),
            data: None,
        }
    }

    /// A bind mount of `source` on `target`.
    pub fn bind(source: impl AsRef<Path>, target: impl Into<PathBuf>) -> Self {
        MountSpec {
            source: Some(source.as_ref().to_string_lossy().into_owned()),
            target: target.into(),
            fstype: None,
            flags: MsFlags::MS_BIND,
            data: None,
        }
    }

    /// Adds `flags`.
    pub fn flags(mut self, flags: MsFlags) -> Self {
        self.flags |= flags;
        self
    }

    /// Sets the filesystem options.
    pub fn data(mut self, data: impl Into<String>) -> Self {
        self.data = Some(data.into());
        self
    }
}

/// One line of the mount table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// Mount source as the kernel reports it.
    pub source: String,
    /// Mount point.
    pub target: PathBuf,
    /// Filesystem type.
    pub fstype: String,
    /// Comma-separated mount options (`rw,nosuid,size=65536k`).
    pub options: String,
}

/// A mount of one container made visible in another (Kata's `SharedMount`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareMount {
    /// A process in the source mount namespace (the source container's init).
    pub src_pid: i32,
    /// The mount point there, as the source container sees it.
    pub src_path: PathBuf,
    /// A process in the destination mount namespace (the new container's init).
    pub dst_pid: i32,
    /// Where it appears there (created when missing), as the destination sees it.
    pub dst_path: PathBuf,
    /// How long to wait for `src_path` to become a mount point (the source container's
    /// program makes it; Kata waits 10 s).
    pub wait: std::time::Duration,
}

/// mount(2), umount2(2) and the mount table of the agent's mount namespace.
pub trait Mounter: Send + Sync {
    /// Performs one mount(2).
    fn mount(&self, spec: &MountSpec) -> io::Result<()>;

    /// Unmounts `target` with umount2(2) `flags`.
    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()>;

    /// The current mount table, in mount order.
    fn mounts(&self) -> io::Result<Vec<MountEntry>>;

    /// Clones the mount tree at `share.src_path` in the source's mount namespace
    /// (`open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)`) and attaches the clone at
    /// `share.dst_path` in the destination's (`move_mount`). The clone lives in the destination
    /// namespace only, and goes with it. `ETIMEDOUT` when `src_path` is not a mount point
    /// within `share.wait`. Blocks: call it off the async executor.
    fn share_mount(&self, share: &ShareMount) -> io::Result<()>;

    /// Whether something is mounted exactly on `target`.
    fn is_mounted(&self, target: &Path) -> io::Result<bool> {
        Ok(self.mounts()?.iter().any(|m| m.target == target))
    }

    /// Bind-mounts `source` on `target`, read-only when asked (bind, then remount).
    fn bind(&self, source: &Path, target: &Path, readonly: bool) -> io::Result<()> {
        self.mount(&MountSpec::bind(source, target))?;
        if readonly {
            let remount = MountSpec {
                source: None,
                target: target.to_owned(),
                fstype: None,
                flags: MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                data: None,
            };
            if let Err(e) = self.mount(&remount) {
                // Leave nothing half-done behind.
                let _ = self.umount(target, MntFlags::MNT_DETACH);
                return Err(e);
            }
        }
        Ok(())
    }
}
