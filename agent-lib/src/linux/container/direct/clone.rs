//! The clones of a direct exec: the child forked by `clone3` (optionally into a cgroup v2
//! directory) and the cgroup v1 intermediate started on the agent's own memory; both born
//! non-dumpable with every signal blocked, both running [`run`] only.

use std::ffi::c_int;
use std::os::fd::RawFd;

use super::child::{Plan, run};
use crate::linux::container::spawn::{CLONE_INTO_CGROUP, CloneArgs};

/// Forks the child, born in the cgroup of `cgroup_dir` (a cgroup v2 directory) when given,
/// in the pid namespace the calling thread's children are born in, and **non-dumpable**: the
/// flag belongs to the agent's memory, which the fork copies, so the agent makes itself
/// non-dumpable first. No moment then exists in which something in the container's pid
/// namespace could trace the child or read its `/proc` files (runc CVE-2016-9962). Every
/// signal is blocked: until the child has reset the agent's handlers, a signal must not run
/// one of them there (they write to the agent's own descriptors). Returns 0 in the child, its
/// pid in the parent.
///
/// # Safety
/// Fork-like: in a multithreaded process the child may only make raw system calls.
pub(super) unsafe fn fork_into(cgroup_dir: Option<RawFd>) -> std::io::Result<i32> {
    // SAFETY: as this function's.
    unsafe { with_signals_blocked(|| clone3(cgroup_dir)) }
}

/// Starts the intermediate of a cgroup v1 exec ([`Plan::intermediate`]) the way `posix_spawn`
/// starts a child: on the agent's own memory (`CLONE_VM`: no copy of the agent's page tables,
/// no teardown when it exits) and on a stack of its own, while the calling thread waits
/// (`CLONE_VFORK`) until the intermediate has exited. It is born in the agent's pid namespace
/// and cgroup, non-dumpable, with every signal blocked, as [`fork_into`]'s child; nothing in
/// the container can name it. Returns its pid, to be reaped; the process it forked has reported
/// its pid on the socket by then.
///
/// # Safety
/// The plan's descriptors and strings must be valid; the intermediate runs [`run`] only, which
/// writes nothing but its own stack and the socket.
pub(super) unsafe fn spawn_intermediate(plan: &Plan) -> std::io::Result<i32> {
    let stack = Stack::new()?;
    // SAFETY: as this function's; the stack outlives the intermediate (CLONE_VFORK returns once
    // it has exited).
    unsafe {
        with_signals_blocked(|| {
            let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
            let arg = (plan as *const Plan).cast_mut().cast();
            let pid = libc::clone(intermediate_main, stack.top(), flags, arg);
            if pid < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(pid)
        })
    }
}

extern "C" fn intermediate_main(arg: *mut libc::c_void) -> c_int {
    // SAFETY: `arg` is the plan `spawn_intermediate` passed, alive while the caller waits.
    unsafe { run(&*(arg as *const Plan)) }
}

/// Runs `clone` with the agent made non-dumpable (the flag belongs to its memory, and children
/// inherit it) and every signal blocked on the calling thread; the mask comes back in the
/// parent only.
unsafe fn with_signals_blocked(
    clone: impl FnOnce() -> std::io::Result<i32>,
) -> std::io::Result<i32> {
    // SAFETY: prctl on the calling process, no memory effects.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: sigfillset on a local; pthread_sigmask on the calling thread.
    let saved = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let mut saved: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut saved);
        saved
    };
    let forked = clone();
    if !matches!(forked, Ok(0)) {
        // SAFETY: restores the mask saved above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &saved, std::ptr::null_mut()) };
    }
    forked
}

/// The intermediate's stack: anonymous memory below a guard page, unmapped on drop.
struct Stack {
    base: *mut libc::c_void,
}

impl Stack {
    /// Far more than the intermediate uses: it calls a few small functions.
    const SIZE: usize = 64 * 1024;
    const GUARD: usize = 4096;

    fn new() -> std::io::Result<Stack> {
        // SAFETY: a fresh anonymous private mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::GUARD + Self::SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let stack = Stack { base };
        // SAFETY: the lowest page of the mapping made above.
        if unsafe { libc::mprotect(base, Self::GUARD, libc::PROT_NONE) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The highest address: stacks grow down.
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, which the stack pointer starts at.
        unsafe { self.base.cast::<u8>().add(Self::GUARD + Self::SIZE).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used by anyone.
        unsafe { libc::munmap(self.base, Self::GUARD + Self::SIZE) };
    }
}

/// clone3 as fork, optionally `CLONE_INTO_CGROUP`.
unsafe fn clone3(cgroup_dir: Option<RawFd>) -> std::io::Result<i32> {
    let mut args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup_dir {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 without CLONE_VM and without a stack forks; `args` is a valid local.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw const args,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // pid_max is at most 2^22.
    Ok(pid as i32)
}
