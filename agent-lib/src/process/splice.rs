//! Splicing a process's stdio to the host's passfd streams.
//!
//! One task per stream. Output tasks copy the stdout/stderr pipe (or the pty master) to the
//! host until end of file, then shut the host stream down, so the host reads all the output
//! and then its end, in order. The input task copies the host's stdin stream into the process
//! and, at its end, closes the process's stdin (for a tty: sends the end-of-file character).
//! The input task holds the process only weakly and stops when it exits; the output tasks hold
//! only their fd, which reaches end of file once every writer (the process and its children)
//! is gone. As in Kata, WaitProcess reports the exit only once the output was delivered
//! ([`Process::outputs_flushed`]), waiting at most [`DRAIN_AFTER_EXIT`] for it.

use std::sync::{Arc, Weak};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::passfd::PassfdIo;
use super::stdio::Stream;
use super::{DRAIN_AFTER_EXIT, Output, Process};
use crate::host::Connection;

/// The most one copy moves at a time.
const CHUNK: usize = 32 * 1024;

/// Which of a process's outputs go to passfd streams, and how many output copies still run.
#[derive(Debug)]
pub(super) struct Spliced {
    stdout: bool,
    stderr: bool,
    running: watch::Receiver<usize>,
}

impl Spliced {
    /// Whether reads of `which` are served by a passfd stream (a tty's both are when its
    /// output is).
    pub(super) fn covers(&self, which: Output, tty: bool) -> bool {
        match which {
            _ if tty => self.stdout,
            Output::Stdout => self.stdout,
            Output::Stderr => self.stderr,
        }
    }
}

impl Process {
    /// Connects `io` to this process's stdio. Call once, right after [`Process::new`]; a
    /// second call is ignored with a warning (its streams are closed).
    pub fn splice(self: &Arc<Self>, io: PassfdIo) {
        let tty = self.stdio.is_tty();
        let outputs: Vec<(Output, Box<dyn Connection>)> = match tty {
            true => io.stdout.into_iter().map(|c| (Output::Stdout, c)).collect(),
            false => [(Output::Stdout, io.stdout), (Output::Stderr, io.stderr)]
                .into_iter()
                .filter_map(|(w, c)| c.map(|c| (w, c)))
                .collect(),
        };
        let (count, running) = watch::channel(outputs.len());
        let spliced = Spliced {
            stdout: outputs.iter().any(|(w, _)| *w == Output::Stdout),
            stderr: outputs.iter().any(|(w, _)| *w == Output::Stderr),
            running,
        };
        if self.spliced.set(spliced).is_err() {
            tracing::warn!(exec_id = %self.exec_id, "stdio already spliced; streams closed");
            return;
        }
        let count = Arc::new(count);
        for (which, conn) in outputs {
            match self.stdio.output(which) {
                Ok(stream) => {
                    let count = count.clone();
                    tokio::spawn(async move {
                        pump_out(stream, conn).await;
                        count.send_modify(|n| *n = n.saturating_sub(1));
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no stream to splice");
                    count.send_modify(|n| *n = n.saturating_sub(1));
                }
            }
        }
        if let Some(conn) = io.stdin {
            let exited = self.exit_watch();
            tokio::spawn(pump_in(conn, Arc::downgrade(self), exited));
        }
    }

    /// Waits until the output copied to passfd streams reached its end: at once when nothing
    /// is spliced, at most [`DRAIN_AFTER_EXIT`] (a child may keep the output open).
    pub async fn outputs_flushed(&self) {
        let Some(spliced) = self.spliced.get() else {
            return;
        };
        let mut running = spliced.running.clone();
        let done = running.wait_for(|n| *n == 0);
        if tokio::time::timeout(DRAIN_AFTER_EXIT, done).await.is_err() {
            tracing::debug!(exec_id = %self.exec_id, "output still open after the exit");
        }
    }
}

async fn pump_out(from: Arc<Stream>, mut to: Box<dyn Connection>) {
    loop {
        match from.read(CHUNK).await {
            Ok(data) if data.is_empty() => break,
            Ok(data) => {
                if let Err(e) = to.write_all(&data).await {
                    tracing::debug!(error = %e, "the host closed a passfd output stream");
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading process output for passfd failed");
                break;
            }
        }
    }
    let _ = to.shutdown().await;
}

async fn pump_in(
    mut from: Box<dyn Connection>,
    process: Weak<Process>,
    exited: impl Future<Output = crate::host::ExitStatus>,
) {
    let mut buf = vec![0u8; CHUNK];
    tokio::pin!(exited);
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => read.unwrap_or(0),
            _ = &mut exited => return,
        };
        let Some(process) = process.upgrade() else {
            return;
        };
        if n == 0 {
            if let Err(e) = process.stdio.close_stdin().await {
                tracing::debug!(error = %e, "closing stdin after the passfd stream ended");
            }
            return;
        }
        if let Err(e) = process.stdio.write_stdin(&buf[..n]).await {
            tracing::debug!(error = %e, "writing passfd input to the process failed");
            return;
        }
    }
}
