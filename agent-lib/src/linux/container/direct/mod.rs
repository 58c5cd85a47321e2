//! Exec without the setup helper: the process entering a running container is forked from the
//! agent and set up by raw system calls on a plan made before the fork, then executes its
//! program. No image is executed, no JSON exchanged; container creation keeps the helper.
//!
//! 1. The agent prepares everything ([`plan`]): a pidfd of the container's init, an `O_PATH`
//!    of its root (opened before the pidfd proves the init alive, so the pid was not reused),
//!    the stdio and report descriptors above the low numbers, the cgroup (a cgroup v2 directory,
//!    or the v1 `tasks` files), argv, envp, the `PATH` candidates, rlimits, capability masks,
//!    labels and the container's seccomp BPF, **compiled once per container** and kept
//!    ([`Prepared`], with which namespaces differ from the agent's and where its cgroup is).
//! 2. One `clone3` makes the process, the agent's own child (its exit goes to the [`Reaper`]),
//!    non-dumpable from birth (the agent is), born in the container's pid namespace (the
//!    launching thread sets its children's pid namespace to the container's for this one
//!    clone: [`pid_ns`]) and, on cgroup v2, in the container's cgroup (`CLONE_INTO_CGROUP`).
//!    On cgroup v1 the process must not be seen in the container before it is in its cgroup,
//!    and v1 has no `CLONE_INTO_CGROUP`: an intermediate, started as `posix_spawn` starts a
//!    child (on the agent's memory, `CLONE_VM | CLONE_VFORK`, so nothing is copied for it) in
//!    the agent's pid namespace, where the container cannot name it, writes itself into each
//!    hierarchy's `tasks`, joins the container's pid namespace and forks the process there
//!    with `CLONE_PARENT` (a child of the agent too); it reports the pid and exits.
//! 3. The process ([`child`]): stdio on 0..=2, a new session (and the terminal), rlimits, OOM
//!    score and LSM labels through the agent's `/proc`, one `setns(pidfd)` into the other
//!    namespaces, `fchdir` + `chroot` into the root, the program looked up in the container's
//!    `PATH`, then seccomp, capabilities, groups, gid, uid, `no_new_privs` and the working
//!    directory in the helper's order, non-dumpable again; a held process reports `Ready` and
//!    waits for `Go`; then `close_range(3.., CLOEXEC)` and `execve`.
//! 4. Every failure is a record (step, errno) on the report socket, which is close-on-exec: an
//!    end of file means the program runs. On any failure the agent kills and reaps the process.
//!
//! Nothing is allocated or locked between the fork and the exec; the children make raw system
//! calls only (glibc's `setuid` family would signal threads the child does not have).

mod child;
mod clone;
mod pid_ns;
mod plan;
mod step;

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use oci_spec::runtime::Spec;
use tokio::sync::oneshot;

use super::cgroup_join;
use super::seccomp::{self, Compiled};
use super::spawn::{ChildStdio, above, peer_gone};
use crate::host::{CgroupVersion, ContainerSetup, ExitStatus, LaunchRequest, LaunchTarget};
use crate::linux::reaper::Reaper;
use child::Plan;
use plan::{Fds, Inputs, Names};
use step::{Record, Step};

/// Starts processes in running containers directly; keeps the held ones and what each
/// container's execs share.
#[derive(Debug, Default)]
pub(crate) struct DirectExec {
    prepared: Mutex<Vec<Cached>>,
    held: Mutex<HashMap<i32, Held>>,
    cap_last: OnceLock<u8>,
    home_pid_ns: OnceLock<pid_ns::HomePidNs>,
}

/// What every exec of one container shares, made at its first exec.
#[derive(Debug)]
struct Prepared {
    seccomp: Option<Compiled>,
    join_pid_ns: bool,
    ns_flags: libc::c_int,
    cgroup: CgroupPlace,
}

