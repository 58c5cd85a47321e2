//! Guest services: guest details, the clock, entropy, CopyFile, diagnostics and metrics.
//!
//! One file per service; each reaches the OS through the [`crate::host`] seams only.

mod copy_file;
mod details;
mod diagnostics;
mod error;
pub mod metrics;
mod random;
mod time;

pub use copy_file::{CopyFileRequest, CopyOutcome, SHARED_DIR, copy_file};
pub use details::{
    AgentDetails, DetailsRequest, EXTRA_FEATURES, GuestDetails, MEMORY_BLOCK_SIZE_PATH,
    MEMORY_PROBE_PATH, is_init_daemon, memory_details, parse_block_size,
};
pub use diagnostics::{LogType, TERMINATION_LOG_MAX, TERMINATION_PATH_ANNOTATION, termination_log};
pub use error::GuestError;
pub use metrics::Metrics;
pub use random::reseed;
pub use time::set_date_time;

/// The state the guest services keep for one agent: its metrics registry.
#[derive(Debug, Default)]
pub struct Guest {
    metrics: Metrics,
}

impl Guest {
    /// Fresh state: no registry yet.
    pub fn new() -> Self {
        Guest::default()
    }

    /// The agent's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}
