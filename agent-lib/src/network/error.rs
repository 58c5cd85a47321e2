//! [`NetworkError`]: why a network RPC failed.

use std::io;

use crate::device::DeviceError;

/// Why configuring or reading the guest's network failed. Each variant names what failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A request field is malformed; nothing was changed.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        /// The request field.
        field: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No link matches. The text starts with "Link not found", which the Kata runtime looks
    /// for to retry UpdateInterface while a hot-plugged NIC is still on its way.
    #[error("Link not found ({0})")]
    LinkNotFound(String),
    /// The NIC given by PCI path did not appear, or its path is bad.
    #[error("network interface at PCI path {path}: {source}")]
    Device {
        /// The PCI path.
        path: String,
        /// Why.
        #[source]
        source: DeviceError,
    },
    /// A netlink (or procfs) step failed; what was changed before it has been undone.
    #[error("{step}: {source}")]
    Step {
        /// The failed step.
        step: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// An iptables program is missing from the guest.
    #[error("{program} not found in {searched}")]
    MissingProgram {
        /// The program.
        program: &'static str,
        /// The directories searched.
        searched: String,
    },
    /// An iptables program ran and failed, or could not be run.
    #[error("{program}: {reason}")]
    Command {
        /// The program.
        program: String,
        /// What went wrong (exit code and stderr).
        reason: String,
    },
    /// An iptables program could not be run to its end.
    #[error("{program}")]
    Run {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: crate::process::CommandError,
    },
}

impl NetworkError {
    /// A malformed `field` holding `value`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        NetworkError::Invalid {
            field: field.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// A constructor for `map_err` on a failed step.
    pub(crate) fn step(step: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let step = step.into();
        move |source| NetworkError::Step { step, source }
    }

    /// Whether the request itself is at fault.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            NetworkError::Invalid { .. } => true,
            NetworkError::Device { source, .. } => source.is_invalid_request(),
            _ => false,
        }
    }
}
