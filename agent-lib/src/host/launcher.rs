//! The `Launcher` seam: starting processes, signalling them and learning how they ended.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use oci_spec::runtime::{Process, Spec};
use tokio::sync::oneshot;

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called exit with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
}

impl ExitStatus {
    /// The exit code Kata reports: the code itself, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(sig) => 128 + sig,
        }
    }
}

/// How the process's standard streams are connected to the agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StdioMode {
    /// All three on /dev/null.
    #[default]
    Null,
    /// Three pipes; the agent keeps the other ends.
    Pipes,
    /// A pseudo terminal; the agent keeps the master.
    Pty,
    /// The guest's console (`/dev/console`) on all three, as the controlling terminal (the
    /// debug console's shell); the agent keeps nothing. Host processes only.
    Console,
}

/// What to run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessSpec {
    /// argv; `args[0]` is looked up in `PATH` when it has no slash.
    pub args: Vec<String>,
    /// `KEY=VALUE` environment; nothing is inherited from the agent.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
}

/// A container as the launcher needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerSetup {
    /// The container id.
    pub id: String,
    /// The OCI spec after the agent's rewrites: `root.path` is absolute, namespaces to join
    /// carry their paths, device numbers are the guest's, mount sources are guest paths.
    pub spec: Spec,
    /// The guest root is an initramfs: use `MS_MOVE` + `chroot`, as `pivot_root` cannot work.
    pub no_pivot_root: bool,
}

/// Where a process runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum LaunchTarget {
    /// A plain process in the agent's own namespaces and root (hooks, helpers).
    #[default]
    Host,
    /// The init process of a new container, set up from the spec: namespaces, rootfs, mounts,
    /// devices, hostname, rlimits, capabilities, seccomp, OCI hooks run inside it.
    ContainerInit(Arc<ContainerSetup>),
    /// A process entering the running container whose init is `init_pid`.
    ContainerExec {
        /// The container.
        setup: Arc<ContainerSetup>,
        /// Its init process, whose namespaces and root the process joins.
        init_pid: i32,
        /// The exec's OCI process: capabilities, rlimits, no_new_privileges, labels.
        process: Box<Process>,
    },
}

/// One process to start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LaunchRequest {
    /// The program and its resolved credentials.
    pub process: ProcessSpec,
    /// How its standard streams are connected.
    pub stdio: StdioMode,
    /// `F_SETPIPE_SZ` for the stdout/stderr pipes; 0 keeps the kernel default.
    pub pipe_size: u32,
    /// Where it runs.
    pub target: LaunchTarget,
    /// Keep the process stopped just before it executes its program until
    /// [`Launcher::release`]: a container init waits for StartContainer, an exec for the agent
    /// to put it into the container's cgroup.
    pub hold: bool,
}

/// A started process and the agent's ends of its standard streams.
#[derive(Debug)]
pub struct Launched {
    /// Its pid in the agent's pid namespace.
    pub pid: i32,
    /// Write end of its stdin pipe ([`StdioMode::Pipes`]).
    pub stdin: Option<OwnedFd>,
    /// Read end of its stdout pipe ([`StdioMode::Pipes`]).
    pub stdout: Option<OwnedFd>,
    /// Read end of its stderr pipe ([`StdioMode::Pipes`]).
    pub stderr: Option<OwnedFd>,
    /// The pty master ([`StdioMode::Pty`]).
    pub pty_master: Option<OwnedFd>,
    /// Resolves once, when the process has been reaped.
    pub exit: oneshot::Receiver<ExitStatus>,
}

/// Starts processes and reports their exits. The agent is their reaper: no zombies remain.
///
/// Starting and releasing are async: a container's setup takes milliseconds of blocking work,
/// which real implementations run off the agent's executor.
#[async_trait]
pub trait Launcher: Send + Sync {
    /// Starts a process. On error nothing is left running and no fd is leaked.
    async fn launch(&self, request: &LaunchRequest) -> io::Result<Launched>;

    /// Lets a process started with [`LaunchRequest::hold`] execute its program.
    async fn release(&self, pid: i32) -> io::Result<()>;

    /// Sends signal `signal` to process `pid`.
    fn signal(&self, pid: i32, signal: i32) -> io::Result<()>;

    /// Pins the pid namespace of `pid`, a process this launcher started and has not reaped
    /// yet (so the pid cannot have been reused), by bind-mounting its nsfs file onto `target`,
    /// an existing regular file. Unmounting `target` releases the pin. `ESRCH` when `pid` is not
    /// such a process.
    fn pin_pid_namespace(&self, pid: i32, target: &Path) -> io::Result<()>;

    /// Whether process `pid` catches, ignores or blocks `signal` (`SigCgt`, `SigIgn`, `SigBlk`
    /// of /proc/PID/status); Kata turns a SIGTERM that an init does not handle into SIGKILL.
    fn handles_signal(&self, pid: i32, signal: i32) -> io::Result<bool>;

    /// Sets the window size of the terminal whose master is `master` (a
    /// [`Launched::pty_master`]); the foreground process group gets `SIGWINCH`.
    fn resize_terminal(&self, master: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()>;

    /// Whether an exec ([`LaunchTarget::ContainerExec`]) is started inside its container's
    /// cgroup by the launcher itself, so that the agent neither holds it nor adds it to the
    /// cgroup afterwards. `false` unless an implementation guarantees it.
    fn places_execs_in_cgroup(&self) -> bool {
        false
    }
}
