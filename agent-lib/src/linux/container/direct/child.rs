//! The children of a direct exec, between the clone and the program's `execve`: raw system
//! calls on a [`Plan`] made before the clone, nothing else. No allocation, no lock, no glibc
//! wrapper that consults thread state (the agent is multithreaded: another thread may have held
//! the allocator's lock at the clone), no panic. Each failure is written to the socket as a
//! [`Record`] (step, errno, detail) before `_exit`.

use std::ffi::{CString, c_char, c_int};
use std::os::fd::RawFd;

use super::step::{Record, Step};

/// `_LINUX_CAPABILITY_VERSION_3`.
const CAP_VERSION_3: u32 = 0x2008_0522;

/// The capability sets of a process that asks for them, as bit masks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct CapMasks {
    /// Capabilities kept in the bounding set (the others are dropped).
    pub(super) bounding: u64,
    pub(super) effective: u64,
    pub(super) permitted: u64,
    pub(super) inheritable: u64,
    pub(super) ambient: u64,
    /// The highest capability number of this kernel.
    pub(super) last: u8,
}

/// Everything the children do, prepared by the agent: descriptors (all at or above the
/// launcher's high mark, close-on-exec), C strings, pointer arrays, masks and BPF programs.
pub(super) struct Plan {
    /// stdin, stdout, stderr, moved onto 0..=2.
    pub(super) stdio: [RawFd; 3],
    /// The child's end of the report socket.
    pub(super) sock: RawFd,
    pub(super) tty: bool,
    /// Wait for `Go` on the socket after `Ready`.
    pub(super) hold: bool,
    /// cgroup v1: `tasks` of each hierarchy, written (`0`) by the child before anything.
    pub(super) cgroup_tasks: Vec<RawFd>,
    /// A pidfd of the container's init.
    pub(super) pidfd: RawFd,
    /// cgroup v1 with a pid namespace to join: the child joins the cgroup, then the pid
    /// namespace, and forks the process there. Otherwise the child is the process.
    pub(super) intermediate: bool,
    /// `setns` flags of the other namespaces that differ from the agent's.
    pub(super) ns_flags: c_int,
    /// `O_PATH` of the container's root, opened before the pidfd proved the init alive.
    pub(super) root: RawFd,
    pub(super) rlimits: Vec<(c_int, libc::rlimit)>,
    pub(super) oom_score_adj: Option<CString>,
    /// LSM attribute files and what to write into each, for the next execve.
    pub(super) labels: Vec<(CString, CString)>,
    pub(super) caps: Option<CapMasks>,
    pub(super) groups: Vec<libc::gid_t>,
    pub(super) uid: libc::uid_t,
    pub(super) gid: libc::gid_t,
    pub(super) no_new_privs: bool,
    pub(super) seccomp: Vec<libc::sock_fprog>,
    pub(super) seccomp_flags: libc::c_ulong,
    pub(super) cwd: CString,
    pub(super) umask: libc::mode_t,
    /// Paths to try in order: the first regular file with an execute bit is executed.
    pub(super) candidates: Vec<CString>,
    /// NULL-terminated, pointing into strings the plan's owner keeps alive.
    pub(super) argv: Vec<*const c_char>,
    pub(super) envp: Vec<*const c_char>,
    /// The launching thread's signal mask, restored just before the exec (the children start
    /// with every signal blocked: see [`super::clone::fork_into`]).
    pub(super) sigmask: libc::sigset_t,
}

/// The calling thread's signal mask.
pub(super) fn current_sigmask() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is valid; pthread_sigmask with no new set only reads the mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set);
        set
    }
}

/// Reports `step` with the current errno and exits.
///
/// # Safety
/// In a child of the direct exec.
unsafe fn fail(plan: &Plan, step: Step, detail: i32) -> ! {
    // SAFETY: errno is thread-local; the write reads a stack buffer.
    unsafe {
        let errno = *libc::__errno_location();
        report(plan, step, errno, detail);
        libc::_exit(1)
    }
}

