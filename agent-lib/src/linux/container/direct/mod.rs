//! Exec without the setup helper: the process entering a running container is forked from the
//! agent and set up by raw system calls on a plan made before the fork, then executes its
//! program. No image is executed, no JSON exchanged; container creation keeps the helper.
//!
//! 1. The agent prepares everything ([`plan`]): a pidfd of the container's init, an `O_PATH`
//!    of its root (opened before the pidfd proves the init alive, so the pid was not reused),
//!    the stdio and report descriptors above the low numbers, the cgroup (a cgroup v2 directory,
//!    or the v1 `tasks` files), argv, envp, the `PATH` candidates, rlimits, capability masks,
//!    labels and the container's seccomp BPF, **compiled once per container** and kept
//!    ([`Prepared`], with which namespaces differ from the agent's).
//! 2. The first child is forked with `clone3`, on cgroup v2 with `CLONE_INTO_CGROUP`: born in
//!    the container's cgroup. On v1 its first act (after making itself non-dumpable) is to
//!    write itself into each hierarchy's `tasks`, before it enters any namespace. It then joins
//!    the container's pid namespace (`setns(pidfd, CLONE_NEWPID)`) and forks the process into
//!    it with `CLONE_PARENT`, so that the process is the agent's own child (its exit goes to the
//!    [`Reaper`]); it reports the pid and exits. When the init shares the agent's pid namespace
//!    the first child is the process.
//! 3. The process ([`child`]): non-dumpable, stdio on 0..=2, a new session (and the terminal),
//!    rlimits, OOM score and LSM labels through the agent's `/proc`, one `setns(pidfd)` into
//!    the other namespaces, `fchdir` + `chroot` into the root, the program looked up in the
//!    container's `PATH`, then seccomp, capabilities, groups, gid, uid, `no_new_privs` and the
//!    working directory in the helper's order, non-dumpable again; a held process reports
//!    `Ready` and waits for `Go`; then `close_range(3.., CLOEXEC)` and `execve`.
//! 4. Every failure is a record (step, errno) on the report socket, which is close-on-exec: an
//!    end of file means the program runs. On any failure the agent kills and reaps the process.
//!
//! Nothing is allocated or locked between the fork and the exec; the children make raw system
//! calls only (glibc's `setuid` family would signal threads the child does not have).

mod child;
mod plan;
mod step;

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use oci_spec::runtime::Spec;
use tokio::sync::oneshot;

use super::cgroup_join;
use super::seccomp::{self, Compiled};
use super::spawn::{ChildStdio, above, peer_gone};
use crate::host::{CgroupVersion, ContainerSetup, ExitStatus, LaunchRequest, LaunchTarget};
use crate::linux::reaper::Reaper;
use plan::{Fds, Inputs, Names};
use step::{Record, Step};

/// Starts processes in running containers directly; keeps the held ones and what each
/// container's execs share.
#[derive(Debug, Default)]
pub(crate) struct DirectExec {
    prepared: Mutex<Vec<Cached>>,
    held: Mutex<HashMap<i32, Held>>,
    cap_last: OnceLock<u8>,
}

/// What every exec of one container shares, made at its first exec.
#[derive(Debug)]
struct Prepared {
    seccomp: Option<Compiled>,
    join_pid_ns: bool,
    ns_flags: libc::c_int,
}

#[derive(Debug)]
struct Cached {
    /// The container (its setup lives as long as it does).
    setup: Weak<ContainerSetup>,
    init_pid: i32,
    prepared: Arc<Prepared>,
}

/// A held process: its report socket (`Go` releases it) and the names of its steps.
#[derive(Debug)]
struct Held {
    sock: UnixStream,
    names: Names,
}

/// The container's cgroup as the first child joins it.
#[derive(Default)]
struct CgroupFds {
    /// cgroup v2: the directory, for `CLONE_INTO_CGROUP`.
    dir: Option<OwnedFd>,
    /// cgroup v1: each hierarchy's `tasks`.
    tasks: Vec<OwnedFd>,
}

