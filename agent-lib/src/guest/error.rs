//! What can go wrong in the guest services.

use std::io;

/// A failed guest-service request.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// A request field is malformed or out of range; nothing was changed.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The request field, as named on the wire.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A CopyFile path that resolves outside the shared directory or through something that is
    /// not a plain directory or regular file (a symbolic link, a fifo); nothing was written.
    #[error("refused {path}: {reason}")]
    Refused {
        /// The path as the host sent it.
        path: String,
        /// Why (the resolution error).
        reason: String,
    },
    /// The container has no termination log to read.
    #[error("no termination log for container {container}: {reason}")]
    NoTerminationLog {
        /// The container id.
        container: String,
        /// What is missing.
        reason: String,
    },
    /// The mem-agent RPCs when `agent.mem_agent_enable` was not set at boot (Kata's message).
    #[error("mem-agent is disabled")]
    MemAgentDisabled,
    /// An OS operation failed.
    #[error("{op}")]
    Io {
        /// What was being done.
        op: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Building the metrics text failed.
    #[error("metrics: {0}")]
    Metrics(String),
}

impl GuestError {
    /// An [`GuestError::Invalid`] for `field`.
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        GuestError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// Wraps an OS error with what was being done.
    pub(crate) fn io(op: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let op = op.into();
        move |source| GuestError::Io { op, source }
    }
}
