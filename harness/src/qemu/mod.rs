//! The QEMU backend: a real guest kernel (Debian's cloud kernel) booted under
//! `qemu-system-x86_64` from an initramfs holding the release agent as PID 1, reached over
//! hybrid vsock through `vhost-device-vsock`, with hotplug through QMP.

pub mod cpio;
pub mod guest;
pub mod initramfs;
pub mod kernel;
pub mod launch;
pub mod modules;
pub mod qmp;
pub mod shell;

use std::path::Path;

pub use guest::{BootSpec, RealGuest};
pub use launch::QemuVm;
pub use qmp::Qmp;

/// Why the real guest could not be prepared, booted or driven.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// A file or socket could not be used.
    #[error("{path}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A program could not be started.
    #[error("cannot run {program}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A program failed.
    #[error("{command} failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its stderr.
        detail: String,
    },
    /// The kernel package or its modules are not usable.
    #[error("guest kernel: {detail}")]
    Kernel {
        /// What is wrong.
        detail: String,
    },
    /// Something the backend needs is not there.
    #[error("missing {what}")]
    Missing {
        /// What.
        what: String,
    },
    /// A container root the initramfs cannot provide.
    #[error(
        "OCI.Root.Path {path:?}: a real-VM container root must be an absolute path under /run/ without `..` or spaces"
    )]
    Rootfs {
        /// The path.
        path: String,
    },
    /// A QMP command failed.
    #[error("QMP {command}: {detail}")]
    Qmp {
        /// The command.
        command: String,
        /// QEMU's answer.
        detail: String,
    },
    /// A request the harness refuses before it reaches QEMU, as Kata's runtime would.
    #[error("refused: {detail}")]
    Refused {
        /// Why.
        detail: String,
    },
    /// The debug console failed, did not answer, or was given a path it cannot quote.
    #[error("debug console: {detail}")]
    Console {
        /// What went wrong.
        detail: String,
    },
    /// The agent did not answer in time.
    #[error(
        "the agent did not answer Check within {seconds} s (last attempt: {last}); console tail:\n{console}"
    )]
    NotReady {
        /// How long was waited.
        seconds: u64,
        /// Why the last attempt failed.
        last: String,
        /// The end of the guest console.
        console: String,
    },
}

impl QemuError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        QemuError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
