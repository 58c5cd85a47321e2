//! [`FakeFileTree`]: the [`FileTree`] seam on the [`FakeSysfs`] tree, with the kernel's
//! refusals of openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS).

use std::ffi::OsStr;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use kata_agent::host::{FileMeta, FileTree, NodeKind, OpenMode, TreeDir, TreeFile};
use nix::errno::Errno;

use crate::FakeSysfs;
use crate::faults::{Faults, Op, errno};

/// Directories and files beneath base directories of the fake guest filesystem (the
/// [`FakeSysfs`] tree, so scenarios check what CopyFile wrote like any other file).
///
/// Handles hold physical paths; a lookup through a symbolic link is `ELOOP`, a way out
/// (`..`, an absolute path) `EXDEV`, a fifo or device opened as a file `InvalidInput`.
/// [`Op::FilesOpen`] counts `open_base`, `walk` and `open_file`; [`Op::FilesWrite`] every
/// change (writes, links, removals, renames, attributes).
#[derive(Debug)]
pub struct FakeFileTree {
    faults: Faults,
    sysfs: Arc<FakeSysfs>,
}

impl FakeFileTree {
    /// A tree over `sysfs`.
    pub fn new(faults: Faults, sysfs: Arc<FakeSysfs>) -> Self {
        FakeFileTree { faults, sysfs }
    }
}

impl FileTree for FakeFileTree {
    fn open_base(&self, base: &Path) -> io::Result<Box<dyn TreeDir>> {
        self.faults.check(Op::FilesOpen)?;
        if !base.is_absolute() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "base is not absolute",
            ));
        }
        self.sysfs.mkdir_p(base)?;
        match self.sysfs.meta(base).map(|m| m.kind) {
            Some(NodeKind::Dir) => Ok(Box::new(self.dir(base.to_owned()))),
            Some(NodeKind::Symlink) => Err(errno(Errno::ELOOP)),
            _ => Err(errno(Errno::ENOTDIR)),
        }
    }
}

impl FakeFileTree {
    fn dir(&self, path: PathBuf) -> FakeDir {
        FakeDir {
            faults: self.faults.clone(),
            sysfs: self.sysfs.clone(),
            path,
        }
    }
}

/// A directory of the fake tree, by physical path.
#[derive(Debug)]
struct FakeDir {
    faults: Faults,
    sysfs: Arc<FakeSysfs>,
    path: PathBuf,
}

/// A single plain name, as the real seam requires.
fn plain(name: &OsStr) -> io::Result<&OsStr> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(n)), None) if n == name => Ok(name),
        (Some(Component::ParentDir | Component::RootDir), _) => Err(errno(Errno::EXDEV)),
        _ => Err(errno(Errno::EINVAL)),
    }
}

fn not_regular(kind: NodeKind) -> io::Error {
    match kind {
        NodeKind::Dir => errno(Errno::EISDIR),
        NodeKind::Symlink => errno(Errno::ELOOP),
        other => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file but a {other:?}"),
        ),
    }
}

impl FakeDir {
    fn meta(&self, name: &OsStr) -> Option<FileMeta> {
        self.sysfs.meta(self.path.join(name))
    }
}

impl TreeDir for FakeDir {
    fn walk(&self, rel: &Path, create: Option<u32>) -> io::Result<Box<dyn TreeDir>> {
        self.faults.check(Op::FilesOpen)?;
        let mut cur = self.path.clone();
        for part in rel.components() {
            let name = match part {
                Component::CurDir => continue,
                Component::Normal(name) => name,
                _ => return Err(errno(Errno::EXDEV)),
            };
            let next = cur.join(name);
            match (self.sysfs.meta(&next).map(|m| m.kind), create) {
                (Some(NodeKind::Dir), _) => {}
                (Some(NodeKind::Symlink), _) => return Err(errno(Errno::ELOOP)),
                (Some(_), _) => return Err(errno(Errno::ENOTDIR)),
                (None, None) => return Err(errno(Errno::ENOENT)),
                (None, Some(mode)) => {
                    self.sysfs.mkdir_p(&next)?;
                    self.sysfs.set_meta(&next, 0, 0, mode & 0o777)?;
                }
            }
            cur = next;
        }
        Ok(Box::new(FakeDir {
            faults: self.faults.clone(),
            sysfs: self.sysfs.clone(),
            path: cur,
        }))
    }

    fn kind_of(&self, name: &OsStr) -> io::Result<Option<NodeKind>> {
        Ok(self.meta(plain(name)?).map(|m| m.kind))
    }

