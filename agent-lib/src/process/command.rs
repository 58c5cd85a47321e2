//! Short-lived helper programs the agent runs in its own namespaces (modprobe,
//! iptables-save, iptables-restore): launched through the [`Launcher`](crate::host::Launcher)
//! with pipes, fed on stdin, their output collected up to a cap, killed past a deadline.

use std::io;
use std::path::Path;
use std::time::Duration;

use super::{Output, Process, ProcessError};
use crate::host::{Host, LaunchRequest, LaunchTarget, ProcessSpec, StdioMode};

/// The search path of helper programs, and the `PATH` they run with.
pub const HELPER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How a helper program ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit code (128 + signal for a signal).
    pub code: i32,
    /// Its stdout, up to the cap.
    pub stdout: Vec<u8>,
    /// Its stderr, up to the cap.
    pub stderr: Vec<u8>,
    /// Whether stdout or stderr went past the cap (the rest was read and dropped).
    pub truncated: bool,
}

impl CommandOutput {
    /// `exit code N; stdout: "..."; stderr: "..."` (each stream cut at 4 KiB), for error
    /// messages.
    pub fn describe(&self) -> String {
        const QUOTE: usize = 4096;
        let quote =
            |bytes: &[u8]| String::from_utf8_lossy(&bytes[..bytes.len().min(QUOTE)]).into_owned();
        format!(
            "exit code {}; stdout: {:?}; stderr: {:?}",
            self.code,
            quote(&self.stdout),
            quote(&self.stderr)
        )
    }
}

/// Why a helper program could not be run to its end.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// It could not be started.
    #[error("cannot start it")]
    Start(#[source] io::Error),
    /// Its stdin, stdout or stderr failed.
    #[error("its standard streams failed")]
    Stdio(#[source] ProcessError),
    /// It ran past its deadline and was killed.
    #[error("killed after {0:?}")]
    Timeout(Duration),
}

/// One helper program to run: `args[0]` is its absolute path.
#[derive(Clone, Debug)]
pub struct Command<'a> {
    /// Program and arguments; never through a shell.
    pub args: Vec<String>,
    /// What to write on its stdin before closing it.
    pub stdin: &'a [u8],
    /// How much of stdout and of stderr to keep.
    pub max_output: usize,
    /// How long it may run.
    pub timeout: Duration,
}

impl Command<'_> {
    /// Runs the program to its end and collects its output. Past the deadline it is killed
    /// (and still reaped by the launcher).
    pub async fn run(&self, host: &Host) -> Result<CommandOutput, CommandError> {
        let request = LaunchRequest {
            process: ProcessSpec {
                args: self.args.clone(),
                env: vec![format!("PATH={HELPER_PATH}")],
                cwd: Path::new("/").to_owned(),
                ..ProcessSpec::default()
            },
            stdio: StdioMode::Pipes,
            target: LaunchTarget::Host,
            ..LaunchRequest::default()
        };
        let launched = host
            .launcher
            .launch(&request)
            .await
            .map_err(CommandError::Start)?;
        let pid = launched.pid;
        let kill = || {
            if let Err(e) = host.launcher.signal(pid, libc::SIGKILL) {
                tracing::debug!(pid, error = %e, "helper already gone");
            }
        };
        let name = self.args.first().map_or("helper", String::as_str);
        let process = match Process::new(name, false, launched) {
            Ok(process) => process,
            Err(e) => {
                kill();
                return Err(CommandError::Stdio(e));
            }
        };
        let run = async {
            let feed = async {
                if !self.stdin.is_empty() {
                    process.write_stdin(self.stdin).await?;
                }
                process.close_stdin().await
            };
            let (fed, out, err) = tokio::join!(
                feed,
                collect(&process, Output::Stdout, self.max_output),
                collect(&process, Output::Stderr, self.max_output)
            );
            let status = process.wait().await;
            // A program that exits without reading all its stdin makes the write fail with
            // EPIPE: its exit code says what happened, so that is not an error of its own.
            if let Err(e) = fed {
                tracing::debug!(program = name, error = %e, "stdin not fully taken");
            }
            let ((stdout, cut_out), (stderr, cut_err)) = (out?, err?);
            Ok(CommandOutput {
                code: status.code(),
                stdout,
                stderr,
                truncated: cut_out || cut_err,
            })
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(result) => result.map_err(CommandError::Stdio),
            Err(_) => {
                kill();
                Err(CommandError::Timeout(self.timeout))
            }
        }
    }
}

/// The first of `dirs` (each joined with `program`) that exists, through the host's view of
/// the filesystem.
pub fn find_program(host: &Host, program: &str, dirs: &str) -> Option<String> {
    dirs.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
        .find(|p| {
            host.sysfs
                .stat(Path::new(p))
                .is_ok_and(|i| i.kind == crate::host::NodeKind::File)
        })
}

/// Reads a stream to its end, keeping the first `max` bytes; says whether more came.
async fn collect(
    process: &Process,
    which: Output,
    max: usize,
) -> Result<(Vec<u8>, bool), ProcessError> {
    let mut out = Vec::new();
    let mut cut = false;
    loop {
        let chunk = process.read(which, 64 * 1024).await?;
        if chunk.is_empty() {
            return Ok((out, cut));
        }
        let room = max.saturating_sub(out.len());
        cut |= chunk.len() > room;
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
}
