//! [`System`] on Linux: nix wrappers around the syscalls.

use std::io;
use std::path::Path;

use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use crate::host::{FsStats, NamespaceKind, System};

/// The kernel's entropy device.
const RANDOM_DEVICE: &str = "/dev/random";

// <linux/random.h>: RNDADDTOENTCNT = _IOW('R', 0x01, int), RNDRESEEDCRNG = _IO('R', 0x07).
nix::ioctl_write_ptr!(rnd_add_to_ent_cnt, b'R', 0x01, libc::c_int);
nix::ioctl_none!(rnd_reseed_crng, b'R', 0x07);

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

    fn reseed_random(&self, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let mut random = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(RANDOM_DEVICE)?;
        random.write_all(data)?;
        // Kata credits one bit per byte of host data: a conservative estimate.
        let bits = libc::c_int::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too much entropy data"))?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&random);
        // SAFETY: `fd` is an open /dev/random; RNDADDTOENTCNT reads one int through the
        // pointer, which points to a live local.
        unsafe { rnd_add_to_ent_cnt(fd, &bits) }?;
        // SAFETY: `fd` is an open /dev/random; RNDRESEEDCRNG takes no argument.
        unsafe { rnd_reseed_crng(fd) }?;
        Ok(())
    }

    fn process_id(&self) -> u32 {
        std::process::id()
    }

    fn pin_namespace(
        &self,
        kind: NamespaceKind,
        hostname: Option<&str>,
        target: &Path,
    ) -> io::Result<()> {
        let target = target.to_owned();
        let hostname = hostname.map(str::to_owned);
        // unshare(2) changes the calling thread only: a short-lived thread enters the new
        // namespace, pins it from /proc/thread-self and exits, leaving the agent's threads as
        // they were.
        std::thread::Builder::new()
            .name(format!("pin-{}-ns", kind.name()))
            .spawn(move || pin_on_this_thread(kind, hostname.as_deref(), &target))?
            .join()
            .map_err(|_| io::Error::other("the namespace pinning thread panicked"))?
    }
}

/// Raises the agent's `RLIMIT_NOFILE` at start: the soft limit to the hard one (1024 of a
/// default 4096 would run out at a few hundred containers and connections) and, as PID 1, both
/// to `fs.nr_open` (the kernel gives init 1024/4096; Kata's agent unit asks for the maximum).
/// Returns the limits now in force; on failure they are unchanged.
pub fn raise_nofile_limit(init_mode: bool) -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut wanted = vec![limit.rlim_max];
    if init_mode
        && let Some(nr_open) = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&n| n > limit.rlim_max)
    {
        wanted.insert(0, nr_open);
    }
    let mut last = io::Error::from_raw_os_error(libc::EPERM);
    for max in wanted {
        let new = libc::rlimit {
            rlim_cur: max,
            rlim_max: max,
        };
        // SAFETY: setrlimit reads a valid local.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
            return Ok((max, max));
        }
        last = io::Error::last_os_error();
    }
    Err(last)
}

/// Runs on a dedicated thread: unshare, set the hostname, bind-mount the thread's nsfs file.
fn pin_on_this_thread(
    kind: NamespaceKind,
    hostname: Option<&str>,
    target: &Path,
) -> io::Result<()> {
    let flags = match kind {
        NamespaceKind::Ipc => CloneFlags::CLONE_NEWIPC,
        NamespaceKind::Uts => CloneFlags::CLONE_NEWUTS,
    };
    nix::sched::unshare(flags)?;
    if let (NamespaceKind::Uts, Some(name)) = (kind, hostname) {
        nix::unistd::sethostname(name)?;
    }
    let source = format!("/proc/thread-self/ns/{}", kind.name());
    nix::mount::mount(
        Some(source.as_str()),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )?;
    Ok(())
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
    #[ignore = "needs root: unshare(2) and mount(2)"]
    fn pin_namespace_keeps_a_new_uts_namespace_alive() {
        crate::linux::test_support::require_root("pin a UTS namespace");
        crate::linux::test_support::in_mount_ns(|| {
            let dir = tempfile::tempdir().unwrap();
            let target = dir.path().join("uts");
            std::fs::write(&target, b"").unwrap();
            let before = nix::unistd::gethostname().unwrap();
            LinuxSystem
                .pin_namespace(NamespaceKind::Uts, Some("pinned-uts"), &target)
                .unwrap();
            assert_eq!(before, nix::unistd::gethostname().unwrap());
            let mounts = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
            assert!(mounts.contains(target.to_str().unwrap()), "{mounts}");
            nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH).unwrap();
        });
    }

    #[test]
    #[ignore = "needs root: RNDADDTOENTCNT and RNDRESEEDCRNG need CAP_SYS_ADMIN"]
    fn reseed_random_feeds_the_kernel_pool() {
        crate::linux::test_support::require_root("reseed /dev/random");
        LinuxSystem.reseed_random(&[0x5a; 64]).unwrap();
    }

    #[test]
    fn the_ioctl_numbers_are_the_kernel_ones() {
        assert_eq!(nix::request_code_write!(b'R', 0x01, 4), 0x4004_5201);
        assert_eq!(nix::request_code_none!(b'R', 0x07), 0x5207);
    }

    #[test]
    fn the_nofile_soft_limit_is_raised_to_the_hard_one() {
        // rlimits are per process: this only raises the test binary's soft limit.
        let (soft, hard) = raise_nofile_limit(false).unwrap();
        assert_eq!(soft, hard);
        let mut now = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into a valid local.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) }, 0);
        assert_eq!((now.rlim_cur, now.rlim_max), (soft, hard));
    }

    #[test]
    fn swapon_of_a_missing_file_fails_cleanly() {
        let err = LinuxSystem
            .swapon(Path::new("/no/such/swapfile"))
            .unwrap_err();
        assert!(err.raw_os_error().is_some());
    }
}
