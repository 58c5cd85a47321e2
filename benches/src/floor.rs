//! The floor of a real exec, measured by the bench itself: what any exec into a running
//! container must do, with no agent around it. Fork straight into the init's pid namespace (the
//! forking thread sets its children's pid namespace to the init's for the fork, as the agent
//! does); in the child join the init's other namespaces (one `setns` through a pidfd), enter its
//! root and execute `/bin/true`; wait for it.

use std::ffi::{CString, c_char};
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{Context, bail};

/// A prepared floor exec into the container whose init is `init_pid`.
#[derive(Debug)]
pub struct ExecFloor {
    pidfd: OwnedFd,
    root: OwnedFd,
    /// `setns` flags of the init's namespaces that differ from ours, pid aside.
    flags: libc::c_int,
    /// The init's pid namespace differs from ours: fork into it.
    pid_ns: bool,
    /// Our own pid namespace, to go back to after the fork.
    home: OwnedFd,
    program: CString,
}

impl ExecFloor {
    /// Opens the init's pidfd and root, and compares its namespaces with this process's.
    pub fn new(init_pid: i32) -> anyhow::Result<ExecFloor> {
        // SAFETY: pidfd_open has no memory effects; the result is a new descriptor we own.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, init_pid, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("pidfd_open");
        }
        // SAFETY: see above.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let root = OwnedFd::from(
            fs::File::open(format!("/proc/{init_pid}/root")).context("open the init's root")?,
        );
        let mut flags = 0;
        for (kind, flag) in [
            ("mnt", libc::CLONE_NEWNS),
            ("uts", libc::CLONE_NEWUTS),
            ("ipc", libc::CLONE_NEWIPC),
            ("net", libc::CLONE_NEWNET),
            ("cgroup", libc::CLONE_NEWCGROUP),
        ] {
            if !same_ns(init_pid, kind)? {
                flags |= flag;
            }
        }
        Ok(ExecFloor {
            pidfd,
            root,
            flags,
            pid_ns: !same_ns(init_pid, "pid")?,
            home: fs::File::open("/proc/self/ns/pid")?.into(),
            program: CString::from(c"/bin/true"),
        })
    }

    /// One exec of `/bin/true` in the container, waited for.
    pub fn run(&self) -> anyhow::Result<()> {
        let argv: [*const c_char; 2] = [self.program.as_ptr(), std::ptr::null()];
        let envp: [*const c_char; 1] = [std::ptr::null()];
        if self.pid_ns {
            setns(&self.pidfd, libc::CLONE_NEWPID).context("enter the pid namespace")?;
        }
        // SAFETY: the child makes async-signal-safe system calls only, on values prepared above,
        // and ends in execve or _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: in the child; see above.
            unsafe { self.child(&argv, &envp) }
        }
        let forked = std::io::Error::last_os_error();
        if self.pid_ns {
            setns(&self.home, libc::CLONE_NEWPID).context("return to our pid namespace")?;
        }
        if pid < 0 {
            return Err(forked).context("fork");
        }
        match wait(pid)? {
            0 => Ok(()),
            status => bail!("the floor exec ended with status {status:#x}"),
        }
    }

    /// Joins, enters the root and executes.
    unsafe fn child(&self, argv: &[*const c_char; 2], envp: &[*const c_char; 1]) -> ! {
        // SAFETY: raw system calls on descriptors and strings valid in the child.
        unsafe {
            if (self.flags != 0 && libc::setns(self.pidfd.as_raw_fd(), self.flags) < 0)
                || libc::fchdir(self.root.as_raw_fd()) < 0
                || libc::chroot(c".".as_ptr()) < 0
            {
                libc::_exit(120);
            }
            libc::execve(self.program.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127)
        }
    }
}

fn same_ns(pid: i32, kind: &str) -> anyhow::Result<bool> {
    let theirs = fs::read_link(format!("/proc/{pid}/ns/{kind}"))?;
    Ok(theirs == fs::read_link(format!("/proc/self/ns/{kind}"))?)
}

fn setns(fd: &OwnedFd, flag: libc::c_int) -> std::io::Result<()> {
    // SAFETY: setns on a descriptor we own; CLONE_NEWPID changes only where children are born.
    if unsafe { libc::setns(fd.as_raw_fd(), flag) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn wait(pid: i32) -> anyhow::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child into a local.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            return Ok(status);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("waitpid");
        }
    }
}
