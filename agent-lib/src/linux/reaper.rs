//! The reaper: one SIGCHLD-driven tokio task collects child exits and hands each exit status to
//! the waiter registered for that pid.
//!
//! Registration and spawning happen under the registry lock ([`Reaper::spawn_registered`]), and
//! every reap pass holds the same lock, so a child can never be reaped before its waiter is
//! registered, and std's `Command::spawn` (which `waitpid`s a child whose exec failed) can never
//! race the reaper for that child.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::host::ExitStatus;

/// Which children the reaper collects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReapMode {
    /// Every child of the process: `waitpid(-1)` until none is left. For the agent binary, which
    /// is a child subreaper (or PID 1): orphans re-parented to the agent are reaped and logged.
    /// Every child the process starts must then go through the reaper
    /// ([`Reaper::spawn_registered`], or the launcher built on it), or its exit status is lost
    /// (`std::process::Child::wait` and `tokio::process` then see `ECHILD`).
    All,
    /// Only registered children, each by its own pid. For tests and embedders that do not own
    /// the whole process: children started by other code are left alone.
    Registered,
}

type Registry = HashMap<i32, oneshot::Sender<ExitStatus>>;

/// State shared between the [`Reaper`] handle and its task.
#[derive(Debug)]
struct Shared {
    mode: ReapMode,
    registry: Mutex<Registry>,
}

/// Collects exits of children and delivers them to their waiters.
///
/// Dropping the reaper stops its task; waiters still registered then see their receiver closed.
#[derive(Debug)]
pub struct Reaper {
    shared: Arc<Shared>,
    /// Dropping this ends the task.
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Makes the calling process a child subreaper (`PR_SET_CHILD_SUBREAPER`): orphaned descendants
/// are re-parented to it instead of to PID 1.
pub fn set_child_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

impl Reaper {
    /// Starts the reaper task on the current tokio runtime.
    ///
    /// In [`ReapMode::All`] the process is also made a child subreaper. Fails when called outside
    /// a tokio runtime (or one without signal support), or if the SIGCHLD handler cannot be
    /// installed.
    pub fn new(mode: ReapMode) -> io::Result<Self> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| io::Error::other(format!("the reaper needs a tokio runtime: {e}")))?;
        if mode == ReapMode::All {
            set_child_subreaper()?;
        }
        let sigchld = {
            let _enter = handle.enter();
            signal(SignalKind::child())?
        };
        let shared = Arc::new(Shared {
            mode,
            registry: Mutex::new(HashMap::new()),
        });
        let (shutdown, shutdown_rx) = oneshot::channel();
        let task = handle.spawn(run(Arc::clone(&shared), sigchld, shutdown_rx));
        tracing::debug!(?mode, "reaper started");
        Ok(Reaper {
            shared,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// The reaping mode.
    pub fn mode(&self) -> ReapMode {
        self.shared.mode
    }

    /// Runs `spawn` and registers the pid it returns, all under the registry lock, so the child
    /// cannot be reaped before it is registered. Returns `spawn`'s value and the receiver of the
    /// child's exit status.
    ///
    /// `spawn` must not block for long (it holds up reaping) and must not call back into the
    /// reaper.
    pub fn spawn_registered<T>(
        &self,
        spawn: impl FnOnce() -> io::Result<(i32, T)>,
    ) -> io::Result<(T, oneshot::Receiver<ExitStatus>)> {
        let mut registry = self.shared.lock();
        let (pid, value) = spawn()?;
        let (tx, rx) = oneshot::channel();
        if registry.insert(pid, tx).is_some() {
            tracing::warn!(pid, "pid registered twice; the earlier waiter is dropped");
        }
        Ok((value, rx))
    }

    /// Runs `f` under the registry lock with whether `pid` is a registered, not yet reaped child.
    ///
    /// While the lock is held a registered child cannot be reaped, so its pid cannot be reused:
    /// signalling it from `f` cannot hit another process.
    pub fn with_registered<R>(&self, pid: i32, f: impl FnOnce(bool) -> R) -> R {
        let registry = self.shared.lock();
        f(registry.contains_key(&pid))
    }

    /// Kills registered child `pid` with SIGKILL and reaps it right here, so that a start that
    /// failed halfway leaves no process and no zombie behind. Its waiter sees the receiver
    /// closed. Does nothing when `pid` is not a registered, unreaped child.
    pub fn kill_and_reap(&self, pid: i32) {
        let mut registry = self.shared.lock();
        if registry.remove(&pid).is_none() {
            return;
        }
        // SAFETY: kill and waitpid on our own unreaped child (the registry lock keeps the
        // reaper from collecting it first, so the pid cannot have been reused).
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            let mut status = 0;
            while libc::waitpid(pid, &mut status, libc::__WALL) < 0
                && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
            {}
        }
        tracing::debug!(pid, "killed and reaped a child whose start failed");
    }

    /// How many registered children have not been reaped yet.
    pub fn pending(&self) -> usize {
        self.shared.lock().len()
    }

    /// Runs one reap pass now, as if SIGCHLD had arrived; returns how many children were reaped.
    pub fn reap_now(&self) -> usize {
        self.shared.reap()
    }

    /// Stops the task and waits for it to end.
    pub async fn shutdown(mut self) {
        self.shutdown.take();
        if let Some(task) = self.task.take() {
            // The task never panics; a cancelled runtime is the only other outcome.
            let _ = task.await;
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        // Dropping the sender wakes the task, which then ends; nothing to wait for here.
        self.shutdown.take();
    }
}

/// The reaper task: one pass at start (children may have exited before the handler existed),
/// then one per SIGCHLD until shutdown.
async fn run(shared: Arc<Shared>, mut sigchld: Signal, mut shutdown: oneshot::Receiver<()>) {
    shared.reap();
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            got = sigchld.recv() => {
                if got.is_none() {
                    tracing::warn!("SIGCHLD stream ended; reaper stops");
                    break;
                }
                // Signals coalesce: one wake-up may stand for many exits, so each pass collects
                // everything that is ready.
                shared.reap();
            }
        }
    }
    tracing::debug!(pending = shared.lock().len(), "reaper stopped");
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        // The registry stays consistent even if a holder panicked: recover it.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reap(&self) -> usize {
        let mut registry = self.lock();
        match self.mode {
            ReapMode::All => reap_all(&mut registry),
            ReapMode::Registered => reap_registered(&mut registry),
        }
    }
}

