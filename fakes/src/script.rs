//! What a [`crate::FakeLauncher`] process does: a [`Script`] of steps played on tokio time
//! against real file descriptors.

use std::collections::BTreeMap;
use std::future;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use kata_agent::host::ExitStatus;
use nix::errno::Errno;
use nix::sys::signal::Signal;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

/// One thing a scripted process does before it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Writes these bytes to stdout (blocking while the pipe is full, like a real writer).
    Stdout(Vec<u8>),
    /// Writes these bytes to stderr.
    Stderr(Vec<u8>),
    /// Sleeps on tokio time.
    Sleep(Duration),
    /// Copies stdin to stdout until stdin reaches end of file, like `cat`.
    EchoStdin,
}

/// How a process ends once its steps are done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Exits with this code.
    Exit(i32),
    /// Waits until a signal ends it (like `sleep infinity`).
    UntilSignal,
}

/// What a process does when a signal arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// Dies of the signal: [`ExitStatus::Signaled`].
    Terminate,
    /// Carries on.
    Ignore,
    /// Handles it by exiting with this code: [`ExitStatus::Exited`].
    Exit(i32),
}

/// The behaviour of a scripted program: steps, then an end; plus how it reacts to signals.
///
/// Signals follow their default action unless the script says otherwise: most terminate;
/// `SIGCHLD`, `SIGURG`, `SIGWINCH`, `SIGCONT` and the stop signals (`SIGSTOP`, `SIGTSTP`,
/// `SIGTTIN`, `SIGTTOU`; stopping is not modelled) do nothing. `SIGKILL` always kills and
/// `SIGSTOP` never does, whatever the script says. A write to a pipe nobody reads kills the
/// process with `SIGPIPE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    launch_error: Option<Errno>,
    steps: Vec<Step>,
    end: End,
    reactions: BTreeMap<i32, Reaction>,
}

impl Script {
    /// Exits with `code` (after any steps added).
    pub fn exit(code: i32) -> Self {
        Script {
            launch_error: None,
            steps: Vec::new(),
            end: End::Exit(code),
            reactions: BTreeMap::new(),
        }
    }

    /// Runs until a signal ends it.
    pub fn until_signal() -> Self {
        Script {
            end: End::UntilSignal,
            ..Script::exit(0)
        }
    }

    /// Fails to launch: [`kata_agent::host::Launcher::launch`] returns `errno`, nothing runs.
    pub fn fail_launch(errno: Errno) -> Self {
        Script {
            launch_error: Some(errno),
            ..Script::exit(0)
        }
    }

    /// `cat`: echoes stdin to stdout until end of file, then exits 0.
    pub fn cat() -> Self {
        Script::exit(0).echo_stdin()
    }

    /// Adds a write of `data` to stdout.
    pub fn stdout(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.steps.push(Step::Stdout(data.into()));
        self
    }

    /// Adds a write of `data` to stderr.
    pub fn stderr(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.steps.push(Step::Stderr(data.into()));
        self
    }

    /// Adds a sleep.
    pub fn sleep(mut self, duration: Duration) -> Self {
        self.steps.push(Step::Sleep(duration));
        self
    }

    /// Adds an echo of stdin to stdout until end of file.
    pub fn echo_stdin(mut self) -> Self {
        self.steps.push(Step::EchoStdin);
        self
    }

    /// Ignores `signal` (a no-op for `SIGKILL` and `SIGSTOP`).
    pub fn ignore(self, signal: Signal) -> Self {
        self.on_signal(signal, Reaction::Ignore)
    }

    /// Reacts to `signal` with `reaction` (a no-op for `SIGKILL` and `SIGSTOP`).
    pub fn on_signal(mut self, signal: Signal, reaction: Reaction) -> Self {
        self.reactions.insert(signal as i32, reaction);
        self
    }

