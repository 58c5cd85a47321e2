//! The `Sysfs` seam: the kernel's pseudo filesystems as the agent sees them.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

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
