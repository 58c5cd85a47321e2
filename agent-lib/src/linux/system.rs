//! [`System`] on Linux: nix wrappers around the syscalls.

use std::io;
use std::path::Path;

use crate::host::{FsStats, System};

/// The real [`System`].
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSystem;

impl LinuxSystem {
    /// The real system.
    pub fn new() -> Self {
        LinuxSystem
    }
}

impl System for LinuxSystem {
    fn set_hostname(&self, name: &str) -> io::Result<()> {
        nix::unistd::sethostname(name).map_err(io::Error::from)
    }

    fn swapon(&self, path: &Path) -> io::Result<()> {
        let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: `path` is a valid NUL-terminated string; swapon reads it only.
        if unsafe { libc::swapon(path.as_ptr(), 0) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn statfs(&self, path: &Path) -> io::Result<FsStats> {
        let st = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
        Ok(FsStats {
            block_size: st.fragment_size(),
            blocks: st.blocks(),
            blocks_free: st.blocks_free(),
            blocks_available: st.blocks_available(),
            files: st.files(),
            files_free: st.files_free(),
        })
    }

    fn set_time(&self, secs: i64, usecs: i64) -> io::Result<()> {
        if !(0..1_000_000).contains(&usecs) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "usecs out of range",
            ));
        }
        let ts = nix::sys::time::TimeSpec::new(secs, usecs * 1000);
        nix::time::clock_settime(nix::time::ClockId::CLOCK_REALTIME, ts).map_err(io::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statfs_reports_the_filesystem_of_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let stats = LinuxSystem.statfs(dir.path()).unwrap();
        assert!(stats.block_size > 0);
        assert!(stats.blocks >= stats.blocks_free);
        assert!(stats.blocks_free >= stats.blocks_available);
        assert!(LinuxSystem.statfs(Path::new("/no/such/path")).is_err());
    }

    #[test]
    fn swapon_of_a_missing_file_fails_cleanly() {
        let err = LinuxSystem
            .swapon(Path::new("/no/such/swapfile"))
            .unwrap_err();
        assert!(err.raw_os_error().is_some());
    }
}
