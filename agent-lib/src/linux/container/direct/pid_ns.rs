//! Forking straight into a container's pid namespace. `setns(fd, CLONE_NEWPID)` moves no one:
//! it sets the pid namespace the calling thread's *next children* are born in. The launching
//! thread enters the container's for one clone and goes back to the agent's right after, so one
//! fork puts the process in place, with no intermediate process to fork, report and reap.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// The agent's own pid namespace, where every thread's children are born except for the
/// moment a [`ChildrenIn`] guard lives.
#[derive(Debug)]
pub(super) struct HomePidNs(OwnedFd);

impl HomePidNs {
    /// Opens the agent's active pid namespace.
    pub(super) fn open() -> io::Result<HomePidNs> {
        File::open("/proc/self/ns/pid")
            .map(|f| HomePidNs(f.into()))
            .map_err(|e| io::Error::new(e.kind(), format!("open /proc/self/ns/pid: {e}")))
    }
}

/// While alive, the calling thread's children are born in a container's pid namespace; on drop
/// they are born in the agent's again.
#[derive(Debug)]
pub(super) struct ChildrenIn<'a> {
    home: &'a HomePidNs,
}

impl<'a> ChildrenIn<'a> {
    /// Makes the calling thread's next children be born in the pid namespace of the process
    /// behind `pidfd`.
    pub(super) fn enter(pidfd: BorrowedFd<'_>, home: &'a HomePidNs) -> io::Result<ChildrenIn<'a>> {
        setns_pid(pidfd.as_raw_fd())?;
        Ok(ChildrenIn { home })
    }
}

impl Drop for ChildrenIn<'_> {
    /// Going back to the agent's own (active) namespace is always allowed; it can fail only if
    /// the kernel refuses a few bytes for the new `nsproxy`. The thread would then start every
    /// later child (hooks, other containers' processes) inside this container, so the agent
    /// aborts instead.
    fn drop(&mut self) {
        if let Err(e) = setns_pid(self.home.0.as_raw_fd()) {
            tracing::error!(error = %e, "cannot return to the agent's pid namespace; aborting");
            std::process::abort();
        }
    }
}

fn setns_pid(fd: i32) -> io::Result<()> {
    // SAFETY: setns on a descriptor we hold; it changes only the namespace of later children.
    if unsafe { libc::setns(fd, libc::CLONE_NEWPID) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn children_ns() -> std::path::PathBuf {
        std::fs::read_link("/proc/thread-self/ns/pid_for_children").unwrap()
    }

    #[test]
    #[ignore = "needs root: setns(CLONE_NEWPID)"]
    fn the_thread_goes_home_when_the_guard_drops() {
        crate::linux::test_support::require_root("setns(CLONE_NEWPID)");
        let home = HomePidNs::open().unwrap();
        let before = children_ns();
        // A child in a new pid namespace stands for a container's init.
        let mut init = std::process::Command::new("unshare")
            .args(["--pid", "--fork", "sleep", "30"])
            .spawn()
            .unwrap();
        let grandchild = wait_for_child_of(init.id() as i32);
        // SAFETY: pidfd_open returns a new descriptor we own.
        let pidfd = unsafe {
            let fd = libc::syscall(libc::SYS_pidfd_open, grandchild, 0);
            assert!(fd >= 0, "pidfd_open: {}", io::Error::last_os_error());
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32)
        };
        let theirs = std::fs::read_link(format!("/proc/{grandchild}/ns/pid")).unwrap();
        assert_ne!(theirs, before);
        {
            let _in = ChildrenIn::enter(std::os::fd::AsFd::as_fd(&pidfd), &home).unwrap();
            assert_eq!(children_ns(), theirs);
        }
        assert_eq!(children_ns(), before, "the thread did not come back");
        init.kill().unwrap();
        init.wait().unwrap();
    }

    /// The pid of `parent`'s first child, once it exists.
    fn wait_for_child_of(parent: i32) -> i32 {
        let path = format!("/proc/{parent}/task/{parent}/children");
        for _ in 0..500 {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if let Some(pid) = text.split_whitespace().next() {
                return pid.parse().unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{parent} forked no child");
    }
}
