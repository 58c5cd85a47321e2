//! [`LinuxSysfs`]: the [`Sysfs`] and [`AgentFiles`] seams on the real filesystem, under a root
//! directory.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use crate::host::{AgentFiles, FileMeta, NodeInfo, NodeKind, Sysfs};

/// The real [`Sysfs`]: absolute guest paths (`/sys/...`, `/dev/...`) resolved under `root`.
///
/// `root` is `/` in a guest; tests point it at a temporary directory. Paths that are relative
/// or contain `..` are rejected with `InvalidInput`. Symbolic links are followed by the kernel
/// as usual, so a link with an absolute target leads outside `root`.
#[derive(Clone, Debug)]
pub struct LinuxSysfs {
    /// The directory guest paths are resolved under.
    pub root: PathBuf,
}

impl LinuxSysfs {
    /// Resolves guest paths under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LinuxSysfs { root: root.into() }
    }

    /// The host path for the guest path `path`.
    pub fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        if !path.is_absolute() {
            return Err(invalid(path, "path is not absolute"));
        }
        let mut resolved = self.root.clone();
        for component in path.components() {
            match component {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(name) => resolved.push(name),
                Component::ParentDir => return Err(invalid(path, "path contains `..`")),
                Component::Prefix(_) => return Err(invalid(path, "path has a prefix")),
            }
        }
        Ok(resolved)
    }
}

fn invalid(path: &Path, reason: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{reason}: {}", path.display()),
    )
}

impl AgentFiles for LinuxSysfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(self.resolve(path)?)
    }

    fn create_file(&self, path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let resolved = self.resolve(path)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&resolved)?;
        file.write_all(data)?;
        // The mode of an existing file, and bits the umask removed, are set explicitly.
        file.set_permissions(fs::Permissions::from_mode(mode))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let resolved = self.resolve(path)?;
        match fs::symlink_metadata(&resolved)?.is_dir() {
            true => fs::remove_dir(resolved),
            false => fs::remove_file(resolved),
        }
    }

    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        let resolved = self.resolve(path)?;
        tracing::debug!(path = %path.display(), ?uid, ?gid, "chown");
        std::os::unix::fs::lchown(resolved, uid, gid)
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let resolved = self.resolve(path)?;
        tracing::debug!(path = %path.display(), mode = format!("{mode:o}"), "chmod");
        fs::set_permissions(resolved, fs::Permissions::from_mode(mode & 0o7777))
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target, self.resolve(link)?)
    }
}

impl Sysfs for LinuxSysfs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(self.resolve(path)?)
    }

    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let resolved = self.resolve(path)?;
        tracing::debug!(path = %path.display(), len = data.len(), "sysfs write");
        // No O_CREAT: attributes are written, never created. O_TRUNC as a shell's `>` does, so
        // a regular file (a test root) ends up holding exactly `data`.
        let mut file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(resolved)?;
        file.write_all(data)
    }

    fn symlink_metadata(&self, path: &Path) -> io::Result<FileMeta> {
        let meta = fs::symlink_metadata(self.resolve(path)?)?;
        Ok(FileMeta {
            kind: kind_of(meta.file_type()),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: meta.len(),
            modified: meta.modified()?,
        })
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let mut names = fs::read_dir(self.resolve(path)?)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<io::Result<Vec<_>>>()?;
        names.sort();
        Ok(names)
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        fs::read_link(self.resolve(path)?)
    }

    fn stat(&self, path: &Path) -> io::Result<NodeInfo> {
        let meta = fs::metadata(self.resolve(path)?)?;
        let kind = kind_of(meta.file_type());
        let (major, minor) = match kind {
            NodeKind::BlockDevice | NodeKind::CharDevice => (
                nix::sys::stat::major(meta.rdev()),
                nix::sys::stat::minor(meta.rdev()),
            ),
            _ => (0, 0),
        };
        Ok(NodeInfo {
            kind,
            mode: meta.mode() & 0o7777,
            major,
            minor,
        })
    }
}