/// Writes one record to the socket (best effort: nobody to tell if the agent is gone).
unsafe fn report(plan: &Plan, step: Step, errno: i32, detail: i32) {
    let bytes = Record {
        step,
        errno,
        detail,
    }
    .encode();
    // SAFETY: a write of a stack buffer.
    unsafe { libc::write(plan.sock, bytes.as_ptr().cast(), bytes.len()) };
}

/// A raw syscall's result as success or failure.
fn ok(ret: libc::c_long) -> bool {
    ret >= 0
}

/// The child of the clone: non-dumpable, in the container's cgroup on v1 (the process must not
/// be seen in the container before it is in its cgroup, and v1 has no `CLONE_INTO_CGROUP`),
/// then either the process itself or, when it is the [`Plan::intermediate`], the parent of the
/// process it forks into the container's pid namespace as a sibling (`CLONE_PARENT`: a child
/// of the agent, reaped by it): it reports the process's pid and exits.
///
/// # Safety
/// Only in the child of [`super::clone::fork_into`] or [`super::clone::spawn_intermediate`], with a plan whose descriptors
/// and strings are valid.
pub(super) unsafe fn run(plan: &Plan) -> ! {
    // SAFETY: system calls on the plan's descriptors; see the module doc.
    unsafe {
        default_handlers();
        non_dumpable(plan);
        for (i, &fd) in plan.cgroup_tasks.iter().enumerate() {
            if libc::write(fd, c"0".as_ptr().cast(), 1) != 1 {
                fail(plan, Step::JoinCgroup, i as i32);
            }
        }
        if plan.intermediate {
            fork_into_pid_ns(plan);
        }
        last(plan)
    }
}

/// Joins the container's pid namespace and forks the process there; returns in the process
/// only.
unsafe fn fork_into_pid_ns(plan: &Plan) {
    // SAFETY: system calls on the plan's descriptors.
    unsafe {
        if !ok(libc::syscall(
            libc::SYS_setns,
            plan.pidfd,
            libc::CLONE_NEWPID,
        )) {
            fail(plan, Step::JoinPidNs, 0);
        }
        let flags = libc::CLONE_PARENT as libc::c_ulong;
        let pid = libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0);
        if pid == 0 {
            return;
        }
        if pid < 0 {
            fail(plan, Step::ForkIntoPidNs, 0);
        }
        report(plan, Step::Pid, 0, pid as i32);
        libc::_exit(0)
    }
}

/// The process itself, from its standard streams to the program's `execve`.
///
/// # Safety
/// As [`run`].
unsafe fn last(plan: &Plan) -> ! {
    // SAFETY: system calls on the plan's descriptors and buffers.
    unsafe {
        non_dumpable(plan);
        for (target, &fd) in plan.stdio.iter().enumerate() {
            if libc::dup2(fd, target as RawFd) < 0 {
                fail(plan, Step::Stdio, target as i32);
            }
        }
        if libc::setsid() < 0 {
            fail(plan, Step::Session, 0);
        }
        if plan.tty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
            fail(plan, Step::Ctty, 0);
        }
        limits(plan);
        enter(plan);
        let program = resolve(plan);
        credentials(plan);
        non_dumpable(plan);
        if plan.hold {
            report(plan, Step::Ready, 0, 0);
            wait_go(plan);
        }
        if plan.no_new_privs {
            install_seccomp(plan);
        }
        libc::umask(plan.umask);
        libc::sigprocmask(libc::SIG_SETMASK, &plan.sigmask, std::ptr::null_mut());
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        );
        libc::execve(program, plan.argv.as_ptr(), plan.envp.as_ptr());
        fail(plan, Step::Exec, 0)
    }
}

/// Every signal the agent handles goes back to its default action (an ignored one stays
/// ignored, as across an execve), so that a signal the container sends to the process before its
/// exec never runs an agent handler.
unsafe fn default_handlers() {
    // The kernel's `struct sigaction` starts with the handler on every architecture; all zeros
    // is SIG_DFL with no flags and an empty mask. Raw calls: glibc hides its own two signals.
    const SIG_IGN: u64 = 1;
    let default = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let mut old = [0u64; 4];
        // SAFETY: rt_sigaction reads and writes locals large enough for the kernel's struct.
        unsafe {
            let queried = libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<u64>(),
                old.as_mut_ptr(),
                8,
            );
            if queried == 0 && old[0] != 0 && old[0] != SIG_IGN {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    default.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    8,
                );
            }
        }
    }
}

