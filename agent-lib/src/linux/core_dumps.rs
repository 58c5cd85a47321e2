//! Whether the agent may dump core: only in developer mode (`agent.devmode`).

use std::io;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// In developer mode, makes the agent dumpable and raises its soft `RLIMIT_CORE` to the hard
/// limit; otherwise sets the soft limit to 0, so no core is written whatever was inherited.
pub fn set_core_dumps(dev_mode: bool) -> io::Result<()> {
    let (_, hard) = getrlimit(Resource::RLIMIT_CORE)?;
    if dev_mode {
        // SAFETY: PR_SET_DUMPABLE takes an integer argument and touches no memory of ours.
        let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        setrlimit(Resource::RLIMIT_CORE, hard, hard)?;
    } else {
        setrlimit(Resource::RLIMIT_CORE, 0, hard)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_mode_opens_and_closes_core_dumps() {
        // In a child process, so the test runner keeps its own limits.
        // SAFETY: the child only makes system calls and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = set_core_dumps(true).is_ok()
                    && getrlimit(Resource::RLIMIT_CORE).is_ok_and(|(s, h)| s == h)
                    // SAFETY: PR_GET_DUMPABLE has no arguments.
                    && unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) } == 1
                    && set_core_dumps(false).is_ok()
                    && getrlimit(Resource::RLIMIT_CORE).is_ok_and(|(s, _)| s == 0);
                // SAFETY: _exit is async-signal-safe and ends the child at once.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