/// `waitpid(-1)` until no exited child is left.
fn reap_all(registry: &mut Registry) -> usize {
    let mut reaped = 0;
    loop {
        match wait(-1) {
            Ok(Some((pid, status))) => {
                reaped += 1;
                match registry.remove(&pid) {
                    Some(tx) => deliver(pid, status, tx),
                    None => tracing::debug!(pid, ?status, "reaped an unregistered child"),
                }
            }
            Ok(None) => break,
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => break,
            Err(e) => {
                tracing::warn!(error = %e, "waitpid(-1) failed");
                break;
            }
        }
    }
    reaped
}

/// `waitpid(pid)` for each registered pid.
fn reap_registered(registry: &mut Registry) -> usize {
    let mut done = Vec::new();
    for &pid in registry.keys() {
        match wait(pid) {
            Ok(Some((_, status))) => done.push((pid, Some(status))),
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {
                tracing::warn!(pid, "registered child was reaped by someone else");
                done.push((pid, None));
            }
            Err(e) => tracing::warn!(pid, error = %e, "waitpid failed"),
        }
    }
    let reaped = done.len();
    for (pid, status) in done {
        if let Some(tx) = registry.remove(&pid)
            && let Some(status) = status
        {
            deliver(pid, status, tx);
        }
    }
    reaped
}

fn deliver(pid: i32, status: ExitStatus, tx: oneshot::Sender<ExitStatus>) {
    tracing::debug!(pid, ?status, "child exited");
    if tx.send(status).is_err() {
        tracing::debug!(pid, "nobody waits for this exit");
    }
}

/// One non-blocking `waitpid(pid, WNOHANG | __WALL)`: `None` when no child has exited.
///
/// Uses libc directly: nix's `WaitStatus` rejects real-time signal numbers.
fn wait(pid: libc::pid_t) -> io::Result<Option<(i32, ExitStatus)>> {
    loop {
        let mut raw = 0;
        // SAFETY: waitpid only writes the status into `raw`, a valid local.
        let got = unsafe { libc::waitpid(pid, &mut raw, libc::WNOHANG | libc::__WALL) };
        if got == 0 {
            return Ok(None);
        }
        if got < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if libc::WIFEXITED(raw) {
            return Ok(Some((got, ExitStatus::Exited(libc::WEXITSTATUS(raw)))));
        }
        if libc::WIFSIGNALED(raw) {
            return Ok(Some((got, ExitStatus::Signaled(libc::WTERMSIG(raw)))));
        }
        // Stopped or continued (traced children under __WALL): not an exit; look again.
    }
}
