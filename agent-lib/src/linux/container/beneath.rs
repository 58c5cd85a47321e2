//! Creating things below a directory descriptor without ever following a symlink: each path
//! component is opened `O_PATH | O_NOFOLLOW | O_DIRECTORY` from its parent's descriptor, and
//! every directory, node, file and link is made with the `*at` calls on that descriptor. What
//! was made is logged in a [`Made`], which removes it all again when the setup fails.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, fstatat, mkdirat, mknodat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, symlinkat, unlinkat};

use super::error::{Result, SetupError, Step};
use super::paths::{DIR_MODE, FILE_MODE};

/// The components of `path` below `/dev` (`/dev/net/tun` gives `net`, `tun`): the path must be
/// absolute, name something strictly below `/dev`, and hold no `.` or `..` (the agent
/// normalises device paths before the launch, so a path that is not normal here is an attack).
pub(super) fn below_dev(path: &Path) -> Result<Vec<OsString>> {
    let refuse = || {
        SetupError::spec(format!(
            "device path {} is not a normal path below /dev",
            path.display()
        ))
    };
    let mut components = path.components();
    if components.next() != Some(Component::RootDir)
        || components.next() != Some(Component::Normal(OsStr::new("dev")))
    {
        return Err(refuse());
    }
    let rest: Vec<OsString> = components
        .map(|c| match c {
            Component::Normal(name) => Ok(name.to_owned()),
            _ => Err(refuse()),
        })
        .collect::<Result<_>>()?;
    if rest.is_empty() {
        return Err(refuse());
    }
    Ok(rest)
}

/// An `O_PATH` descriptor of the directory `path` (the agent's own, trusted path).
pub(super) fn open_root(path: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .step(|| format!("open {}", path.display()))
}

/// One thing made below a directory, to remove on failure.
#[derive(Debug)]
enum Kind {
    Dir,
    File,
    /// A file with a bind mount on it.
    Mounted,
}

/// What was made, in order, each by its parent's descriptor and its name.
#[derive(Debug, Default)]
pub(super) struct Made {
    entries: Vec<(OwnedFd, OsString, Kind)>,
}

impl Made {
    fn push(&mut self, parent: BorrowedFd<'_>, name: &OsStr, kind: Kind) -> nix::Result<()> {
        let parent = parent
            .try_clone_to_owned()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EMFILE)))?;
        self.entries.push((parent, name.to_owned(), kind));
        Ok(())
    }

    /// Removes everything made, newest first; failures are reported on stderr only (the
    /// setup has failed already and says why).
    pub(super) fn undo(self) {
        for (parent, name, kind) in self.entries.into_iter().rev() {
            if let Kind::Mounted = kind {
                let at = format!(
                    "/proc/self/fd/{}/{}",
                    parent.as_raw_fd(),
                    name.to_string_lossy()
                );
                let _ = umount2(
                    at.as_str(),
                    MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW,
                );
            }
            let flag = match kind {
                Kind::Dir => UnlinkatFlags::RemoveDir,
                Kind::File | Kind::Mounted => UnlinkatFlags::NoRemoveDir,
            };
            if let Err(e) = unlinkat(&parent, name.as_os_str(), flag) {
                eprintln!("kata-agent init: undo {}: {e}", name.to_string_lossy());
            }
        }
    }
}

/// The directory `components` below `dir`, walked without following symlinks; missing
/// directories are created [`DIR_MODE`] and logged in `made`. `shown` names the path in errors.
pub(super) fn dirs(
    dir: BorrowedFd<'_>,
    components: &[OsString],
    made: &mut Made,
    shown: &str,
) -> Result<OwnedFd> {
    let mut current = dir
        .try_clone_to_owned()
        .step(|| "duplicate a directory descriptor".to_owned())?;
    for name in components {
        current = match open_dir(current.as_fd(), name) {
            Err(Errno::ENOENT) => {
                mkdirat(
                    &current,
                    name.as_os_str(),
                    Mode::from_bits_truncate(DIR_MODE),
                )
                .step(|| format!("create {} in {shown}", name.to_string_lossy()))?;
                made.push(current.as_fd(), name, Kind::Dir)
                    .step(|| format!("record {} in {shown}", name.to_string_lossy()))?;
                open_dir(current.as_fd(), name)
            }
            other => other,
        }
        .step(|| {
            format!(
                "open {} in {shown} (symlinks are not followed)",
                name.to_string_lossy()
            )
        })?;
    }
    Ok(current)
}

fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Whether `name` exists in `dir` (a symlink is not followed).
pub(super) fn exists(dir: BorrowedFd<'_>, name: &str) -> bool {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
}

/// Removes whatever non-directory is at `name` in `dir`; nothing there is fine.
pub(super) fn remove_non_dir(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<()> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR => {
            Err(Errno::EISDIR)
        }
        Ok(_) => unlinkat(dir, name, UnlinkatFlags::NoRemoveDir),
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A device node (or fifo) `name` in `dir`, mode exact (the helper's umask is 0), owned by
/// `uid`/`gid` when given.
pub(super) fn node(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: SFlag,
    mode: u32,
    dev: libc::dev_t,
    owner: (Option<u32>, Option<u32>),
    made: &mut Made,
) -> nix::Result<()> {
    mknodat(
        dir,
        name,
        kind,
        Mode::from_bits_truncate(mode & 0o7777),
        dev,
    )?;
    made.push(dir, name, Kind::File)?;
    if owner.0.is_some() || owner.1.is_some() {
        fchownat(
            dir,
            name,
            owner.0.map(Uid::from_raw),
            owner.1.map(Gid::from_raw),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
    }
    Ok(())
}

/// Binds `source` (a guest path) onto a new empty file `name` in `dir`, through the new file's
/// own descriptor.
pub(super) fn bind_file(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    source: &Path,
    made: &mut Made,
) -> nix::Result<()> {
    let file = openat(
        dir,
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(FILE_MODE),
    )?;
    made.push(dir, name, Kind::File)?;
    let target = format!("/proc/self/fd/{}", file.as_raw_fd());
    mount(
        Some(source),
        target.as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )?;
    if let Some(last) = made.entries.last_mut() {
        last.2 = Kind::Mounted;
    }
    Ok(())
}

/// A symlink `name` in `dir` pointing at `target`.
pub(super) fn link(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    target: &str,
    made: &mut Made,
) -> nix::Result<()> {
    symlinkat(target, dir, name)?;
    made.push(dir, name, Kind::File)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_normal_paths_strictly_below_dev_pass() {
        let ok = |p: &str| below_dev(Path::new(p)).unwrap();
        assert_eq!(ok("/dev/null"), [OsString::from("null")]);
        assert_eq!(ok("/dev/net/tun"), [OsString::from("net"), "tun".into()]);
        for bad in [
            "/dev/../bin/x",
            "/dev",
            "/dev/",
            "dev/null",
            "/devices/x",
            "/bin/x",
            "/dev/a/../b",
        ] {
            assert!(below_dev(Path::new(bad)).is_err(), "{bad}");
        }
        // `Path` drops `.` components itself: `/dev/./x` is `/dev/x`.
        assert_eq!(ok("/dev/./x"), [OsString::from("x")]);
    }

    #[test]
    fn the_walk_never_follows_a_symlink_and_undo_removes_what_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("dev/evil")).unwrap();
        let rootfd = open_root(&root).unwrap();
        let mut made = Made::default();
        let names = |s: &[&str]| s.iter().map(OsString::from).collect::<Vec<_>>();
        let sub = dirs(
            rootfd.as_fd(),
            &names(&["dev", "new", "deeper"]),
            &mut made,
            "/dev",
        )
        .unwrap();
        link(sub.as_fd(), OsStr::new("l"), "/proc/self/fd", &mut made).unwrap();
        let err = dirs(
            rootfd.as_fd(),
            &names(&["dev", "evil", "x"]),
            &mut made,
            "/dev",
        )
        .unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOTDIR), "{err}");
        assert!(root.join("dev/new/deeper/l").symlink_metadata().is_ok());
        made.undo();
        assert!(!root.join("dev/new").exists(), "undo left dev/new");
        assert!(
            root.join("dev/evil").symlink_metadata().is_ok(),
            "not made here: kept"
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
