//! The [`AgentFiles`] seam: the files and folders the agent makes for itself.

use std::io;
use std::path::Path;

/// The agent's own files and folders (mount points, /run/kata-containers, /etc/resolv.conf,
/// storage trees), addressed by absolute guest paths: made, owned, moded, linked and removed.
/// Reading and listing them is [`Sysfs`](super::Sysfs)'.
pub trait AgentFiles: Send + Sync {
    /// Creates directory `path` and its missing parents (mount points under /dev, /run, cgroup
    /// trees); an existing directory is fine.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Creates or truncates the agent's own file `path` (under /run, /etc) with `data` and
    /// permission bits `mode`; the parent directory must exist.
    fn create_file(&self, path: &Path, data: &[u8], mode: u32) -> io::Result<()>;

    /// Removes a file, a symbolic link or an empty directory.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Changes the owner and/or group of `path` itself (lchown(2): a link is not followed);
    /// `None` keeps that id.
    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()>;

    /// Sets the permission bits (`0o7777`) of `path`, following links (chmod(2)).
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()>;

    /// Creates a symbolic link at `link` pointing to `target` (stored as given).
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()>;
}