/// Nothing in the container may ptrace or read the process before its program runs (runc
/// CVE-2016-9962); a namespace entry or credential change can reset the flag, so it is set
/// again after each.
unsafe fn non_dumpable(plan: &Plan) {
    // SAFETY: prctl on the calling process.
    if !ok(unsafe { libc::syscall(libc::SYS_prctl, libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }) {
        // SAFETY: in a child.
        unsafe { fail(plan, Step::NonDumpable, 0) }
    }
}

/// rlimits, OOM score and LSM exec labels, through the agent's `/proc` (before entering the
/// container, whose `/proc` the container controls).
unsafe fn limits(plan: &Plan) {
    // SAFETY: system calls on the plan's buffers.
    unsafe {
        for (i, (resource, limit)) in plan.rlimits.iter().enumerate() {
            if !ok(libc::syscall(
                libc::SYS_prlimit64,
                0,
                *resource,
                limit as *const libc::rlimit,
                0,
            )) {
                fail(plan, Step::Rlimit, i as i32);
            }
        }
        if let Some(adj) = &plan.oom_score_adj
            && !write_file(c"/proc/self/oom_score_adj".as_ptr(), adj)
        {
            fail(plan, Step::OomScoreAdj, 0);
        }
        for (i, (path, value)) in plan.labels.iter().enumerate() {
            if !write_file(path.as_ptr(), value) {
                fail(plan, Step::Label, i as i32);
            }
        }
    }
}

/// One `write(2)` of `value` to an existing file; false (errno set) on failure.
unsafe fn write_file(path: *const c_char, value: &CString) -> bool {
    // SAFETY: open, write, close on a NUL-terminated path and a valid buffer.
    unsafe {
        let fd = libc::open(path, libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let bytes = value.as_bytes();
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let written = n >= 0 && n as usize == bytes.len();
        if n >= 0 && !written {
            *libc::__errno_location() = libc::EIO;
        }
        libc::close(fd);
        written
    }
}

/// The container's other namespaces, all at once through the pidfd, then its root.
unsafe fn enter(plan: &Plan) {
    // SAFETY: system calls on the plan's descriptors.
    unsafe {
        if plan.ns_flags != 0 {
            if !ok(libc::syscall(libc::SYS_setns, plan.pidfd, plan.ns_flags)) {
                fail(plan, Step::JoinNamespaces, 0);
            }
            non_dumpable(plan);
        }
        if libc::fchdir(plan.root) < 0 {
            fail(plan, Step::EnterRoot, 0);
        }
        if libc::chroot(c".".as_ptr()) < 0 || libc::chdir(c"/".as_ptr()) < 0 {
            fail(plan, Step::Chroot, 0);
        }
    }
}

/// The first candidate that is a regular file with an execute bit, looked up in the container
/// root as the process's user would find it.
unsafe fn resolve(plan: &Plan) -> *const c_char {
    for candidate in &plan.candidates {
        // SAFETY: a zeroed stat is a valid out-buffer; the path is NUL-terminated.
        let executable = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            libc::stat(candidate.as_ptr(), &mut st) == 0
                && st.st_mode & libc::S_IFMT == libc::S_IFREG
                && st.st_mode & 0o111 != 0
        };
        if executable {
            return candidate.as_ptr();
        }
    }
    // SAFETY: in a child.
    unsafe {
        report(plan, Step::NotFound, libc::ENOENT, 0);
        libc::_exit(1)
    }
}

/// seccomp first when `noNewPrivileges` is off (loading then needs CAP_SYS_ADMIN, about to go);
/// the bounding set; groups, gid, uid; the capability sets; `no_new_privs`; the working
/// directory (after the uid change: the user must be able to enter it).
unsafe fn credentials(plan: &Plan) {
    // SAFETY: system calls on the plan's buffers.
    unsafe {
        if !plan.no_new_privs {
            install_seccomp(plan);
        }
        if let Some(caps) = &plan.caps {
            if !ok(libc::syscall(
                libc::SYS_prctl,
                libc::PR_SET_KEEPCAPS,
                1,
                0,
                0,
                0,
            )) {
                fail(plan, Step::KeepCaps, 0);
            }
            for cap in 0..=caps.last {
                if caps.bounding & (1u64 << cap) == 0
                    && !ok(libc::syscall(
                        libc::SYS_prctl,
                        libc::PR_CAPBSET_DROP,
                        cap as libc::c_ulong,
                        0,
                        0,
                        0,
                    ))
                {
                    fail(plan, Step::Bounding, i32::from(cap));
                }
            }
        }
        if !ok(libc::syscall(
            libc::SYS_setgroups,
            plan.groups.len(),
            plan.groups.as_ptr(),
        )) {
            fail(plan, Step::Setgroups, 0);
        }
        if !ok(libc::syscall(
            libc::SYS_setresgid,
            plan.gid,
            plan.gid,
            plan.gid,
        )) {
            fail(plan, Step::Setgid, 0);
        }
        if !ok(libc::syscall(
            libc::SYS_setresuid,
            plan.uid,
            plan.uid,
            plan.uid,
        )) {
            fail(plan, Step::Setuid, 0);
        }
        if let Some(caps) = &plan.caps {
            set_caps(plan, caps);
        }
        if plan.no_new_privs
            && !ok(libc::syscall(
                libc::SYS_prctl,
                libc::PR_SET_NO_NEW_PRIVS,
                1,
                0,
                0,
                0,
            ))
        {
            fail(plan, Step::NoNewPrivs, 0);
        }
        if libc::chdir(plan.cwd.as_ptr()) < 0 {
            fail(plan, Step::Chdir, 0);
        }
    }
}

/// keepcaps off, then the effective, permitted and inheritable sets in one `capset`, then the
/// ambient set (which needs the other two).
unsafe fn set_caps(plan: &Plan, caps: &CapMasks) {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let half = |mask: u64, high: bool| {
        if high {
            (mask >> 32) as u32
        } else {
            mask as u32
        }
    };
    let data = [false, true].map(|high| Data {
        effective: half(caps.effective, high),
        permitted: half(caps.permitted, high),
        inheritable: half(caps.inheritable, high),
    });
    let header = Header {
        version: CAP_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset reads the header and two data structs; prctl has no memory effects.
    unsafe {
        if !ok(libc::syscall(
            libc::SYS_prctl,
            libc::PR_SET_KEEPCAPS,
            0,
            0,
            0,
            0,
        )) {
            fail(plan, Step::KeepCaps, 0);
        }
        if !ok(libc::syscall(
            libc::SYS_capset,
            &raw const header,
            data.as_ptr(),
        )) {
            fail(plan, Step::Capset, 0);
        }
        if !ok(libc::syscall(
            libc::SYS_prctl,
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )) {
            fail(plan, Step::Ambient, -1);
        }
        for cap in 0..=caps.last {
            if caps.ambient & (1u64 << cap) != 0
                && !ok(libc::syscall(
                    libc::SYS_prctl,
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE,
                    cap as libc::c_ulong,
                    0,
                    0,
                ))
            {
                fail(plan, Step::Ambient, i32::from(cap));
            }
        }
    }
}

/// Installs the prepared seccomp filters, in order.
unsafe fn install_seccomp(plan: &Plan) {
    for (i, prog) in plan.seccomp.iter().enumerate() {
        // SAFETY: the kernel copies the program, which the plan's owner keeps alive.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                plan.seccomp_flags,
                prog as *const libc::sock_fprog,
            )
        };
        if !ok(ret) {
            // SAFETY: in a child.
            unsafe { fail(plan, Step::Seccomp, i as i32) }
        }
    }
}

/// Waits for the agent's `Go` byte; exits quietly if the agent went away.
unsafe fn wait_go(plan: &Plan) {
    let mut byte = 0u8;
    loop {
        // SAFETY: a read into a stack byte.
        let n = unsafe { libc::read(plan.sock, (&raw mut byte).cast(), 1) };
        if n == 1 {
            return;
        }
        // SAFETY: errno is thread-local.
        if n < 0 && unsafe { *libc::__errno_location() } == libc::EINTR {
            continue;
        }
        // SAFETY: in a child.
        unsafe { libc::_exit(1) }
    }
}
