//! [`DeviceError`]: why finding, waiting for or adding a device failed.

use std::io;
use std::path::PathBuf;

use super::pci::PciError;
use super::watcher::WaitError;

/// Why a device lookup, a device handler or a hotplug request failed. Each variant names the
/// failed step and the device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The request is malformed (missing field, bad device name, unknown type...).
    #[error("invalid device request: {0}")]
    Invalid(String),
    /// A PCI path or address is malformed or cannot be resolved in sysfs.
    #[error(transparent)]
    Pci(#[from] PciError),
    /// The device did not appear in time, or the watcher stopped.
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// A sysfs or /dev read or write failed.
    #[error("{op} {path}: {source}")]
    Sysfs {
        /// What was being done (`read`, `write`, `list`, `stat`, `read link`).
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The device appeared but its major:minor cannot be learned.
    #[error("device {device}: {reason}")]
    Numbers {
        /// The device.
        device: String,
        /// Why.
        reason: String,
    },
    /// A VFIO device has no IOMMU group, or the devices of one request are in several groups.
    #[error("VFIO: {0}")]
    Iommu(String),
    /// The OCI spec cannot be rewritten for the devices.
    #[error("updating the OCI spec: {0}")]
    Spec(String),
    /// CPUs could not be onlined.
    #[error("failed to online {wanted} CPU(s) after {retries} retries ({online} online)")]
    CpuOnline {
        /// CPUs asked for.
        wanted: u32,
        /// CPUs online at the end.
        online: u32,
        /// Attempts made.
        retries: u32,
    },
}

impl DeviceError {
    pub(crate) fn sysfs(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        DeviceError::Sysfs {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether the error is the caller's fault (a malformed request), as opposed to the guest's.
    pub fn is_invalid_request(&self) -> bool {
        matches!(
            self,
            DeviceError::Invalid(_)
                | DeviceError::Pci(PciError::Syntax { .. } | PciError::EmptyPath)
        )
    }

    /// Whether the device did not appear within the hotplug timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, DeviceError::Wait(WaitError::Timeout { .. }))
    }
}
