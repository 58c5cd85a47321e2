//! [`LinuxFileTree`]: the [`FileTree`] seam on directory fds, resolved with openat2(2).
//!
//! Every lookup is `openat2(dirfd, name, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)` from an fd the agent already holds, one plain name at a time: a
//! symbolic link anywhere is `ELOOP`, a way out `EXDEV`, and what was checked is the fd that is
//! used. Regular files are opened `O_NONBLOCK` and checked with fstat(2) before any write, so a
//! fifo swapped in never blocks the agent and is never written or truncated, and a file with
//! other hard links (one planted at the name) is never written, truncated or chowned.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat2, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, symlinkat, unlinkat};

use crate::host::{FileTree, NodeKind, OpenMode, TreeDir, TreeFile};

/// The real [`FileTree`]: absolute guest paths resolved under `root` (`/` in a guest; tests
/// use a temporary directory).
#[derive(Clone, Debug)]
pub struct LinuxFileTree {
    root: PathBuf,
}

impl LinuxFileTree {
    /// Base directories are resolved under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LinuxFileTree { root: root.into() }
    }
}

/// The resolution every lookup uses: beneath the directory fd, no symbolic links at all.
fn resolve() -> ResolveFlag {
    ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// A single plain name: no separator, not `.` or `..`, not empty.
fn plain(name: &OsStr) -> io::Result<&OsStr> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(n)), None) if n == name => Ok(name),
        (Some(Component::ParentDir | Component::RootDir), _) => Err(errno(Errno::EXDEV)),
        _ => Err(errno(Errno::EINVAL)),
    }
}

fn kind_of_stat(st: &FileStat) -> NodeKind {
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFREG => NodeKind::File,
        SFlag::S_IFDIR => NodeKind::Dir,
        SFlag::S_IFLNK => NodeKind::Symlink,
        SFlag::S_IFBLK => NodeKind::BlockDevice,
        SFlag::S_IFCHR => NodeKind::CharDevice,
        _ => NodeKind::Other,
    }
}

fn set_fd_attrs(fd: impl AsFd + Copy, uid: u32, gid: u32, mode: Option<u32>) -> io::Result<()> {
    // chown first: it clears setuid/setgid bits that a chmod then sets as asked.
    fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).map_err(errno)?;
    match mode {
        Some(mode) => fchmod(fd, Mode::from_bits_truncate(mode & 0o7777)).map_err(errno),
        None => Ok(()),
    }
}

impl FileTree for LinuxFileTree {
    fn open_base(&self, base: &Path) -> io::Result<Box<dyn TreeDir>> {
        let rel = base
            .strip_prefix("/")
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "base is not absolute"))?;
        let resolved = self.root.join(rel);
        fs::create_dir_all(&resolved)?;
        let fd = nix::fcntl::open(
            &resolved,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        Ok(Box::new(LinuxDir { fd }))
    }
}

/// A directory fd.
#[derive(Debug)]
struct LinuxDir {
    fd: OwnedFd,
}

impl LinuxDir {
    fn open_dir(&self, name: &OsStr) -> io::Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(resolve());
        match openat2(&self.fd, name, how) {
            Ok(fd) => Ok(fd),
            // O_DIRECTORY | O_NOFOLLOW reports a link as "not a directory": say what it is.
            Err(Errno::ENOTDIR)
                if self.lstat(name)?.as_ref().map(kind_of_stat) == Some(NodeKind::Symlink) =>
            {
                Err(errno(Errno::ELOOP))
            }
            Err(e) => Err(errno(e)),
        }
    }

    fn lstat(&self, name: &OsStr) -> io::Result<Option<FileStat>> {
        match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(errno(e)),
        }
    }
}

