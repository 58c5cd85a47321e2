//! Paths inside the container root: resolving them without escaping the root, read-only
//! remounts that keep the other mount flags, masked and read-only paths.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::mount::{MsFlags, mount};

use super::error::{Result, SetupError, Step};

/// How many symlinks one resolution may follow (Linux's limit).
const MAX_LINKS: usize = 40;

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

/// Creates the empty file `path` with [`FILE_MODE`]; fails if anything is there already (a
/// symlink included: `O_EXCL` does not follow it).
pub(super) fn create_file(path: &Path) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map(drop)
}

/// `path` (absolute or relative, as the spec gives it) resolved under `root`: symlinks are
/// followed as if `root` were `/`, and `..` stops at `root`, so the result never leaves `root`.
/// Components that do not exist are kept as they are.
pub(super) fn secure_join(root: &Path, path: &Path) -> Result<PathBuf> {
    let mut pending: Vec<PathBuf> = vec![path.to_path_buf()];
    let mut resolved = PathBuf::new(); // relative to root
    let mut links = 0;
    while let Some(next) = pending.pop() {
        let mut components: Vec<_> = next.components().collect();
        components.reverse();
        while let Some(c) = components.pop() {
            match c {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::Normal(name) => {
                    let candidate = resolved.join(name);
                    let full = root.join(&candidate);
                    match std::fs::symlink_metadata(&full) {
                        Ok(meta) if meta.file_type().is_symlink() => {
                            links += 1;
                            if links > MAX_LINKS {
                                return Err(SetupError::Step {
                                    step: format!("resolve {} in the root", path.display()),
                                    source: io::Error::from_raw_os_error(libc::ELOOP),
                                });
                            }
                            let target = std::fs::read_link(&full)
                                .step(|| format!("read link {}", full.display()))?;
                            if target.is_absolute() {
                                resolved = PathBuf::new();
                            }
                            // Resolve the target, then whatever was left of this path.
                            let rest: PathBuf = components.iter().rev().collect();
                            pending.push(rest);
                            pending.push(target);
                            break;
                        }
                        _ => resolved = candidate,
                    }
                }
            }
        }
    }
    Ok(root.join(resolved))
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
/// tmpfs, anything else `/dev/null` bound over it. Missing paths are skipped.
pub(super) fn mask(paths: &[String]) -> Result<()> {
    for p in paths {
        let path = Path::new(p);
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).step(|| format!("masked path {p}")),
        };
        if meta.is_dir() {
            mount(
                Some("tmpfs"),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("size=0"),
            )
            .step(|| format!("mask {p} with an empty tmpfs"))?;
        } else {
            mount(
                Some("/dev/null"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .step(|| format!("mask {p} with /dev/null"))?;
        }
    }
    Ok(())
}

/// Makes each path (inside the new root, after the pivot) read-only: a bind mount of itself,
/// remounted read-only. Missing paths are skipped.
pub(super) fn make_readonly(paths: &[String]) -> Result<()> {
    for p in paths {
        let path = Path::new(p);
        match std::fs::symlink_metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).step(|| format!("read-only path {p}")),
        }
        mount(
            Some(path),
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .step(|| format!("bind {p} for read-only"))?;
        remount_readonly(path, true, MsFlags::empty())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_join_stays_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("a/abs")).unwrap();
        std::os::unix::fs::symlink("../../../..", root.join("a/b/up")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let j = |p: &str| secure_join(root, Path::new(p));
        assert_eq!(j("/a/b").unwrap(), root.join("a/b"));
        assert_eq!(j("../../a").unwrap(), root.join("a"));
        assert_eq!(j("/a/abs/passwd").unwrap(), root.join("etc/passwd"));
        assert_eq!(j("/a/b/up/x").unwrap(), root.join("x"));
        assert_eq!(j("/new/dir").unwrap(), root.join("new/dir"));
        let err = j("/loop/x").unwrap_err();
        assert_eq!(err.errno(), Some(libc::ELOOP), "{err}");
    }

    #[test]
    fn created_mount_points_have_runc_modes_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_owned();
        // The helper's umask 0, on a thread with its own fs struct (umask is per fs struct).
        let made = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).unwrap();
            // SAFETY: umask has no memory effects; this thread's fs struct is its own.
            unsafe { libc::umask(0) };
            (
                create_dirs(&base.join("a/b")),
                create_file(&base.join("a/b/f")),
                create_file(&base.join("a/b/f")),
            )
        })
        .join()
        .unwrap();
        made.0.unwrap();
        made.1.unwrap();
        assert_eq!(made.2.unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        let mode = |p: &str| {
            let meta = std::fs::metadata(dir.path().join(p)).unwrap();
            meta.permissions().mode() & 0o7777
        };
        assert_eq!(
            (mode("a"), mode("a/b"), mode("a/b/f")),
            (0o755, 0o755, 0o644)
        );
    }
}
