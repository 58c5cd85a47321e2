//! A process's standard streams, as the agent holds them.
//!
//! The [`Launcher`](crate::host::Launcher) hands over the agent's ends of the pipes or the pty
//! master as `OwnedFd`s; reading and writing them is plain fd I/O on descriptors the agent
//! owns, so it is done here with tokio's [`AsyncFd`] and nix rather than through a seam (the
//! terminal's window size is the launcher's). Each fd is switched to non-blocking mode (its own open file description: the
//! process's end is unaffected).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use tokio::io::unix::AsyncFd;

use super::ProcessError;
use crate::host::{Launched, Launcher};

/// The most one read returns, whatever the caller asks for (well under ttrpc's 4 MiB frame).
pub const MAX_READ: usize = 1 << 20;

/// The most stdin data of one process that concurrent WriteStdin calls may hold while they wait
/// for the process to read (summed over the callers); a call that would pass it is refused. A
/// single call is always taken when none is waiting.
pub const MAX_STDIN_IN_FLIGHT: usize = 4 << 20;

/// The terminal's end-of-file character (`VEOF`, Ctrl-D) in its default setting.
const VEOF: u8 = 0x04;

/// One fd of the agent's, readable or writable without blocking the executor; concurrent reads
/// (and concurrent writes) are served one at a time so their bytes do not interleave.
#[derive(Debug)]
pub(crate) struct Stream {
    fd: AsyncFd<OwnedFd>,
    reading: tokio::sync::Mutex<()>,
    writing: tokio::sync::Mutex<()>,
}

