//! Pseudo terminals for processes started with a terminal.

use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

use nix::fcntl::{OFlag, open};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;
use std::os::fd::{AsRawFd, BorrowedFd};

nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);

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

/// Sets the window size of the terminal behind `fd` (`TIOCSWINSZ`); the kernel sends
/// `SIGWINCH` to its foreground process group.
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` through the pointer, which points to a live local
    // value; `fd` is borrowed open for the call.
    unsafe { tiocswinsz(fd.as_raw_fd(), &size) }?;
    Ok(())
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

    #[test]
    fn window_size_reads_back_from_the_slave() {
        use std::os::fd::AsFd;
        let (master, slave) = open_pty().unwrap();
        set_window_size(master.as_fd(), 33, 101).unwrap();
        let size = nix::libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let mut size = size;
        // SAFETY: TIOCGWINSZ writes one `winsize` through a pointer to a live local value.
        let rc = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
        assert_eq!(rc, 0);
        assert_eq!((size.ws_row, size.ws_col), (33, 101));
        let (_, pipe) = nix::unistd::pipe().unwrap();
        let err = set_window_size(pipe.as_fd(), 1, 1).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTTY));
    }
}