    /// The errno launching fails with, if the script says so.
    pub fn launch_error(&self) -> Option<Errno> {
        self.launch_error
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// How the process ends after its steps.
    pub fn end(&self) -> End {
        self.end
    }

    /// Whether the script catches or ignores `signal` itself (what /proc/PID/status reports as
    /// `SigCgt` or `SigIgn`).
    pub fn handles(&self, signal: i32) -> bool {
        self.reactions.contains_key(&signal)
    }

    /// What the process does on signal `signal`.
    pub fn reaction(&self, signal: i32) -> Reaction {
        use Signal::*;
        let default = |sig: i32| match Signal::try_from(sig) {
            Ok(SIGCHLD | SIGURG | SIGWINCH | SIGCONT | SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU) => {
                Reaction::Ignore
            }
            _ => Reaction::Terminate,
        };
        match Signal::try_from(signal) {
            Ok(SIGKILL) => Reaction::Terminate,
            Ok(SIGSTOP) => Reaction::Ignore,
            _ => self
                .reactions
                .get(&signal)
                .copied()
                .unwrap_or_else(|| default(signal)),
        }
    }
}

/// A process's side of its standard streams: nonblocking fds on the tokio reactor, or `None`
/// for /dev/null. With a pty, all three are the same slave.
#[derive(Debug, Default)]
pub(crate) struct ProcessIo {
    pub(crate) stdin: Option<Arc<AsyncFd<OwnedFd>>>,
    pub(crate) stdout: Option<Arc<AsyncFd<OwnedFd>>>,
    pub(crate) stderr: Option<Arc<AsyncFd<OwnedFd>>>,
}

/// Why the steps stopped early.
enum Death {
    /// Wrote to a pipe with no reader.
    BrokenPipe,
    /// Any other I/O failure; the process exits 1, as a tool reporting the error would.
    Io,
}

impl From<io::Error> for Death {
    fn from(e: io::Error) -> Self {
        if e.raw_os_error() == Some(Errno::EPIPE as i32) {
            Death::BrokenPipe
        } else {
            Death::Io
        }
    }
}

async fn write_all(fd: Option<&AsyncFd<OwnedFd>>, mut data: &[u8]) -> io::Result<()> {
    let Some(fd) = fd else { return Ok(()) };
    while !data.is_empty() {
        let mut ready = fd.writable().await?;
        match ready.try_io(|fd| Ok(nix::unistd::write(fd.get_ref(), data)?)) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    Ok(())
}

/// Reads what is available; 0 is end of file (also a hung-up pty, which reads `EIO`).
async fn read(fd: Option<&AsyncFd<OwnedFd>>, buf: &mut [u8]) -> io::Result<usize> {
    let Some(fd) = fd else { return Ok(0) };
    loop {
        let mut ready = fd.readable().await?;
        match ready.try_io(|fd| Ok(nix::unistd::read(fd.get_ref(), buf)?)) {
            Ok(Err(e)) if e.raw_os_error() == Some(Errno::EIO as i32) => return Ok(0),
            Ok(result) => return result,
            Err(_would_block) => continue,
        }
    }
}

async fn run_steps(script: &Script, io: &ProcessIo) -> Result<i32, Death> {
    let mut buf = vec![0u8; 16 * 1024];
    for step in &script.steps {
        match step {
            Step::Stdout(data) => write_all(io.stdout.as_deref(), data).await?,
            Step::Stderr(data) => write_all(io.stderr.as_deref(), data).await?,
            Step::Sleep(duration) => tokio::time::sleep(*duration).await,
            Step::EchoStdin => loop {
                let n = read(io.stdin.as_deref(), &mut buf).await?;
                if n == 0 {
                    break;
                }
                write_all(io.stdout.as_deref(), &buf[..n]).await?;
            },
        }
    }
    match script.end {
        End::Exit(code) => Ok(code),
        End::UntilSignal => future::pending().await,
    }
}

/// Plays `script` until it ends or a signal from `signals` ends it; closes the process's fds
/// before returning, as an exiting process does before its parent learns of it.
pub(crate) async fn play(
    script: Script,
    io: ProcessIo,
    mut signals: mpsc::UnboundedReceiver<i32>,
) -> ExitStatus {
    let status = {
        let body = run_steps(&script, &io);
        tokio::pin!(body);
        loop {
            tokio::select! {
                biased;
                Some(signal) = signals.recv() => match script.reaction(signal) {
                    Reaction::Terminate => break ExitStatus::Signaled(signal),
                    Reaction::Exit(code) => break ExitStatus::Exited(code),
                    Reaction::Ignore => {}
                },
                result = &mut body => break match result {
                    Ok(code) => ExitStatus::Exited(code),
                    Err(Death::BrokenPipe) => ExitStatus::Signaled(Signal::SIGPIPE as i32),
                    Err(Death::Io) => ExitStatus::Exited(1),
                },
            }
        }
    };
    drop(io);
    status
}