impl Stream {
    fn new(fd: OwnedFd, stream: &'static str) -> Result<Arc<Self>, ProcessError> {
        let register = |fd: OwnedFd| -> io::Result<AsyncFd<OwnedFd>> {
            let flags = OFlag::from_bits_retain(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
            fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
            // SAFETY: an `OwnedFd` is open until dropped and always yields the same descriptor,
            // and the `AsyncFd` owns it for its whole life.
            unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
        };
        let fd = register(fd).map_err(|source| ProcessError::Register { stream, source })?;
        Ok(Arc::new(Stream {
            fd,
            reading: tokio::sync::Mutex::new(()),
            writing: tokio::sync::Mutex::new(()),
        }))
    }

    /// One read of at most `len` bytes; empty at end of file (a pty whose slave side is gone
    /// reads `EIO`, which is end of file too).
    pub(crate) async fn read(&self, len: usize) -> io::Result<Vec<u8>> {
        let _one_at_a_time = self.reading.lock().await;
        let mut buf = vec![0u8; len.min(MAX_READ)];
        if buf.is_empty() {
            return Ok(buf);
        }
        loop {
            let mut ready = self.fd.readable().await?;
            match ready.try_io(|fd| Ok(nix::unistd::read(fd.get_ref(), &mut buf)?)) {
                Ok(Ok(n)) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                Ok(Err(e)) if e.raw_os_error() == Some(Errno::EIO as i32) => return Ok(Vec::new()),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes all of `data`, waiting while the pipe is full.
    pub(crate) async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        let _one_at_a_time = self.writing.lock().await;
        while !data.is_empty() {
            let mut ready = self.fd.writable().await?;
            match ready.try_io(|fd| Ok(nix::unistd::write(fd.get_ref(), data)?)) {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// The descriptor, for the launcher's terminal calls.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}

/// Which output stream a read is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// stdout (for a tty: the pty master).
    Stdout,
    /// stderr (for a tty: the pty master, as Kata does).
    Stderr,
}

/// The agent's ends of one process's stdio: three pipes, a pty master, or nothing.
#[derive(Debug)]
pub struct Stdio {
    /// The stdin pipe until it is closed.
    stdin: Mutex<Option<Arc<Stream>>>,
    stdout: Option<Arc<Stream>>,
    stderr: Option<Arc<Stream>>,
    pty: Option<Arc<Stream>>,
    /// Set once stdin was closed (for a pty, the master stays open for output).
    stdin_closed: Mutex<bool>,
    /// Bytes of stdin held by WriteStdin calls not finished yet.
    stdin_in_flight: Arc<Mutex<usize>>,
}

/// A share of [`MAX_STDIN_IN_FLIGHT`], given back when dropped (the write ended, failed or was
/// cancelled).
struct InFlight {
    total: Arc<Mutex<usize>>,
    len: usize,
}

impl InFlight {
    fn take(total: &Arc<Mutex<usize>>, len: usize) -> Result<Self, ProcessError> {
        let mut now = lock(total);
        if *now > 0 && *now + len > MAX_STDIN_IN_FLIGHT {
            return Err(ProcessError::StdinBusy {
                in_flight: *now,
                len,
                limit: MAX_STDIN_IN_FLIGHT,
            });
        }
        *now += len;
        Ok(InFlight {
            total: total.clone(),
            len,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut now = lock(&self.total);
        *now = now.saturating_sub(self.len);
    }
}

impl Stdio {
    /// Takes the fds out of `launched` and registers them with the reactor; needs a tokio
    /// runtime. Everything taken is closed on error.
    pub(crate) fn from_launched(launched: &mut Launched) -> Result<Self, ProcessError> {
        let wrap = |fd: Option<OwnedFd>, name| fd.map(|fd| Stream::new(fd, name)).transpose();
        Ok(Stdio {
            stdin: Mutex::new(wrap(launched.stdin.take(), "stdin")?),
            stdout: wrap(launched.stdout.take(), "stdout")?,
            stderr: wrap(launched.stderr.take(), "stderr")?,
            pty: wrap(launched.pty_master.take(), "pty master")?,
            stdin_closed: Mutex::new(false),
            stdin_in_flight: Arc::default(),
        })
    }

    /// Whether the process runs on a pty.
    pub fn is_tty(&self) -> bool {
        self.pty.is_some()
    }

    /// The stream a read of `which` uses.
    pub(crate) fn output(&self, which: Output) -> Result<Arc<Stream>, ProcessError> {
        let stream = match (&self.pty, which) {
            (Some(pty), _) => Some(pty),
            (None, Output::Stdout) => self.stdout.as_ref(),
            (None, Output::Stderr) => self.stderr.as_ref(),
        };
        let name = match which {
            Output::Stdout => "stdout",
            Output::Stderr => "stderr",
        };
        stream.cloned().ok_or(ProcessError::NoStream(name))
    }

    /// Writes `data` to the process's stdin (the pty master for a tty); refused while other
    /// callers already hold [`MAX_STDIN_IN_FLIGHT`] bytes waiting for the process to read.
    pub(crate) async fn write_stdin(&self, data: &[u8]) -> Result<(), ProcessError> {
        if *lock(&self.stdin_closed) {
            return Err(ProcessError::StdinClosed);
        }
        let _share = InFlight::take(&self.stdin_in_flight, data.len())?;
        let stream = match &self.pty {
            Some(pty) => pty.clone(),
            None => lock(&self.stdin)
                .clone()
                .ok_or(ProcessError::NoStream("stdin"))?,
        };
        stream
            .write_all(data)
            .await
            .map_err(|source| ProcessError::Io {
                op: "write stdin",
                source,
            })
    }

    /// Ends the process's input: closes the stdin pipe (the process reads end of file), or for a
    /// tty sends the terminal's end-of-file character and keeps the master open for output
    /// (Kata closes the master, which hangs the terminal up). Closing twice is fine.
    pub(crate) async fn close_stdin(&self) -> Result<(), ProcessError> {
        {
            let mut closed = lock(&self.stdin_closed);
            if *closed {
                return Ok(());
            }
            *closed = true;
        }
        // Dropping our reference closes the pipe once in-flight writes end.
        drop(lock(&self.stdin).take());
        if let Some(pty) = &self.pty {
            pty.write_all(&[VEOF])
                .await
                .map_err(|source| ProcessError::Io {
                    op: "close stdin",
                    source,
                })?;
        }
        Ok(())
    }

    /// Sets the terminal size of a tty process.
    pub(crate) fn resize(
        &self,
        launcher: &dyn Launcher,
        rows: u16,
        cols: u16,
    ) -> Result<(), ProcessError> {
        let pty = self.pty.as_ref().ok_or(ProcessError::NoTty)?;
        let resized = launcher.resize_terminal(pty.as_fd(), rows, cols);
        resized.map_err(|source| ProcessError::Io {
            op: "resize tty",
            source,
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