fn kind_of(ft: fs::FileType) -> NodeKind {
    if ft.is_file() {
        NodeKind::File
    } else if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_block_device() {
        NodeKind::BlockDevice
    } else if ft.is_char_device() {
        NodeKind::CharDevice
    } else {
        NodeKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, LinuxSysfs) {
        let dir = tempfile::tempdir().unwrap();
        let sys = LinuxSysfs::new(dir.path());
        let cpu = dir.path().join("sys/devices/system/cpu");
        fs::create_dir_all(cpu.join("cpu1")).unwrap();
        fs::create_dir_all(cpu.join("cpu0")).unwrap();
        fs::write(cpu.join("online"), "0-1\n").unwrap();
        fs::write(cpu.join("cpu1/online"), "0\n").unwrap();
        std::os::unix::fs::symlink("devices/system/cpu", dir.path().join("sys/cpu")).unwrap();
        (dir, sys)
    }

    #[test]
    fn reads_lists_and_follows_links() {
        let (_dir, sys) = tree();
        assert_eq!(
            sys.read(Path::new("/sys/devices/system/cpu/online"))
                .unwrap(),
            b"0-1\n"
        );
        assert_eq!(
            sys.read_string(Path::new("/sys/cpu/online")).unwrap(),
            "0-1"
        );
        assert_eq!(
            sys.read_dir(Path::new("/sys/devices/system/cpu")).unwrap(),
            vec![OsString::from("cpu0"), "cpu1".into(), "online".into()]
        );
        assert_eq!(
            sys.read_link(Path::new("/sys/cpu")).unwrap(),
            Path::new("devices/system/cpu")
        );
        assert!(sys.exists(Path::new("/sys/./cpu/cpu0")));
        assert!(!sys.exists(Path::new("/sys/cpu/cpu7")));
    }

    #[test]
    fn writes_existing_files_only() {
        let (dir, sys) = tree();
        sys.write(Path::new("/sys/devices/system/cpu/cpu1/online"), b"1")
            .unwrap();
        assert_eq!(
            fs::read(dir.path().join("sys/devices/system/cpu/cpu1/online")).unwrap(),
            b"1"
        );
        let err = sys
            .write(Path::new("/sys/devices/system/cpu/cpu9/online"), b"1")
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = sys.write(Path::new("/sys/new-attr"), b"1").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(!dir.path().join("sys/new-attr").exists());
    }

    #[test]
    fn rejects_relative_and_parent_paths() {
        let (_dir, sys) = tree();
        for bad in ["sys/cpu", "/sys/../etc/passwd", "/..", ""] {
            let err = sys.read(Path::new(bad)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad}");
            let err = sys.write(Path::new(bad), b"x").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
        assert!(!sys.exists(Path::new("/sys/cpu/../cpu")));
    }

    #[test]
    fn stat_reports_kind_mode_and_device_numbers() {
        let (dir, sys) = tree();
        let info = sys
            .stat(Path::new("/sys/devices/system/cpu/online"))
            .unwrap();
        assert_eq!((info.kind, info.major, info.minor), (NodeKind::File, 0, 0));
        fs::set_permissions(
            dir.path().join("sys/devices/system/cpu/online"),
            std::os::unix::fs::PermissionsExt::from_mode(0o640),
        )
        .unwrap();
        let info = sys
            .stat(Path::new("/sys/devices/system/cpu/online"))
            .unwrap();
        assert_eq!(info.mode, 0o640);
        assert_eq!(sys.stat(Path::new("/sys/cpu")).unwrap().kind, NodeKind::Dir);

        // A character device node of the real system: /dev/null is 1:3.
        let real = LinuxSysfs::new("/");
        let null = real.stat(Path::new("/dev/null")).unwrap();
        assert_eq!(
            (null.kind, null.major, null.minor),
            (NodeKind::CharDevice, 1, 3)
        );
    }
}
