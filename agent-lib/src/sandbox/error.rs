//! What can go wrong with the sandbox.

use std::io;

use crate::attach::AttachError;
use crate::process::CommandError;

/// Why CreateSandbox or DestroySandbox failed; each variant names the failed step.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// CreateSandbox was called twice.
    #[error("the sandbox was created already")]
    AlreadyCreated,
    /// The request cannot be served as given.
    #[error("invalid sandbox request: {0}")]
    InvalidRequest(String),
    /// An OS operation failed.
    #[error("{step} failed")]
    Step {
        /// What was being done (`create /run/kata-containers`, `pin ipc namespace`...).
        step: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// modprobe could not load a kernel module.
    #[error("loading kernel module {module} failed: {reason}")]
    Module {
        /// The module.
        module: String,
        /// How modprobe ended and what it said.
        reason: String,
    },
    /// modprobe could not be started, its output could not be collected, or it hung.
    #[error("loading kernel module {module} failed: modprobe")]
    ModuleIo {
        /// The module.
        module: String,
        /// Why.
        #[source]
        source: CommandError,
    },
    /// /etc/resolv.conf is a directory, so the sandbox DNS cannot be bound over it.
    #[error("/etc/resolv.conf is a directory")]
    ResolvConfIsDirectory,
    /// The sandbox storages could not be set up.
    #[error("sandbox storages failed")]
    Storages(#[from] AttachError),
}

impl SandboxError {
    /// An OS step failure.
    pub(crate) fn step(step: impl Into<String>) -> impl FnOnce(io::Error) -> SandboxError {
        let step = step.into();
        move |source| SandboxError::Step { step, source }
    }
}
