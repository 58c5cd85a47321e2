//! The agent's log: lines in Kata's JSON shape ([`format`]) and, with `agent.log_vport`,
//! their forwarding to the host ([`forward`]). Libraries only emit `tracing` events; the
//! binary installs the subscriber.

mod format;
mod forward;

pub use format::{JsonFields, KataJsonFormat};
pub use forward::{LOG_BUFFER, LogForwarder, LogWriter, dropped_line, log_port};
