//! The `Sysfs` seam: the kernel's pseudo filesystems as the agent sees them.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A regular file (or a sysfs attribute).
    File,
    /// A directory.
    Dir,
    /// A symbolic link (only from `lstat`-like queries; [`Sysfs::stat`] follows links).
    Symlink,
    /// A block device node.
    BlockDevice,
    /// A character device node.
    CharDevice,
    /// A fifo, socket or anything else.
    Other,
}

/// The result of [`Sysfs::stat`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// What the path is.
    pub kind: NodeKind,
    /// Permission bits.
    pub mode: u32,
    /// Device major number (device nodes only, else 0).
    pub major: u64,
    /// Device minor number (device nodes only, else 0).
    pub minor: u64,
}

/// The result of [`Sysfs::symlink_metadata`]: what a path is and who owns it, without following
/// a final symbolic link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileMeta {
    /// What the path is ([`NodeKind::Symlink`] for a link).
    pub kind: NodeKind,
    /// Permission bits, setuid/setgid/sticky included (`0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (a link: the length of its target).
    pub size: u64,
    /// Last modification.
    pub modified: SystemTime,
}

/// `/sys`, `/dev` and `/proc` (and any other file), addressed by their absolute guest paths
/// (`/sys/devices/system/cpu/online`, `/dev/vda`): read, listed, and attributes written. The
/// files the agent makes for itself are [`AgentFiles`](super::AgentFiles)'.
///
/// The real implementation resolves paths under a root directory (`/` in a guest); the fake is an
/// in-memory tree a fake VMM populates.
pub trait Sysfs: Send + Sync {
    /// Reads a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// Writes `data` to an existing file (sysfs attributes are written, never created).
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()>;

    /// The names in a directory, sorted.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;

    /// The target of a symbolic link, as stored.
    fn read_link(&self, path: &Path) -> io::Result<PathBuf>;

    /// Information about a path, following symbolic links.
    fn stat(&self, path: &Path) -> io::Result<NodeInfo>;

    /// Information about a path itself: a final symbolic link is not followed (lstat(2)).
    fn symlink_metadata(&self, path: &Path) -> io::Result<FileMeta>;

    /// Whether `path` exists (following links).
    fn exists(&self, path: &Path) -> bool {
        self.stat(path).is_ok()
    }

    /// Reads a file as trimmed UTF-8 text.
    fn read_string(&self, path: &Path) -> io::Result<String> {
        let raw = self.read(path)?;
        String::from_utf8(raw)
            .map(|s| s.trim().to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}
