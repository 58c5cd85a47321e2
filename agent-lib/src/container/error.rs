//! What can go wrong with containers and their processes.

use std::io;

use super::hooks::HookError;
use crate::attach::AttachError;
use crate::process::ProcessError;

/// Why a container operation failed; OS failures name the failed step.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The container id is not acceptable.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId {
        /// The id as given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The exec id is not acceptable.
    #[error("invalid exec id {id:?}: {reason}")]
    InvalidExecId {
        /// The id as given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No such container.
    #[error("container {0} not found")]
    NotFound(String),
    /// No such process in the container.
    #[error("process {exec_id:?} of container {container} not found")]
    ProcessNotFound {
        /// The container.
        container: String,
        /// The exec id asked for ("" is the init).
        exec_id: String,
    },
    /// A container with this id exists (or is being created).
    #[error("container {0} already exists")]
    AlreadyExists(String),
    /// A process with this exec id exists in the container.
    #[error("process {exec_id} already exists in container {container}")]
    ProcessExists {
        /// The container.
        container: String,
        /// The exec id.
        exec_id: String,
    },
    /// The spec cannot be run as given.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// A signal number outside 0..=64.
    #[error("invalid signal {0}")]
    InvalidSignal(u32),
    /// The container is not in a state that allows the operation.
    #[error("container {container} is {state}: cannot {operation}")]
    WrongState {
        /// The container.
        container: String,
        /// Its state.
        state: &'static str,
        /// What was asked.
        operation: &'static str,
    },
    /// RemoveContainer's processes did not die within its timeout (Kata answers `ETIME`).
    #[error("timed out after {secs}s waiting for container {container} to stop (ETIME)")]
    Timeout {
        /// The container.
        container: String,
        /// The timeout.
        secs: u64,
    },
    /// An OS operation failed.
    #[error("{step} failed for container {container}")]
    Step {
        /// The container.
        container: String,
        /// What was being done.
        step: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Devices or storages could not be set up or released.
    #[error("container {container}: {source}")]
    Attach {
        /// The container.
        container: String,
        /// Why.
        #[source]
        source: AttachError,
    },
    /// A process operation failed.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// A prestart or createRuntime hook failed.
    #[error("container {container}: {source}")]
    Hook {
        /// The container.
        container: String,
        /// Which hook and why.
        #[source]
        source: HookError,
    },
}

impl ContainerError {
    /// An OS step failure of `container`.
    pub(crate) fn step(
        container: &str,
        step: impl Into<String>,
    ) -> impl FnOnce(io::Error) -> ContainerError {
        let container = container.to_owned();
        let step = step.into();
        move |source| ContainerError::Step {
            container,
            step,
            source,
        }
    }
}
