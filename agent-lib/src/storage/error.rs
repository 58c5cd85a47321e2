//! The one error type of the storage subsystem.

use std::io;
use std::path::PathBuf;

use crate::device::DeviceError;

/// Why a storage request or a storage RPC failed. Each variant names the failed step.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// `Storage.driver` names no registered driver.
    #[error("unknown storage driver {0:?}")]
    UnknownDriver(String),
    /// A mount option is unknown, malformed or contradicts another one.
    #[error("invalid mount option {option:?}: {reason}")]
    InvalidOption {
        /// The option as given.
        option: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A field of the request is missing or malformed.
    #[error("invalid storage {field}: {reason}")]
    InvalidRequest {
        /// The field (`source`, `mount_point`, `driver_options`...).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An OS call failed.
    #[error("{step} {}: {source}", path.display())]
    Os {
        /// What was being done (`mount`, `create mount point`, `chown`...).
        step: &'static str,
        /// On what.
        path: PathBuf,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// The source of a block storage is not a block device.
    #[error("{} is not a block device", .0.display())]
    NotBlockDevice(PathBuf),
    /// The kernel reserved fewer huge pages than a hugetlbfs storage needs.
    #[error("reserved only {got} of {wanted} huge pages in {}", path.display())]
    HugePages {
        /// The `nr_hugepages` file.
        path: PathBuf,
        /// Pages asked for.
        wanted: u64,
        /// Pages the kernel reports.
        got: u64,
    },
    /// The device of a block storage did not show up, or could not be resolved.
    #[error("device of the storage: {0}")]
    Device(#[from] DeviceError),
    /// The request is well formed but this agent cannot do it.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The path is not a mounted volume, or does not exist.
    #[error("no volume at {}", .0.display())]
    NoVolume(PathBuf),
    /// A helper program failed.
    #[error("{program} failed: {reason}")]
    Command {
        /// The program.
        program: String,
        /// Its exit status, or why it could not run.
        reason: String,
    },
    /// Releasing storages left some behind; each entry names the mount point and the error.
    #[error("release left {} storage(s) behind: {}", .0.len(), summary(.0))]
    Release(Vec<(PathBuf, String)>),
}

fn summary(failures: &[(PathBuf, String)]) -> String {
    failures
        .iter()
        .map(|(path, err)| format!("{}: {err}", path.display()))
        .collect::<Vec<_>>()
        .join("; ")
}

impl StorageError {
    /// An [`StorageError::Os`] for `step` on `path`.
    pub(crate) fn os(step: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StorageError::Os {
            step,
            path: path.into(),
            source,
        }
    }

    /// An [`StorageError::InvalidOption`].
    pub(crate) fn option(option: impl Into<String>, reason: impl Into<String>) -> Self {
        StorageError::InvalidOption {
            option: option.into(),
            reason: reason.into(),
        }
    }

    /// An [`StorageError::InvalidRequest`].
    pub(crate) fn request(field: &'static str, reason: impl Into<String>) -> Self {
        StorageError::InvalidRequest {
            field,
            reason: reason.into(),
        }
    }

    /// Whether a device did not appear within the hotplug timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, StorageError::Device(e) if e.is_timeout())
    }

    /// Whether the caller sent something this agent rejects (bad driver, option or field).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            StorageError::UnknownDriver(_)
                | StorageError::InvalidOption { .. }
                | StorageError::InvalidRequest { .. }
                | StorageError::NotBlockDevice(_)
        ) || matches!(self, StorageError::Device(e) if e.is_invalid_request())
    }
}