impl DirectExec {
    /// Starts an exec ([`LaunchTarget::ContainerExec`]); on error nothing is left running.
    pub(crate) fn launch(
        &self,
        reaper: &Reaper,
        request: &LaunchRequest,
        stdio: ChildStdio,
        tty: bool,
    ) -> io::Result<(i32, oneshot::Receiver<ExitStatus>)> {
        let LaunchTarget::ContainerExec {
            setup,
            init_pid,
            process,
        } = &request.target
        else {
            return Err(invalid("not an exec in a container"));
        };
        let init_pid = *init_pid;
        let pidfd = above(pidfd_of(reaper, init_pid)?)?;
        let root = above(open_root(init_pid)?)?;
        let prepared = self.prepared(setup, init_pid)?;
        // The root was opened while the init was alive: its pid was not reused.
        ensure_alive(&pidfd, init_pid)?;
        let cgroup =
            open_cgroup(&setup.spec).map_err(|e| context(e, "join the container's cgroup"))?;
        let (mut sock, child_sock) = UnixStream::pair()?;
        let child_sock = above(child_sock.into())?;
        let [stdin, stdout, stderr] = stdio.map(above);
        let stdio = [stdin?, stdout?, stderr?];
        let input = Inputs {
            spec: &request.process,
            process,
            init_pid,
            seccomp: prepared.seccomp.as_ref(),
            join_pid_ns: prepared.join_pid_ns,
            ns_flags: prepared.ns_flags,
            cap_last: self.cap_last()?,
            tty,
            hold: request.hold,
        };
        let fds = Fds {
            stdio: &stdio,
            sock: &child_sock,
            pidfd: &pidfd,
            root: &root,
            cgroup_tasks: &cgroup.tasks,
        };
        let (plan, _strings, names) = plan::build(&input, &fds)?;
        let mut child_sock = Some(child_sock);
        let ((pid, early), exit) = reaper.spawn_registered(|| {
            let dir = cgroup.dir.as_ref().map(|fd| fd.as_raw_fd());
            // SAFETY: the child runs only `child::first` on the plan, which lives on across
            // the fork (the child has its own copy of this stack and heap).
            let first = unsafe { child::fork_into(dir) }
                .map_err(|e| context(e, "clone the exec process"))?;
            if first == 0 {
                // SAFETY: in the child; see `child`.
                unsafe { child::first(&plan) }
            }
            // The children hold the only other ends: an end of file then means they are done.
            drop(child_sock.take());
            if !plan.join_pid_ns {
                return Ok((first, (first, None)));
            }
            let forked = grandchild(&mut sock, &names);
            reap(first);
            forked.map(|(pid, early)| (pid, (pid, early)))
        })?;
        drop((stdio, pidfd, root, cgroup, child_sock));
        let outcome = match early {
            Some(record) => Ok(Some(record)),
            None => step::read(&mut sock),
        };
        let done = self.settle(outcome, request.hold, pid, sock, names);
        if let Err(e) = done {
            reaper.kill_and_reap(pid);
            return Err(e);
        }
        Ok((pid, exit))
    }

    /// After the fork: a held process must be `Ready`, another must have executed its program
    /// (end of file).
    fn settle(
        &self,
        outcome: io::Result<Option<Record>>,
        hold: bool,
        pid: i32,
        sock: UnixStream,
        names: Names,
    ) -> io::Result<()> {
        match outcome {
            Ok(Some(Record {
                step: Step::Ready, ..
            })) if hold => {
                self.lock_held().insert(pid, Held { sock, names });
                Ok(())
            }
            Ok(Some(record)) => Err(names.error(record)),
            Ok(None) if hold => Err(io::Error::other(
                "the exec process exited before it was ready",
            )),
            Ok(None) => Ok(()),
            Err(e) => Err(context(e, "read the exec process's report")),
        }
    }

    /// Lets held process `pid` execute its program; `None` if it is not held here.
    pub(crate) fn release(&self, reaper: &Reaper, pid: i32) -> Option<io::Result<()>> {
        let Held { mut sock, names } = self.lock_held().remove(&pid)?;
        let result = sock
            .write_all(b"G")
            .map_err(|e| context(e, "release the process"))
            .and_then(|()| match step::read(&mut sock) {
                Ok(None) => Ok(()),
                Ok(Some(record)) => Err(names.error(record)),
                Err(e) => Err(context(e, "wait for the exec")),
            });
        if result.is_err() {
            reaper.kill_and_reap(pid);
        }
        Some(result.map_err(|e| context(e, &format!("release pid {pid}"))))
    }

    fn lock_held(&self) -> MutexGuard<'_, HashMap<i32, Held>> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        // A held process that died (killed before its release) has closed its end: forget it.
        held.retain(|_, h| !peer_gone(&h.sock));
        held
    }

    /// What the container's execs share: made at the first, kept while the container lives.
    fn prepared(&self, setup: &Arc<ContainerSetup>, init_pid: i32) -> io::Result<Arc<Prepared>> {
        let same = |c: &Cached| {
            c.init_pid == init_pid && c.setup.upgrade().is_some_and(|s| Arc::ptr_eq(&s, setup))
        };
        {
            let mut cache = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
            cache.retain(|c| c.setup.strong_count() > 0);
            if let Some(c) = cache.iter().find(|c| same(c)) {
                return Ok(Arc::clone(&c.prepared));
            }
        }
        let prepared = Arc::new(prepare(&setup.spec, init_pid)?);
        let mut cache = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.iter().find(|c| same(c)) {
            return Ok(Arc::clone(&c.prepared));
        }
        cache.push(Cached {
            setup: Arc::downgrade(setup),
            init_pid,
            prepared: Arc::clone(&prepared),
        });
        Ok(prepared)
    }

    /// The highest capability number of this kernel.
    fn cap_last(&self) -> io::Result<u8> {
        if let Some(last) = self.cap_last.get() {
            return Ok(*last);
        }
        let text = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .map_err(|e| context(e, "read /proc/sys/kernel/cap_last_cap"))?;
        let last = text
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|&n| n < 64)
            .ok_or_else(|| io::Error::other(format!("cap_last_cap {:?}", text.trim())))?;
        Ok(*self.cap_last.get_or_init(|| last))
    }
}

