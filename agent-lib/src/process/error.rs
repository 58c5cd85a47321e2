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
