//! Guest services: guest details, the clock, entropy, CopyFile, diagnostics, metrics and the
//! mem-agent.
//!
//! One file per service; each reaches the OS through the [`crate::host`] seams only.

mod copy_file;
mod details;
mod diagnostics;
mod error;
pub mod mem_agent;
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

use std::sync::Arc;

use crate::config::MemAgentConfig;
use mem_agent::MemAgent;

/// The state the guest services keep for one agent: its metrics registry and, when enabled at
/// boot, its mem-agent.
#[derive(Debug, Default)]
pub struct Guest {
    metrics: Metrics,
    mem_agent: Option<Arc<MemAgent>>,
}

impl Guest {
    /// Fresh state: no registry yet; a mem-agent with `mem_agent` settings when given
    /// (`agent.mem_agent_enable`).
    pub fn new(mem_agent: Option<MemAgentConfig>) -> Self {
        Guest {
            metrics: Metrics::new(),
            mem_agent: mem_agent.map(|config| Arc::new(MemAgent::new(config))),
        }
    }

    /// The agent's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The mem-agent, or [`GuestError::MemAgentDisabled`] when it was not enabled at boot.
    pub fn mem_agent(&self) -> Result<&Arc<MemAgent>, GuestError> {
        self.mem_agent.as_ref().ok_or(GuestError::MemAgentDisabled)
    }
}
