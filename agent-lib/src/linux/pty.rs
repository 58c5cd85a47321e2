//! Pseudo terminals for processes started with a terminal.

use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

use nix::fcntl::{OFlag, open};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;

/// A new pseudo terminal: `(master, slave)`, both close-on-exec and opened without becoming the
/// caller's controlling terminal.
///
/// Both ends are close-on-exec from the start (no window in which a concurrent fork can inherit
/// them); the child gets the slave as its stdio through `dup2`, which clears the flag.
pub fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = posix_openpt(flags)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname_r(&master)?;
    // SAFETY: `into_raw_fd` hands over sole ownership of a valid open descriptor.
    let master = unsafe { OwnedFd::from_raw_fd(master.into_raw_fd()) };
    let slave = open(name.as_str(), flags, Mode::empty())?;
    Ok((master, slave))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn both_ends_are_cloexec_and_a_terminal() {
        let (master, slave) = open_pty().unwrap();
        for fd in [&master, &slave] {
            // SAFETY: F_GETFD on a descriptor we own.
            let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
            assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        }
        // SAFETY: isatty only inspects the descriptor.
        assert_eq!(unsafe { libc::isatty(slave.as_raw_fd()) }, 1);
    }
}