/// Where the container's cgroup is, found from the mount table once.
#[derive(Debug)]
enum CgroupPlace {
    /// cgroup v2: its directory, if the container has a cgroup of its own.
    V2(Option<PathBuf>),
    /// cgroup v1: each hierarchy's `tasks`.
    V1(Vec<PathBuf>),
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
        let cgroup = prepared
            .cgroup
            .open()
            .map_err(|e| context(e, "join the container's cgroup"))?;
        let (mut sock, child_sock) = UnixStream::pair()?;
        let child_sock = above(child_sock.into())?;
        let [stdin, stdout, stderr] = stdio.map(above);
        let stdio = [stdin?, stdout?, stderr?];
        let input = Inputs {
            spec: &request.process,
            process,
            init_pid,
            seccomp: prepared.seccomp.as_ref(),
            ns_flags: prepared.ns_flags,
            intermediate: prepared.join_pid_ns && !cgroup.tasks.is_empty(),
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
        // Born in the container's pid namespace unless an intermediate forks it there.
        let into = if prepared.join_pid_ns && !plan.intermediate {
            Some((pidfd.as_fd(), self.home_pid_ns()?))
        } else {
            None
        };
        let ((pid, early), exit) = reaper.spawn_registered(|| {
            if plan.intermediate {
                return via_intermediate(&plan, child_sock, &mut sock, &names)
                    .map(|(pid, early)| (pid, (pid, early)));
            }
            let pid = fork_process(&plan, into, cgroup.dir.as_ref(), init_pid, child_sock)?;
            Ok((pid, (pid, None)))
        })?;
        drop((stdio, pidfd, root, cgroup));
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

    /// The agent's own pid namespace, opened at the first exec.
    fn home_pid_ns(&self) -> io::Result<&pid_ns::HomePidNs> {
        if let Some(home) = self.home_pid_ns.get() {
            return Ok(home);
        }
        let home = pid_ns::HomePidNs::open()?;
        Ok(self.home_pid_ns.get_or_init(|| home))
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
        cgroup: CgroupPlace::find(spec).map_err(|e| context(e, "find the container's cgroup"))?,
    })
}

/// One clone makes the process: in the container's pid namespace when `into` gives one (the
/// init's pidfd, and the agent's own namespace to come back to), and in the cgroup v2 `dir`.
fn fork_process(
    plan: &Plan,
    into: Option<(BorrowedFd<'_>, &pid_ns::HomePidNs)>,
    dir: Option<&OwnedFd>,
    init_pid: i32,
    child_sock: OwnedFd,
) -> io::Result<i32> {
    let pid_ns = into
        .map(|(pidfd, home)| pid_ns::ChildrenIn::enter(pidfd, home))
        .transpose()
        .map_err(|e| context(e, &format!("join the pid namespace of init pid {init_pid}")))?;
    // SAFETY: the child runs only `child::run` on the plan, which lives on across the fork (the
    // child has its own copy of this stack and heap).
    let child = unsafe { clone::fork_into(dir.map(|fd| fd.as_raw_fd())) }.map_err(|e| {
        let what = match &pid_ns {
            Some(_) => plan::fork_into_pid_ns(e.raw_os_error().unwrap_or(0)),
            None => "clone the exec process".into(),
        };
        context(e, &what)
    })?;
    if child == 0 {
        // SAFETY: in the child; see `child`.
        unsafe { child::run(plan) }
    }
    drop(pid_ns);
    // The process holds the only other end: an end of file then means it is done.
    drop(child_sock);
    Ok(child)
}

/// cgroup v1 with a pid namespace to join: the intermediate ([`clone::spawn_intermediate`])
/// joins the cgroup, forks the process into the namespace and reports its pid, read here with
/// any record the process wrote first.
fn via_intermediate(
    plan: &Plan,
    child_sock: OwnedFd,
    sock: &mut UnixStream,
    names: &Names,
) -> io::Result<(i32, Option<Record>)> {
    // SAFETY: the intermediate runs only `child::run` on the plan, alive while it runs.
    let child = unsafe { clone::spawn_intermediate(plan) }
        .map_err(|e| context(e, "clone the exec's intermediate"))?;
    // The children hold the only other ends: an end of file then means they are done.
    drop(child_sock);
    let forked = grandchild(sock, names);
    reap(child);
    forked
}

/// Reads the intermediate's report: the process's pid, and any record the process wrote before
/// it (they share the socket). An end of file first means the intermediate failed.
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
                    None => io::Error::other("the exec's intermediate exited before reporting"),
                });
            }
            Err(e) => return Err(context(e, "read the exec's intermediate")),
        }
    }
}

/// Waits for the intermediate, which exits right after its report.
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

impl CgroupPlace {
    fn find(spec: &Spec) -> io::Result<CgroupPlace> {
        if crate::linux::detect_version() == CgroupVersion::V2 {
            return Ok(CgroupPlace::V2(cgroup_join::dir_v2(spec)));
        }
        cgroup_join::v1_tasks(spec).map(CgroupPlace::V1)
    }

    /// The descriptors the exec joins the cgroup through.
    fn open(&self) -> io::Result<CgroupFds> {
        Ok(match self {
            CgroupPlace::V2(dir) => CgroupFds {
                dir: dir
                    .as_deref()
                    .map(|d| above(cgroup_join::open_dir(d)?))
                    .transpose()?,
                tasks: Vec::new(),
            },
            CgroupPlace::V1(tasks) => CgroupFds {
                dir: None,
                tasks: tasks
                    .iter()
                    .map(|t| above(cgroup_join::open_tasks(t)?))
                    .collect::<io::Result<_>>()?,
            },
        })
    }
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
