//! Bind-mount sources, opened once and used only through their descriptor. A source is a guest
//! path (the shared directory, a storage's mount point, a sandbox folder), but its later
//! components may lie in a volume another container writes to: resolved by path at mount time,
//! a symlink swapped in there (`renameat2(RENAME_EXCHANGE)`, even between a check and the
//! mount) would bind whatever it points at, a guest directory included, into the container.
//! So a source is opened with `openat2(RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`: a symlink
//! anywhere in it is refused, and the mount is cloned from the descriptor (`open_tree`).
//!
//! The masking file (`/dev/null`) is the guest's own, cloned before the pivot and checked to be
//! the null device: never the container's `/dev/null`, which the container may have made a
//! symlink (runc CVE-2025-31133).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{SFlag, fstat, major, minor};

use super::error::{Result, SetupError, Step};
use super::new_mount::clone_tree;

/// An opened bind source: its descriptor and whether it is a directory.
#[derive(Debug)]
pub(super) struct Source {
    pub(super) fd: OwnedFd,
    pub(super) is_dir: bool,
}

/// Opens the bind source `source` (absolute) of the mount on `shown`, refusing symlinks.
pub(super) fn open_source(source: &Path, shown: &str) -> Result<Source> {
    let rel = source.strip_prefix("/").map_err(|_| {
        SetupError::spec(format!(
            "bind source {} of {shown} is not absolute",
            source.display()
        ))
    })?;
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .step(|| "open /".to_owned())?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let path = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let fd = loop {
        match openat2(&root, path, how) {
            Err(Errno::EAGAIN) => continue,
            Err(Errno::ELOOP) => {
                return Err(SetupError::Step {
                    step: format!(
                        "bind source {} of {shown}: a symbolic link is in the path (bind \
                         sources are never followed through links)",
                        source.display()
                    ),
                    source: std::io::Error::from_raw_os_error(libc::ELOOP),
                });
            }
            other => break other,
        }
    }
    .step(|| format!("open the bind source {} of {shown}", source.display()))?;
    let st = fstat(&fd).step(|| format!("stat the bind source {}", source.display()))?;
    let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    Ok(Source { fd, is_dir })
}

/// Detached bind mounts of the guest's `/dev/null`, one per file to mask, made before the
/// pivot (a mount can only be cloned from the helper's own mount namespace, which loses the
/// guest's `/dev` at the pivot). Each is checked to be the null device (char 1:3).
pub(super) fn null_mounts(count: usize) -> Result<Vec<OwnedFd>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let null = nix::fcntl::open(
        "/dev/null",
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .step(|| "open the guest's /dev/null".to_owned())?;
    let st = fstat(&null).step(|| "stat the guest's /dev/null".to_owned())?;
    let is_char = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_char || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3 {
        return Err(SetupError::spec(
            "the guest's /dev/null is not the null device: no masked path can be masked",
        ));
    }
    (0..count)
        .map(|_| clone_tree(null.as_fd(), "/dev/null", false))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_opened_only_without_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        // The temporary directory itself may sit below a symlink: resolve it first.
        let base = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(base.join("vol/d")).unwrap();
        std::fs::write(base.join("vol/f"), "x").unwrap();
        std::os::unix::fs::symlink(base.join("vol/d"), base.join("vol/link")).unwrap();
        let dir_source = open_source(&base.join("vol/d"), "/mnt").unwrap();
        assert!(dir_source.is_dir);
        assert!(!open_source(&base.join("vol/f"), "/mnt").unwrap().is_dir);
        for bad in ["vol/link", "vol/link/x"] {
            let err = open_source(&base.join(bad), "/mnt").unwrap_err();
            assert_eq!(err.errno(), Some(libc::ELOOP), "{bad}: {err}");
            assert!(err.to_string().contains("symbolic link"), "{err}");
        }
        let err = open_source(Path::new("relative/x"), "/mnt").unwrap_err();
        assert!(err.to_string().contains("not absolute"), "{err}");
    }
}
