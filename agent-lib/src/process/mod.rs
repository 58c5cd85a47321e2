//! Container processes: what runs, how it ended, and its standard streams.
//!
//! A [`Process`] is built from what the [`Launcher`](crate::host::Launcher) returned. It owns
//! its own state: a watch channel carrying its exit (filled by a task awaiting the launcher's
//! exit report) and its [`Stdio`], each stream behind its own lock. Nothing here locks more than
//! one process, so a slow read never delays a signal or another process.

mod command;
mod error;
mod passfd;
mod spec;
mod splice;
mod stdio;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use command::{Command, CommandError, CommandOutput, HELPER_PATH, find_program};
pub use error::ProcessError;
pub use passfd::{
    HANDSHAKE, HANDSHAKE_TIMEOUT, PassfdError, PassfdIo, PassfdStreams, StdioPorts, TAKE_INTERVAL,
    TAKE_TRIES, UNCLAIMED_AFTER, take_streams,
};
pub use spec::launch_spec;
pub use stdio::{MAX_READ, MAX_STDIN_IN_FLIGHT, Output, Stdio};

use crate::host::{ExitStatus, Launched};

/// How long a read keeps draining buffered output after the process exited before it reports
/// end of file (Kata: 500 ms), for output held open by a descendant.
pub const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// One process of a container: the init (whose exec id is the container id) or an exec.
#[derive(Debug)]
pub struct Process {
    exec_id: String,
    pid: i32,
    init: bool,
    exit: watch::Receiver<Option<ExitStatus>>,
    stdio: Stdio,
    /// Set when its stdio is spliced to passfd streams.
    spliced: std::sync::OnceLock<splice::Spliced>,
}

impl Process {
    /// Takes over a launched process: registers its stdio and starts watching for its exit.
    /// Needs a tokio runtime. On error the fds taken are closed; the process itself is the
    /// caller's to kill.
    pub fn new(
        exec_id: &str,
        init: bool,
        mut launched: Launched,
    ) -> Result<Arc<Self>, ProcessError> {
        let stdio = Stdio::from_launched(&mut launched)?;
        let (tx, rx) = watch::channel(None);
        let pid = launched.pid;
        let exit = launched.exit;
        tokio::spawn(async move {
            let status = exit.await.unwrap_or_else(|_| {
                // The launcher always reports an exit; if it dropped the report, say so and
                // call the process gone rather than waiting forever.
                tracing::warn!(
                    pid,
                    "the launcher dropped the exit report; assuming exit 255"
                );
                ExitStatus::Exited(255)
            });
            tracing::debug!(pid, ?status, "process exited");
            tx.send_replace(Some(status));
        });
        Ok(Arc::new(Process {
            exec_id: exec_id.to_owned(),
            pid,
            init,
            exit: rx,
            stdio,
            spliced: std::sync::OnceLock::new(),
        }))
    }

    /// Its exec id (the container id for the init).
    pub fn exec_id(&self) -> &str {
        &self.exec_id
    }

    /// Its pid in the agent's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether it is the container's init.
    pub fn is_init(&self) -> bool {
        self.init
    }

    /// How it ended, if it has.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// Waits until it has exited (and been reaped).
    pub async fn wait(&self) -> ExitStatus {
        self.exit_watch().await
    }

    /// A future resolving with its exit that keeps neither the process nor its streams: the
    /// caller can drop the process (closing its pty or pipes) and still learn how it ended.
    pub fn exit_watch(&self) -> impl Future<Output = ExitStatus> + Send + 'static {
        let mut rx = self.exit.clone();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(status) => status.unwrap_or(ExitStatus::Exited(255)),
                // The sender only goes away after sending.
                Err(_) => ExitStatus::Exited(255),
            }
        }
    }

    /// Its standard streams.
    pub fn stdio(&self) -> &Stdio {
        &self.stdio
    }

    /// Writes to its stdin; empty `data` closes stdin (end of file), as Kata's WriteStdin.
    /// Returns how many bytes were taken.
    pub async fn write_stdin(&self, data: &[u8]) -> Result<usize, ProcessError> {
        if data.is_empty() {
            self.stdio.close_stdin().await?;
        } else {
            self.stdio.write_stdin(data).await?;
        }
        Ok(data.len())
    }

    /// Closes its stdin.
    pub async fn close_stdin(&self) -> Result<(), ProcessError> {
        self.stdio.close_stdin().await
    }

    /// One read of up to `len` bytes of `which`; empty means end of stream. Once the process
    /// has exited, a read still returns what is buffered, and end of file after
    /// [`DRAIN_AFTER_EXIT`] at most. A stream spliced to a passfd stream reads end of file at
    /// once: its bytes go to the host's stream only (Kata's read would race the splice for
    /// them).
    pub async fn read(&self, which: Output, len: usize) -> Result<Vec<u8>, ProcessError> {
        let stream = self.stdio.output(which)?;
        if self
            .spliced
            .get()
            .is_some_and(|s| s.covers(which, self.stdio.is_tty()))
        {
            return Ok(Vec::new());
        }
        let op = match which {
            Output::Stdout => "read stdout",
            Output::Stderr => "read stderr",
        };
        let read = stream.read(len);
        tokio::pin!(read);
        let result = tokio::select! {
            biased;
            result = &mut read => result,
            _ = self.wait() => {
                match tokio::time::timeout(DRAIN_AFTER_EXIT, &mut read).await {
                    Ok(result) => result,
                    Err(_) => Ok(Vec::new()),
                }
            }
        };
        result.map_err(|source| ProcessError::Io { op, source })
    }

    /// Sets its terminal size through `launcher`, the one that started it.
    pub fn resize(
        &self,
        launcher: &dyn crate::host::Launcher,
        rows: u16,
        cols: u16,
    ) -> Result<(), ProcessError> {
        self.stdio.resize(launcher, rows, cols)
    }
}
