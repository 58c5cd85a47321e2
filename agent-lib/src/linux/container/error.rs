//! The error of a container setup step.

use std::io;

/// A container setup step that failed, named for the step (`mount proc on /proc`).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A system call or file operation failed.
    #[error("{step}: {source}")]
    Step {
        /// What was being done.
        step: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The spec asks for something invalid or that this agent cannot do.
    #[error("{0}")]
    Spec(String),
}

impl SetupError {
    /// The errno of a failed step, if it has one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SetupError::Step { source, .. } => source.raw_os_error(),
            SetupError::Spec(_) => None,
        }
    }

    pub(super) fn spec(msg: impl Into<String>) -> Self {
        SetupError::Spec(msg.into())
    }
}

/// Names the step of a fallible operation.
pub(super) trait Step<T> {
    /// On error, a [`SetupError::Step`] named by `step()`.
    fn step(self, step: impl FnOnce() -> String) -> Result<T, SetupError>;
}

impl<T> Step<T> for io::Result<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T, SetupError> {
        self.map_err(|source| SetupError::Step {
            step: step(),
            source,
        })
    }
}

impl<T> Step<T> for nix::Result<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T, SetupError> {
        self.map_err(|errno| SetupError::Step {
            step: step(),
            source: io::Error::from(errno),
        })
    }
}

/// The result of a setup step.
pub(super) type Result<T, E = SetupError> = std::result::Result<T, E>;
