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
    /// The source container of a shared mount is unknown (`state` `None`) or not running.
    #[error("{}", shared_source_message(mount, source_name, *state))]
    SharedMountSource {
        /// The shared mount's name.
        mount: String,
        /// The source container's name.
        source_name: String,
        /// Its state when it exists.
        state: Option<&'static str>,
    },
    /// A security label is asked for, but the guest kernel lacks its LSM.
    #[error("{field} {value:?} is set, but {lsm} is not enabled in the guest kernel")]
    LsmMissing {
        /// `process.selinuxLabel`, `process.apparmorProfile` or `linux.mountLabel`.
        field: &'static str,
        /// The label.
        value: String,
        /// `SELinux` or `AppArmor`.
        lsm: &'static str,
    },
    /// The passfd streams the request names cannot be had.
    #[error(transparent)]
    Passfd(#[from] crate::process::PassfdError),
    /// `string_user` does not resolve in the container.
    #[error(transparent)]
    User(#[from] super::user::UserError),
    /// A process operation failed.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// Several teardown steps of RemoveContainer failed, or one did and others wait for it:
    /// the container stays, and a retried RemoveContainer carries on with exactly these.
    #[error("{}", teardown_message(container, failed, waiting))]
    Teardown {
        /// The container.
        container: String,
        /// The failed steps, in the order they were tried.
        failed: Vec<ContainerError>,
        /// The steps not tried because they must follow a failed one.
        waiting: Vec<String>,
    },
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

fn shared_source_message(mount: &str, source: &str, state: Option<&str>) -> String {
    match state {
        None => format!("shared_mounts {mount:?}: source container {source:?} not found"),
        Some(state) => {
            format!("shared_mounts {mount:?}: source container {source:?} is {state}, not running")
        }
    }
}

/// `container c1: teardown incomplete, a retry finishes it: unmount /x failed: <why>; ...;
/// not tried yet: remove /y, ...`.
fn teardown_message(container: &str, failed: &[ContainerError], waiting: &[String]) -> String {
    let failed: Vec<String> = failed
        .iter()
        .map(|e| match e {
            ContainerError::Step { step, source, .. } => format!("{step} failed: {source}"),
            other => {
                let mut text = other.to_string();
                let mut cause = std::error::Error::source(other);
                while let Some(c) = cause {
                    text.push_str(&format!(": {c}"));
                    cause = c.source();
                }
                text
            }
        })
        .collect();
    let mut text = format!(
        "container {container}: teardown incomplete, a retry finishes it: {}",
        failed.join("; ")
    );
    if !waiting.is_empty() {
        text.push_str(&format!("; not tried yet: {}", waiting.join(", ")));
    }
    text
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