    fn open_file(&self, name: &OsStr, mode: OpenMode) -> io::Result<Box<dyn TreeFile>> {
        self.faults.check(Op::FilesOpen)?;
        let path = self.path.join(plain(name)?);
        match (self.sysfs.meta(&path), mode) {
            (Some(m), _) if m.kind != NodeKind::File => return Err(not_regular(m.kind)),
            (Some(_), OpenMode::Write { truncate: true, .. }) => {
                self.sysfs.write_file(&path, Vec::new())?;
            }
            (Some(_), _) => {}
            (None, OpenMode::Read) => return Err(errno(Errno::ENOENT)),
            (None, OpenMode::Write { mode, .. }) => {
                self.sysfs.write_file(&path, Vec::new())?;
                self.sysfs.set_meta(&path, 0, 0, mode & 0o777)?;
            }
        }
        Ok(Box::new(FakeFile {
            faults: self.faults.clone(),
            sysfs: self.sysfs.clone(),
            path,
        }))
    }

    fn remove(&self, name: &OsStr) -> io::Result<()> {
        self.faults.check(Op::FilesWrite)?;
        let name = plain(name)?;
        match self.meta(name).map(|m| m.kind) {
            None => Err(errno(Errno::ENOENT)),
            Some(NodeKind::Dir) => Err(errno(Errno::EISDIR)),
            Some(_) => self.sysfs.remove(self.path.join(name)),
        }
    }

    fn symlink(&self, name: &OsStr, target: &Path, uid: u32, gid: u32) -> io::Result<()> {
        self.faults.check(Op::FilesWrite)?;
        let path = self.path.join(plain(name)?);
        self.sysfs.symlink(&path, target)?;
        self.sysfs.set_meta(&path, uid, gid, 0o777)
    }

    fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        self.faults.check(Op::FilesWrite)?;
        let (from, to) = (self.path.join(plain(from)?), self.path.join(plain(to)?));
        let meta = self.sysfs.meta(&from).ok_or_else(|| errno(Errno::ENOENT))?;
        if meta.kind != NodeKind::File {
            // The fake moves regular files only, all CopyFile renames.
            return Err(errno(Errno::EINVAL));
        }
        match self.sysfs.meta(&to).map(|m| m.kind) {
            Some(NodeKind::Dir) => return Err(errno(Errno::EISDIR)),
            Some(_) => self.sysfs.remove(&to)?,
            None => {}
        }
        let data = self.sysfs.contents(&from).unwrap_or_default();
        self.sysfs.write_file(&to, data)?;
        self.sysfs.set_meta(&to, meta.uid, meta.gid, meta.mode)?;
        self.sysfs.remove(&from)
    }

    fn set_attrs(&self, uid: u32, gid: u32, mode: Option<u32>) -> io::Result<()> {
        self.faults.check(Op::FilesWrite)?;
        let current = self
            .sysfs
            .meta(&self.path)
            .ok_or_else(|| errno(Errno::ENOENT))?;
        self.sysfs
            .set_meta(&self.path, uid, gid, mode.unwrap_or(current.mode))
    }
}

/// A regular file of the fake tree, by physical path.
#[derive(Debug)]
struct FakeFile {
    faults: Faults,
    sysfs: Arc<FakeSysfs>,
    path: PathBuf,
}

impl TreeFile for FakeFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.faults.check(Op::FilesWrite)?;
        let offset = usize::try_from(offset).map_err(|_| errno(Errno::EFBIG))?;
        let end = offset
            .checked_add(data.len())
            .ok_or_else(|| errno(Errno::EFBIG))?;
        let meta = self
            .sysfs
            .meta(&self.path)
            .ok_or_else(|| errno(Errno::ENOENT))?;
        let mut contents = self.sysfs.contents(&self.path).unwrap_or_default();
        if contents.len() < end {
            contents.resize(end, 0);
        }
        contents[offset..end].copy_from_slice(data);
        self.sysfs.write_file(&self.path, contents)?;
        self.sysfs
            .set_meta(&self.path, meta.uid, meta.gid, meta.mode)
    }

    fn read_head(&self, max: usize) -> io::Result<Vec<u8>> {
        let mut data = self
            .sysfs
            .contents(&self.path)
            .ok_or_else(|| errno(Errno::ENOENT))?;
        data.truncate(max);
        Ok(data)
    }

    fn size(&self) -> io::Result<u64> {
        self.sysfs
            .meta(&self.path)
            .map(|m| m.size)
            .ok_or_else(|| errno(Errno::ENOENT))
    }

    fn set_attrs(&self, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
        self.faults.check(Op::FilesWrite)?;
        self.sysfs.set_meta(&self.path, uid, gid, mode)
    }
}
