//! The `FileTree` seam: files the host hands the agent, created and read beneath a base
//! directory through directory handles, so no path can lead outside it.
//!
//! Every operation is relative to a [`TreeDir`] handle (a directory fd in the real
//! implementation) and takes single names, never paths: nothing is resolved twice by a path
//! string, so swapping a component for a symbolic link between two calls cannot redirect a
//! later one. Walking down ([`TreeDir::walk`]) refuses symbolic links (`ELOOP`) and anything
//! outside the handle's directory (`EXDEV`).

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::Path;

use super::NodeKind;

/// How [`TreeDir::open_file`] opens a regular file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read an existing file.
    Read,
    /// Write, creating the file with permission bits `mode` (before the umask) when missing;
    /// `truncate` empties an existing one.
    Write {
        /// Permission bits of a new file.
        mode: u32,
        /// Empty an existing file.
        truncate: bool,
    },
}

/// Opens base directories.
pub trait FileTree: Send + Sync {
    /// Opens the directory at the absolute guest path `base`, creating it and its missing
    /// parents (mode 0755) first. `base` is the agent's own constant, not host input; a final
    /// symbolic link is refused.
    fn open_base(&self, base: &Path) -> io::Result<Box<dyn TreeDir>>;
}

/// An open directory of a [`FileTree`]. `name` arguments are single path components.
pub trait TreeDir: Send + Sync + fmt::Debug {
    /// Opens the directory `rel` (relative, plain names only) beneath this one, creating the
    /// missing components with permission bits `create` when given. A symbolic link on the way
    /// is `ELOOP`, a way out (`..`, an absolute path) `EXDEV`, a non-directory `ENOTDIR`.
    fn walk(&self, rel: &Path, create: Option<u32>) -> io::Result<Box<dyn TreeDir>>;

    /// What `name` is, without following a symbolic link; `None` when nothing is there.
    fn kind_of(&self, name: &OsStr) -> io::Result<Option<NodeKind>>;

    /// Opens the regular file `name`. A symbolic link is `ELOOP`, a directory `EISDIR`; a
    /// fifo, device or socket is refused (`InvalidInput`) without blocking, and is never
    /// truncated nor written.
    fn open_file(&self, name: &OsStr, mode: OpenMode) -> io::Result<Box<dyn TreeFile>>;

    /// Removes `name` if it is not a directory (a link is removed, not followed); a directory
    /// is `EISDIR`, nothing there `ENOENT`.
    fn remove(&self, name: &OsStr) -> io::Result<()>;

    /// Creates a symbolic link `name` pointing to `target` (stored as given, never followed
    /// by the agent) and sets its owner.
    fn symlink(&self, name: &OsStr, target: &Path, uid: u32, gid: u32) -> io::Result<()>;

    /// Renames `from` to `to`, both in this directory, replacing a non-directory at `to`.
    fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()>;

    /// Sets this directory's owner and, when given, its permission bits (`0o7777`).
    fn set_attrs(&self, uid: u32, gid: u32, mode: Option<u32>) -> io::Result<()>;
}

/// An open regular file of a [`FileTree`].
pub trait TreeFile: Send + Sync + fmt::Debug {
    /// Writes all of `data` at `offset`.
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;

    /// Reads at most `max` bytes from the start.
    fn read_head(&self, max: usize) -> io::Result<Vec<u8>>;

    /// The current size in bytes.
    fn size(&self) -> io::Result<u64>;

    /// Sets the owner and permission bits (`0o7777`).
    fn set_attrs(&self, uid: u32, gid: u32, mode: u32) -> io::Result<()>;
}
