//! The real [`Launcher`]: fork and exec with `std::process::Command`, exits from the [`Reaper`].
//!
//! Every child starts in a new session with a clean environment, the requested credentials and
//! working directory, and **no descriptor of the agent's but its three standard streams**: before
//! exec the child marks every descriptor from 3 up close-on-exec with `close_range(2)`
//! (`CLOSE_RANGE_CLOEXEC`, Linux ≥ 5.11; older kernels fall back to one `fcntl` per descriptor up
//! to `RLIMIT_NOFILE`). This closes the runc CVE-2024-21626 class of leaks, where a container
//! process inherits a descriptor of the agent's (a directory, a cgroup file, a socket).
//!
//! Marking instead of closing keeps std's own close-on-exec pipe, through which the child reports
//! an exec failure, alive until the exec.
//!
//! Container processes go through [`super::container`] instead: an init
//! ([`LaunchTarget::ContainerInit`]) through the setup helper, an exec
//! ([`LaunchTarget::ContainerExec`]) through the direct exec.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::pipe2;

use super::container::{ChildStdio, ContainerSpawner, DirectExec};
use super::pty::open_pty;
use super::reaper::{ReapMode, Reaper};
use async_trait::async_trait;

use crate::host::{LaunchRequest, LaunchTarget, Launched, Launcher, ProcessSpec, StdioMode};

/// Starts processes with fork and exec; a [`Reaper`] task reports their exits.
///
/// Starting a process (a container's above all: the setup helper mounts, pivots and reports
/// back) blocks for milliseconds, so the [`Launcher`] methods run it on tokio's blocking pool;
/// the inherent `launch` and `release` are the same work for callers off the executor.
#[derive(Debug, Clone)]
pub struct LinuxLauncher {
    core: Arc<Core>,
}

#[derive(Debug)]
struct Core {
    reaper: Reaper,
    containers: ContainerSpawner,
    /// Execs in running containers, without the helper.
    direct: DirectExec,
}

impl LinuxLauncher {
    /// A launcher whose reaper runs in `mode` on the current tokio runtime.
    ///
    /// Must be called inside a tokio runtime (it spawns the reaper task). The agent binary uses
    /// [`ReapMode::All`]; tests and embedders that share the process use
    /// [`ReapMode::Registered`].
    ///
    /// Container processes are set up by the agent's own binary (`/proc/self/exe`) run as
    /// `kata-agent init`: the binary's `main` must call
    /// [`run_if_helper`](super::run_if_helper) first.
    pub fn new(mode: ReapMode) -> io::Result<Self> {
        Self::with_helper(mode, PathBuf::from("/proc/self/exe"))
    }

    /// Like [`LinuxLauncher::new`], with the setup helper taken from the `kata-agent` binary at
    /// `helper` (for tests and embedders whose own executable is not the agent). A sealed copy
    /// of it is made at the first container launch.
    pub fn with_helper(mode: ReapMode, helper: PathBuf) -> io::Result<Self> {
        let core = Core {
            reaper: Reaper::new(mode)?,
            containers: ContainerSpawner::new(helper),
            direct: DirectExec::default(),
        };
        Ok(LinuxLauncher {
            core: Arc::new(core),
        })
    }

    /// The reaper collecting this launcher's children.
    pub fn reaper(&self) -> &Reaper {
        &self.core.reaper
    }

    /// Starts a process, blocking the calling thread until it runs (or is held).
    pub fn launch(&self, request: &LaunchRequest) -> io::Result<Launched> {
        self.core.launch(request)
    }

    /// Lets a held process execute its program, blocking until it has.
    pub fn release(&self, pid: i32) -> io::Result<()> {
        self.core.release(pid)
    }
}

#[async_trait]
impl Launcher for LinuxLauncher {
    async fn launch(&self, request: &LaunchRequest) -> io::Result<Launched> {
        let core = self.core.clone();
        let request = request.clone();
        tokio::task::spawn_blocking(move || core.launch(&request))
            .await
            .map_err(|e| io::Error::other(format!("launch task: {e}")))?
    }