/// Compiles the container's seccomp profile and finds which of its init's namespaces differ
/// from the agent's.
fn prepare(spec: &Spec, init_pid: i32) -> io::Result<Prepared> {
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(seccomp::compile)
        .transpose()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let mut ns_flags = 0;
    for (kind, flag) in [
        ("user", libc::CLONE_NEWUSER),
        ("mnt", libc::CLONE_NEWNS),
        ("uts", libc::CLONE_NEWUTS),
        ("ipc", libc::CLONE_NEWIPC),
        ("net", libc::CLONE_NEWNET),
        ("cgroup", libc::CLONE_NEWCGROUP),
    ] {
        if !same_ns(init_pid, kind)? {
            ns_flags |= flag;
        }
    }
    Ok(Prepared {
        seccomp,
        join_pid_ns: !same_ns(init_pid, "pid")?,
        ns_flags,
    })
}

/// Reads the first child's report: the grandchild's pid, and any record the grandchild wrote
/// before it (they share the socket). An end of file first means the first child failed.
fn grandchild(sock: &mut UnixStream, names: &Names) -> io::Result<(i32, Option<Record>)> {
    let mut early = None;
    loop {
        match step::read(sock) {
            Ok(Some(Record {
                step: Step::Pid,
                detail,
                ..
            })) => return Ok((detail, early)),
            Ok(Some(record)) => {
                early.get_or_insert(record);
            }
            Ok(None) => {
                return Err(match early {
                    Some(record) => names.error(record),
                    None => io::Error::other("the exec's first child exited before reporting"),
                });
            }
            Err(e) => return Err(context(e, "read the exec's first child")),
        }
    }
}

/// Waits for the first child, which exits right after its report.
fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: waitpid on our own child, into a local.
    while unsafe { libc::waitpid(pid, &mut status, libc::__WALL) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
}

/// An `O_PATH` of the init's root directory.
fn open_root(init_pid: i32) -> io::Result<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(format!("/proc/{init_pid}/root"))
        .map(OwnedFd::from)
        .map_err(|e| context(e, &format!("open the root of init pid {init_pid}")))
}

/// Whether the pidfd's process still runs (signal 0).
fn ensure_alive(pidfd: &OwnedFd, init_pid: i32) -> io::Result<()> {
    // SAFETY: pidfd_send_signal with signal 0 only checks that the process exists.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        return Err(context(
            io::Error::last_os_error(),
            &format!("container init pid {init_pid}"),
        ));
    }
    Ok(())
}

/// Whether process `pid` is in the agent's namespace of kind `kind` (`pid`, `mnt`...).
fn same_ns(pid: i32, kind: &str) -> io::Result<bool> {
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map_err(|e| context(e, &format!("read the {kind} namespace of pid {pid}")))?;
    let ours = std::fs::read_link(format!("/proc/self/ns/{kind}"))?;
    Ok(theirs == ours)
}

/// A pidfd of `pid`, which must be a live (unreaped) child registered with `reaper`: the
/// registry lock keeps it from being reaped, so the pid cannot have been reused.
fn pidfd_of(reaper: &Reaper, pid: i32) -> io::Result<OwnedFd> {
    reaper.with_registered(pid, |live| {
        if !live {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("container init pid {pid} is not running"),
            ));
        }
        // SAFETY: pidfd_open has no memory effects; the result is a new descriptor we own.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(context(io::Error::last_os_error(), "pidfd_open"));
        }
        // SAFETY: a fresh descriptor (pidfds are close-on-exec).
        Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    })
}

/// The container's cgroup: its v2 directory, or its v1 `tasks` files.
fn open_cgroup(spec: &Spec) -> io::Result<CgroupFds> {
    if crate::linux::detect_version() != CgroupVersion::V2 {
        let tasks = cgroup_join::v1_tasks(spec)?;
        return Ok(CgroupFds {
            dir: None,
            tasks: tasks.into_iter().map(above).collect::<io::Result<_>>()?,
        });
    }
    Ok(CgroupFds {
        dir: cgroup_join::born_in(spec)?.map(above).transpose()?,
        tasks: Vec::new(),
    })
}

fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
