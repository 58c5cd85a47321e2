//! What can go wrong with one process.

use std::io;

/// Why a process operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The OCI process cannot be run as given.
    #[error("invalid process: {0}")]
    InvalidProcess(String),
    /// The process has no terminal (TtyWinResize on a process without a pty).
    #[error("no tty")]
    NoTty,
    /// Its stdin was closed already.
    #[error("stdin is closed")]
    StdinClosed,
    /// Concurrent WriteStdin calls already hold as much data as one process may have waiting.
    #[error(
        "stdin is busy: {in_flight} bytes are already waiting for the process to read; \
         {len} more would pass the limit of {limit}"
    )]
    StdinBusy {
        /// Bytes held by the calls in progress.
        in_flight: usize,
        /// The refused call's bytes.
        len: usize,
        /// [`MAX_STDIN_IN_FLIGHT`](super::stdio::MAX_STDIN_IN_FLIGHT).
        limit: usize,
    },
    /// The process has no such stream (its stdio is /dev/null).
    #[error("the process has no {0}")]
    NoStream(&'static str),
    /// An fd the launcher handed over could not be used.
    #[error("cannot use the {stream} fd")]
    Register {
        /// Which stream.
        stream: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading, writing or resizing a stream failed.
    #[error("{op} failed")]
    Io {
        /// What was tried (`write stdin`, `read stdout`, `resize tty`).
        op: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
}