impl TreeDir for LinuxDir {
    fn walk(&self, rel: &Path, create: Option<u32>) -> io::Result<Box<dyn TreeDir>> {
        let mut cur = LinuxDir {
            fd: self.fd.try_clone()?,
        };
        for part in rel.components() {
            let name = match part {
                Component::CurDir => continue,
                Component::Normal(name) => name,
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(errno(Errno::EXDEV));
                }
            };
            if let Some(mode) = create {
                match mkdirat(&cur.fd, name, Mode::from_bits_truncate(mode & 0o777)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(errno(e)),
                }
            }
            cur = LinuxDir {
                fd: cur.open_dir(name)?,
            };
        }
        Ok(Box::new(cur))
    }

    fn kind_of(&self, name: &OsStr) -> io::Result<Option<NodeKind>> {
        Ok(self.lstat(plain(name)?)?.as_ref().map(kind_of_stat))
    }

    fn open_file(&self, name: &OsStr, mode: OpenMode) -> io::Result<Box<dyn TreeFile>> {
        let name = plain(name)?;
        // Refuse what is not a regular file before opening it: opening a device can have
        // effects of its own. The fstat below catches anything swapped in meanwhile.
        if let Some(st) = self.lstat(name)? {
            check_regular(kind_of_stat(&st))?;
        }
        let base = OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let (flags, create_mode) = match mode {
            OpenMode::Read => (base | OFlag::O_RDONLY, 0),
            OpenMode::Write { mode, .. } => (base | OFlag::O_RDWR | OFlag::O_CREAT, mode),
        };
        let how = OpenHow::new()
            .flags(flags)
            .mode(Mode::from_bits_truncate(create_mode & 0o777))
            .resolve(resolve());
        let fd = openat2(&self.fd, name, how).map_err(errno)?;
        let st = fstat(&fd).map_err(errno)?;
        check_regular(kind_of_stat(&st))?;
        if matches!(mode, OpenMode::Write { .. }) && st.st_nlink > 1 {
            // A hard link planted at the name (by a container writing the shared directory)
            // would have the agent write, truncate and chown a file that has other names.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} has other hard links", name.to_string_lossy()),
            ));
        }
        let file = File::from(fd);
        if let OpenMode::Write { truncate: true, .. } = mode {
            file.set_len(0)?;
        }
        Ok(Box::new(LinuxFile { file }))
    }

    fn remove(&self, name: &OsStr) -> io::Result<()> {
        let name = plain(name)?;
        match self.lstat(name)? {
            None => Err(errno(Errno::ENOENT)),
            Some(st) if kind_of_stat(&st) == NodeKind::Dir => Err(errno(Errno::EISDIR)),
            Some(_) => unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir).map_err(errno),
        }
    }

    fn symlink(&self, name: &OsStr, target: &Path, uid: u32, gid: u32) -> io::Result<()> {
        let name = plain(name)?;
        symlinkat(target, &self.fd, name).map_err(errno)?;
        fchownat(
            &self.fd,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(errno)
    }

    fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        renameat(&self.fd, plain(from)?, &self.fd, plain(to)?).map_err(errno)
    }

    fn set_attrs(&self, uid: u32, gid: u32, mode: Option<u32>) -> io::Result<()> {
        set_fd_attrs(&self.fd, uid, gid, mode)
    }
}

fn check_regular(kind: NodeKind) -> io::Result<()> {
    match kind {
        NodeKind::File => Ok(()),
        NodeKind::Dir => Err(errno(Errno::EISDIR)),
        NodeKind::Symlink => Err(errno(Errno::ELOOP)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file but a {kind:?}"),
        )),
    }
}

/// A regular file's fd.
#[derive(Debug)]
struct LinuxFile {
    file: File,
}

impl TreeFile for LinuxFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)
    }

    fn read_head(&self, max: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; max];
        let mut filled = 0;
        while filled < max {
            match self.file.read_at(&mut buf[filled..], filled as u64)? {
                0 => break,
                n => filled += n,
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_attrs(&self, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
        set_fd_attrs(&self.file, uid, gid, Some(mode))
    }
}

#[cfg(test)]
#[path = "file_tree_tests.rs"]
mod tests;