    async fn release(&self, pid: i32) -> io::Result<()> {
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || core.release(pid))
            .await
            .map_err(|e| io::Error::other(format!("release task: {e}")))?
    }

    fn signal(&self, pid: i32, signal: i32) -> io::Result<()> {
        self.core.signal(pid, signal)
    }

    fn handles_signal(&self, pid: i32, signal: i32) -> io::Result<bool> {
        self.core.handles_signal(pid, signal)
    }

    fn resize_terminal(&self, master: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
        super::pty::set_window_size(master, rows, cols)
    }

    /// The direct exec is born in the container's cgroup (cgroup v2) or joins it before it
    /// enters the container (v1): a second move would only cost a cgroup migration.
    fn places_execs_in_cgroup(&self) -> bool {
        true
    }

    fn pin_pid_namespace(&self, pid: i32, target: &Path) -> io::Result<()> {
        // Opened while the reaper's registry is locked: the child is unreaped, so `pid` is it.
        let ns = self.core.reaper.with_registered(pid, |live| {
            if !live {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            std::fs::File::open(format!("/proc/{pid}/ns/pid"))
        })?;
        let source = format!("/proc/self/fd/{}", ns.as_raw_fd());
        nix::mount::mount(
            Some(source.as_str()),
            target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(io::Error::from)
    }
}

impl Core {
    fn launch(&self, request: &LaunchRequest) -> io::Result<Launched> {
        if request.target != LaunchTarget::Host {
            return self.launch_container(request);
        }
        if request.hold {
            return Err(invalid("launch: hold is for container processes"));
        }
        let spec = &request.process;
        let program = spec
            .args
            .first()
            .ok_or_else(|| invalid("launch: empty argv"))?;
        let mut cmd = host_command(program, spec);
        let tty = match request.stdio {
            StdioMode::Pty => Some(Ctty::Own),
            StdioMode::Console => Some(Ctty::Steal),
            StdioMode::Null | StdioMode::Pipes => None,
        };
        let parent = host_stdio(&mut cmd, request)?;

        let setup = ChildSetup::new(request, tty)?;
        // SAFETY: the closure only makes async-signal-safe system calls on data prepared above,
        // and allocates nothing (see `ChildSetup::run`).
        unsafe {
            cmd.pre_exec(move || setup.run());
        }

        let spawned = self.reaper.spawn_registered(|| {
            let child = cmd.spawn()?;
            // pid_max is at most 2^22: the cast never wraps.
            let pid = child.id() as i32;
            // `child` holds no stream (each was given explicitly) and is never waited on here:
            // the reaper owns the exit.
            Ok((pid, pid))
        });
        // The child's ends of its stdio (and the pty slave) live in `cmd`: close them now.
        drop(cmd);
        let (pid, exit) = spawned.inspect_err(|e| {
            tracing::debug!(program = %program, error = %e, "launch failed");
        })?;
        tracing::debug!(pid, program = %program, stdio = ?request.stdio, "launched");
        Ok(Launched {
            pid,
            stdin: parent.stdin,
            stdout: parent.stdout,
            stderr: parent.stderr,
            pty_master: parent.pty_master,
            exit,
        })
    }

    fn signal(&self, pid: i32, signal: i32) -> io::Result<()> {
        if pid <= 0 {
            // kill(0) and kill(-n) signal process groups, kill(-1) every process: never that.
            return Err(invalid(format!("signal: invalid pid {pid}")));
        }
        // For a registered child the registry lock keeps it unreaped during the kill, so its pid
        // cannot have been reused. Other pids (processes of a container started by its init) are
        // signalled as they are.
        let result = self.reaper.with_registered(pid, |_| {
            // SAFETY: kill has no memory effects.
            if unsafe { libc::kill(pid, signal) } == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
        result.map_err(|e| match e.raw_os_error() {
            Some(libc::ESRCH) => io::Error::new(
                io::ErrorKind::NotFound,
                format!("signal {signal} to pid {pid}: no such process"),
            ),
            _ => e,
        })
    }

    fn release(&self, pid: i32) -> io::Result<()> {
        if let Some(released) = self.direct.release(&self.reaper, pid) {
            return released;
        }
        self.containers.release(&self.reaper, pid)
    }

    fn handles_signal(&self, pid: i32, signal: i32) -> io::Result<bool> {
        if pid <= 0 || !(1..=64).contains(&signal) {
            return Err(invalid(format!(
                "handles_signal: pid {pid} signal {signal}"
            )));
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        Ok(signal_handled(&status, signal))
    }
}

impl Core {
    fn launch_container(&self, request: &LaunchRequest) -> io::Result<Launched> {
        let (parent, child) = container_stdio(request)?;
        let tty = request.stdio == StdioMode::Pty;
        let launched = match request.target {
            LaunchTarget::ContainerExec { .. } => {
                self.direct.launch(&self.reaper, request, child, tty)
            }
            _ => self.containers.launch(&self.reaper, request, child, tty),
        };
        let (pid, exit) =
            launched.inspect_err(|e| tracing::debug!(error = %e, "container launch failed"))?;
        tracing::debug!(pid, hold = request.hold, "container process launched");
        Ok(Launched {
            pid,
            stdin: parent.stdin,
            stdout: parent.stdout,
            stderr: parent.stderr,
            pty_master: parent.pty_master,
            exit,
        })
    }
}

/// The agent's and the child's ends of a container process's stdio.
fn container_stdio(request: &LaunchRequest) -> io::Result<(ParentEnds, ChildStdio)> {
    let mut parent = ParentEnds::default();
    let child = match request.stdio {
        StdioMode::Null => {
            let null = OwnedFd::from(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/null")?,
            );
            [null.try_clone()?, null.try_clone()?, null]
        }
        StdioMode::Pipes => pipes(request, &mut parent)?,
        StdioMode::Pty => {
            let (master, slave) = open_pty()?;
            parent.pty_master = Some(master);
            [slave.try_clone()?, slave.try_clone()?, slave]
        }
        StdioMode::Console => return Err(invalid("the console is for host processes only")),
    };
    Ok((parent, child))
}

/// Three pipes for a child's stdio (the output ones sized as `request` asks): the agent's
/// ends go into `parent`, the child's are returned as stdin, stdout, stderr.
fn pipes(request: &LaunchRequest, parent: &mut ParentEnds) -> io::Result<[OwnedFd; 3]> {
    let (stdin_r, stdin_w) = cloexec_pipe()?;
    let (stdout_r, stdout_w) = cloexec_pipe()?;
    let (stderr_r, stderr_w) = cloexec_pipe()?;
    if request.pipe_size > 0 {
        set_pipe_size(&stdout_r, request.pipe_size)?;
        set_pipe_size(&stderr_r, request.pipe_size)?;
    }
    parent.stdin = Some(stdin_w);
    parent.stdout = Some(stdout_r);
    parent.stderr = Some(stderr_r);
    Ok([stdin_r, stdout_w, stderr_w])
}

/// The agent's ends of a child's stdio.
#[derive(Default)]
struct ParentEnds {
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    pty_master: Option<OwnedFd>,
}

/// A host program with exactly the request's argv and environment (entries without `KEY=`
/// are dropped).
fn host_command(program: &str, spec: &ProcessSpec) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(&spec.args[1..]).env_clear();
    for (index, entry) in spec.env.iter().enumerate() {
        match entry.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                cmd.env(key, value);
            }
            // The entry itself is not logged: it may hold a secret.
            _ => tracing::warn!(index, "ignoring an environment entry without KEY="),
        }
    }
    cmd
}

/// Gives `cmd` the stdio of `request`; returns the agent's ends.
fn host_stdio(cmd: &mut Command, request: &LaunchRequest) -> io::Result<ParentEnds> {
    let mut parent = ParentEnds::default();
    match request.stdio {
        StdioMode::Null => {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        StdioMode::Console => {
            let console = OwnedFd::from(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
                    .open("/dev/console")?,
            );
            cmd.stdin(console.try_clone()?)
                .stdout(console.try_clone()?)
                .stderr(console);
        }
        StdioMode::Pipes => {
            let [stdin, stdout, stderr] = pipes(request, &mut parent)?;
            cmd.stdin(stdin).stdout(stdout).stderr(stderr);
        }
        StdioMode::Pty => {
            let (master, slave) = open_pty()?;
            cmd.stdin(slave.try_clone()?)
                .stdout(slave.try_clone()?)
                .stderr(slave);
            parent.pty_master = Some(master);
        }
    }
    Ok(parent)
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// `pipe2(O_CLOEXEC)`: `(read, write)`.
fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(pipe2(OFlag::O_CLOEXEC)?)
}

fn set_pipe_size(fd: &OwnedFd, size: u32) -> io::Result<()> {
    let size = i32::try_from(size).map_err(|_| invalid(format!("pipe size {size} too large")))?;
    fcntl(fd.as_fd(), FcntlArg::F_SETPIPE_SZ(size))?;
    Ok(())
}

/// How a host process gets its controlling terminal (fd 0 after `setsid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctty {
    /// Its own pty's slave.
    Own,
    /// The console, taken from whichever session holds it (`TIOCSCTTY` with 1, as root).
    Steal,
}

/// Everything the child does between fork and exec, prepared in the parent so that the child
/// neither allocates nor takes a lock.
struct ChildSetup {
    tty: Option<Ctty>,
    /// Whether to call setgroups: always when privileged; otherwise only if groups were asked
    /// for (an unprivileged agent cannot drop its groups, and fails loudly if asked to set some).
    set_groups: bool,
    groups: Vec<libc::gid_t>,
    uid: libc::uid_t,
    gid: libc::gid_t,
    cwd: CString,
}

impl ChildSetup {
    fn new(request: &LaunchRequest, tty: Option<Ctty>) -> io::Result<Self> {
        let spec = &request.process;
        let cwd = if spec.cwd.as_os_str().is_empty() {
            CString::from(c"/")
        } else {
            CString::new(spec.cwd.as_os_str().as_bytes())
                .map_err(|_| invalid("launch: NUL byte in cwd"))?
        };
        // SAFETY: geteuid has no preconditions.
        let privileged = unsafe { libc::geteuid() } == 0;
        Ok(ChildSetup {
            tty,
            set_groups: privileged || !spec.additional_gids.is_empty(),
            groups: spec.additional_gids.clone(),
            uid: spec.uid,
            gid: spec.gid,
            cwd,
        })
    }

    /// Runs in the child after fork. Async-signal-safe: raw system calls only, no allocation
    /// (`io::Error::last_os_error` builds an errno value without allocating).
    fn run(&self) -> io::Result<()> {
        // SAFETY: each call is a plain system call on descriptors and buffers that are valid in
        // the child (std has set up stdio before pre_exec closures run).
        unsafe {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            let steal = match self.tty {
                Some(Ctty::Own) => Some(0),
                Some(Ctty::Steal) => Some(1),
                None => None,
            };
            if let Some(steal) = steal
                && libc::ioctl(0, libc::TIOCSCTTY, steal) < 0
            {
                return Err(io::Error::last_os_error());
            }
            if self.set_groups && libc::setgroups(self.groups.len(), self.groups.as_ptr()) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::setgid(self.gid) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::setuid(self.uid) < 0 {
                return Err(io::Error::last_os_error());
            }
            // After setuid, so that the user must be able to enter the directory.
            if libc::chdir(self.cwd.as_ptr()) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        mark_fds_cloexec()
    }
}

/// Marks every descriptor from 3 up close-on-exec. Async-signal-safe.
fn mark_fds_cloexec() -> io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes descriptor flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if !matches!(err.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EINVAL)) {
        return Err(err);
    }
    // Kernels before 5.11: one fcntl per possible descriptor.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let max = i32::try_from(limit.rlim_cur).unwrap_or(i32::MAX);
    for fd in 3..max {
        // SAFETY: F_SETFD on a descriptor that may not exist fails with EBADF, which is fine.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Whether `signal` is set in the `SigCgt`, `SigIgn` or `SigBlk` mask of a /proc/PID/status text.
fn signal_handled(status: &str, signal: i32) -> bool {
    let bit = 1u64 << (signal - 1);
    status.lines().any(|line| {
        ["SigCgt:", "SigIgn:", "SigBlk:"].iter().any(|key| {
            line.strip_prefix(key)
                .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
                .is_some_and(|mask| mask & bit != 0)
        })
    })
}

#[cfg(test)]
#[path = "launcher_tests.rs"]
mod tests;
