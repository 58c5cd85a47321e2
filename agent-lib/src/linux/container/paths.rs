//! Paths inside the container root: directories made with runc's modes, read-only remounts that
//! keep the other mount flags, masked and read-only paths (resolved once, mounted by fd).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use std::os::fd::{AsFd, OwnedFd};

use nix::mount::{MsFlags, mount};
use nix::sys::stat::{SFlag, fstat};

use super::beneath::open_root;
use super::error::{Result, SetupError, Step};
use super::in_root::existing_in_root;
use super::new_mount::{attach, clone_tree, new_fs, set_flags};

/// The mode of the directories the helper creates in the rootfs (as runc): the helper runs with
/// umask 0, so a bare `create_dir_all` would make them 0777, writable by any container user.
pub(super) const DIR_MODE: u32 = 0o755;
/// The mode of the files the helper creates as mount points (as runc; 0666 with umask 0).
pub(super) const FILE_MODE: u32 = 0o644;

/// Creates `path` and its missing parents, each with [`DIR_MODE`].
pub(super) fn create_dirs(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Remounts the mount at `path` read-only, keeping its other flags (a bare
/// `MS_REMOUNT|MS_RDONLY` would clear nosuid/nodev/noexec, and in a user namespace fails with
/// EPERM on locked flags). `extra` adds flags.
pub(super) fn remount_readonly(path: &Path, bind: bool, extra: MsFlags) -> Result<()> {
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | extra | current_flags(path)?;
    if bind {
        flags |= MsFlags::MS_BIND;
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
        .step(|| format!("remount {} read-only", path.display()))
}

/// The per-mount flags now in force at `path`, from statvfs.
fn current_flags(path: &Path) -> Result<MsFlags> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| SetupError::spec(format!("NUL in path {}", path.display())))?;
    // SAFETY: an all-zero statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs writes into `st`; `c` is a valid C string.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } < 0 {
        return Err(SetupError::Step {
            step: format!("statvfs {}", path.display()),
            source: io::Error::last_os_error(),
        });
    }
    let table = [
        (libc::ST_NOSUID, MsFlags::MS_NOSUID),
        (libc::ST_NODEV, MsFlags::MS_NODEV),
        (libc::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (libc::ST_NOATIME, MsFlags::MS_NOATIME),
        (libc::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (libc::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    Ok(table
        .iter()
        .filter(|(st_flag, _)| st.f_flag & st_flag != 0)
        .fold(MsFlags::empty(), |acc, (_, ms)| acc | *ms))
}

/// Masks each path (inside the new root, after the pivot): a directory gets an empty read-only
/// tmpfs, anything else one of `nulls` (the guest's `/dev/null`, see
/// [`super::source::null_mounts`]). Each path is resolved once in the root
/// ([`existing_in_root`]: a symlink stays inside it, a magic link is refused) and mounted onto
/// through its descriptor. Missing paths are skipped.
pub(super) fn mask(paths: &[String], nulls: Vec<OwnedFd>) -> Result<()> {
    let root = open_root(Path::new("/"))?;
    let mut nulls = nulls.into_iter();
    for p in paths {
        let Some(target) = existing_in_root(root.as_fd(), Path::new(p))? else {
            continue;
        };
        let st = fstat(&target).step(|| format!("stat masked path {p}"))?;
        let tree = if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
            let flags =
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            new_fs("tmpfs", "tmpfs", &[], flags, p)?
        } else {
            nulls
                .next()
                .ok_or_else(|| SetupError::spec(format!("no /dev/null left to mask {p}")))?
        };
        attach(tree.as_fd(), target.as_fd(), p)?;
    }
    Ok(())
}

/// Makes each path (inside the new root, after the pivot) read-only, with every mount below
/// it: a recursive copy of the mount at it, made read-only while detached, attached over it.
/// Resolved once as [`mask`] does. Missing paths are skipped.
pub(super) fn make_readonly(paths: &[String]) -> Result<()> {
    let root = open_root(Path::new("/"))?;
    for p in paths {
        let Some(target) = existing_in_root(root.as_fd(), Path::new(p))? else {
            continue;
        };
        let tree = clone_tree(target.as_fd(), p, true)?;
        set_flags(tree.as_fd(), MsFlags::MS_RDONLY, true, p)?;
        attach(tree.as_fd(), target.as_fd(), p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::container::in_root::{Want, open_in_root};
    use std::os::fd::AsFd;

    #[test]
    fn created_mount_points_have_runc_modes_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_owned();
        let root = crate::linux::container::beneath::open_root(&base).unwrap();
        // The helper's umask 0, on a thread with its own fs struct (umask is per fs struct).
        let made = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).unwrap();
            // SAFETY: umask has no memory effects; this thread's fs struct is its own.
            unsafe { libc::umask(0) };
            (
                create_dirs(&base.join("a/b")),
                open_in_root(root.as_fd(), Path::new("a/b/f"), Want::File),
                open_in_root(root.as_fd(), Path::new("a/b/g"), Want::Dir),
            )
        })
        .join()
        .unwrap();
        made.0.unwrap();
        made.1.unwrap();
        made.2.unwrap();
        let mode = |p: &str| {
            let meta = std::fs::metadata(dir.path().join(p)).unwrap();
            meta.permissions().mode() & 0o7777
        };
        assert_eq!(
            (mode("a"), mode("a/b"), mode("a/b/f"), mode("a/b/g")),
            (0o755, 0o755, 0o644, 0o755)
        );
    }
}
