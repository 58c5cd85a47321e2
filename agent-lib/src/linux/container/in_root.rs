//! Mount targets inside the rootfs, opened once and used only through their descriptor (runc
//! CVE-2021-30465): each prefix of the destination is resolved with `openat2(rootfd,
//! RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so a symlink, even one swapped in by another
//! container while the walk runs, is followed as if the rootfs were `/` and never leads out.
//! Missing directories are made with `mkdirat` on their parent's descriptor, a missing file with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` on it; nothing is truncated, and the caller mounts onto the
//! returned descriptor, never onto the path again.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2, readlinkat};
use nix::sys::stat::{Mode, mkdirat};

use super::error::{Result, Step};
use super::paths::{DIR_MODE, FILE_MODE};

/// How many dangling symlinks one resolution may replace (Linux's limit on links).
const MAX_LINKS: usize = 40;

/// What the mount target must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    /// A directory (made, with its parents, if missing).
    Dir,
    /// Anything but a directory is accepted as it is; a missing one is made an empty file.
    File,
}

/// `/proc/self/fd/N` for `fd`: the path through which a mount call reaches exactly that file.
pub(super) fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// An `O_PATH` descriptor of `dest` resolved inside `root`, made if missing as `want` says.
/// `dest` is the spec's path (`..` stops at the root).
pub(super) fn open_in_root(root: BorrowedFd<'_>, dest: &Path, want: Want) -> Result<OwnedFd> {
    let shown = dest.display().to_string();
    let mut pending: Vec<OsString> = normal(dest);
    pending.reverse();
    let mut prefix = PathBuf::new();
    let mut links = 0;
    let mut current = dup(root)?;
    while let Some(name) = pending.pop() {
        let last = pending.is_empty();
        let path = prefix.join(&name);
        let found = resolve(root, &path, last && want == Want::File);
        let fd = match found {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => match create(current.as_fd(), &name, last, want) {
                Ok(fd) => fd,
                Err(Errno::EEXIST) => {
                    // A dangling symlink (or a racing creation): resolve its target instead.
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Errno::ELOOP).step(|| format!("resolve {shown} in the root"));
                    }
                    let target = readlinkat(current.as_fd(), name.as_os_str())
                        .step(|| format!("resolve {shown} in the root"))?;
                    let mut replaced = normal(Path::new(&target));
                    replaced.reverse();
                    pending.extend(replaced);
                    if Path::new(&target).is_absolute() {
                        prefix = PathBuf::new();
                        current = dup(root)?;
                    }
                    continue;
                }
                Err(e) => return Err(e).step(|| format!("create mount point {shown}")),
            },
            Err(e) => return Err(e).step(|| format!("open mount point {shown} in the root")),
        };
        prefix = path;
        current = fd;
    }
    Ok(current)
}

/// An `O_PATH` descriptor of the existing `path` resolved inside `root` (a symlink, the last
/// component's included, is followed as if `root` were `/`; a magic link is refused), or
/// `None` when nothing is there. Nothing is created.
pub(super) fn existing_in_root(root: BorrowedFd<'_>, path: &Path) -> Result<Option<OwnedFd>> {
    let rel: PathBuf = normal(path).iter().collect();
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    match resolve(root, &rel, true) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e).step(|| format!("resolve {} in the root", path.display())),
    }
}

/// `path`'s components, `..` kept (the kernel stops it at the root), `.` and `/` dropped.
fn normal(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    fd.try_clone_to_owned()
        .step(|| "duplicate the rootfs descriptor".to_owned())
}

/// `path` (relative to `root`) resolved in the root, as a directory unless `any` is set.
fn resolve(root: BorrowedFd<'_>, path: &Path, any: bool) -> nix::Result<OwnedFd> {
    let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    if !any {
        flags |= OFlag::O_DIRECTORY;
    }
    let how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    // EAGAIN: a rename raced the lookup (RESOLVE_IN_ROOT refuses to guess); just try again.
    loop {
        match openat2(root, path, how) {
            Err(Errno::EAGAIN) => continue,
            other => return other,
        }
    }
}

/// Makes `name` in `dir`: the last component as `want` says, any other a directory. Returns
/// its descriptor, opened without following a symlink.
fn create(dir: BorrowedFd<'_>, name: &OsString, last: bool, want: Want) -> nix::Result<OwnedFd> {
    if name == ".." {
        return Err(Errno::ENOENT);
    }
    if last && want == Want::File {
        return openat(
            dir,
            name.as_os_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(FILE_MODE),
        );
    }
    mkdirat(dir, name.as_os_str(), Mode::from_bits_truncate(DIR_MODE))?;
    openat(
        dir,
        name.as_os_str(),
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::container::beneath::open_root;

    fn real(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(fd_path(fd)).unwrap()
    }

    #[test]
    fn targets_resolve_inside_the_root_and_are_made_there() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a/abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("a/b/up")).unwrap();
        std::os::unix::fs::symlink("/gone/deeper", root.join("dangling")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let rootfd = open_root(&root).unwrap();
        let open = |p: &str, w| open_in_root(rootfd.as_fd(), Path::new(p), w);
        assert_eq!(real(&open("/a/b", Want::Dir).unwrap()), root.join("a/b"));
        assert_eq!(real(&open("../../a", Want::Dir).unwrap()), root.join("a"));
        let abs = open("/a/abs/new", Want::Dir).unwrap();
        assert_eq!(
            real(&abs),
            root.join(outside.strip_prefix("/").unwrap()).join("new")
        );
        assert_eq!(real(&open("/a/b/up/x", Want::Dir).unwrap()), root.join("x"));
        let file = open("/dangling/f", Want::File).unwrap();
        assert_eq!(real(&file), root.join("gone/deeper/f"));
        assert_eq!(
            std::fs::metadata(root.join("gone/deeper/f")).unwrap().len(),
            0
        );
        assert_eq!(
            real(&open("/dangling/f", Want::File).unwrap()),
            root.join("gone/deeper/f")
        );
        let err = open("/loop/x", Want::Dir).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ELOOP), "{err}");
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "made outside"
        );
    }
}
