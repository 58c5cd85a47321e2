//! Tracing (`agent.trace`): a span per RPC, continuing the host's trace from the request's
//! `traceparent` metadata, and per major step inside it (container creation, device waits,
//! storage mounts), exported to the host's trace collector in Kata's format.
//!
//! Library code only opens `tracing` spans; the binary installs [`SpanLayer`] and runs
//! [`export`] on the agent's transport, so tests and the harness collect spans on theirs.

mod context;
mod export;
mod layer;
mod span;

pub use context::{IdSource, TraceParent};
pub use export::{HOST_CID, RETRY, TRACE_PORT, collector_addr, export, frame};
pub use layer::{ERROR_FIELD, NAME_FIELD, PARENT_FIELD, SpanLayer};
pub use span::{AttrValue, SpanRecord};
