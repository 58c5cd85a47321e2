//! Why a scenario step failed: the harness's counterpart of [`crate::vmm::VmmError`].

use crate::qemu::QemuError;
use crate::vmm::VmmError;

/// Why a step (or the boot before the first one) failed. The text is what the run prints.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The agent, the guest or a stream did not do what the step expected: expected vs got.
    #[error("{0}")]
    Mismatch(String),
    /// Checks of guest state that did not hold, one per line.
    #[error("{0}")]
    Checks(String),
    /// The step asks for something that cannot be done (a bad name, a missing prerequisite).
    #[error("{0}")]
    Invalid(String),
    /// The fake VMM refused a hot-plug the step did not expect it to refuse.
    #[error("VMM refused: {0}")]
    Refused(#[source] VmmError),
    /// The fake VMM refused an action.
    #[error(transparent)]
    Vmm(#[from] VmmError),
    /// The fake guest could not boot or serve.
    #[error("{0}")]
    Boot(String),
    /// The real guest could not be booted or driven (QEMU, QMP, disk images).
    #[error("{}", chain(.0))]
    Qemu(#[from] QemuError),
    /// The real guest's debug console failed or did not answer.
    #[error("debug console: {0}")]
    Console(String),
    /// A stream to or from the agent failed.
    #[error("{what}: {source}")]
    Stream {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

impl ScenarioError {
    /// A stream failure while doing `what`.
    pub(super) fn stream(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| ScenarioError::Stream { what, source }
    }
}

/// `err` and its sources, `: `-separated.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
