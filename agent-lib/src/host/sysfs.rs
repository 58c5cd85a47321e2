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

/// `/sys`, `/dev` and `/proc`, addressed by their absolute guest paths
/// (`/sys/devices/system/cpu/online`, `/dev/vda`).
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

    /// Creates directory `path` and its missing parents (mount points under /dev, /run, cgroup
    /// trees); an existing directory is fine.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Creates or truncates the agent's own file `path` (under /run, /etc) with `data` and
    /// permission bits `mode`; the parent directory must exist.
    fn create_file(&self, path: &Path, data: &[u8], mode: u32) -> io::Result<()>;

    /// Removes a file, a symbolic link or an empty directory.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Information about a path itself: a final symbolic link is not followed (lstat(2)).
    fn symlink_metadata(&self, path: &Path) -> io::Result<FileMeta>;

    /// Changes the owner and/or group of `path` itself (lchown(2): a link is not followed);
    /// `None` keeps that id.
    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()>;

    /// Sets the permission bits (`0o7777`) of `path`, following links (chmod(2)).
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()>;

    /// Creates a symbolic link at `link` pointing to `target` (stored as given).
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()>;

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
