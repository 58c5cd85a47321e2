//! The trace of a scenario run: each step with the agent's reply or error, what the VMM did,
//! and the uevents delivered meanwhile, on virtual time. It is deterministic (paused tokio
//! time, one runtime thread) and normalized (versions, listed keys), so it can be snapshotted.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value as Json;

use super::vm::BootInfo;
use crate::vmm::guest::Delivery;

/// One step's record.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TraceEntry {
    /// `3. call Check`.
    pub step: String,
    /// Virtual time when the step ended.
    pub at: String,
    /// The agent's reply (normalized).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<Json>,
    /// The agent's error: `CODE: message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the VMM did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmm: Option<String>,
    /// How many checks held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked: Option<usize>,
    /// Uevents delivered (or dropped) during the step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uevents: Vec<String>,
    /// A fault sweep's runs, one line per fault point.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<String>,
}

/// A whole run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trace {
    /// The scenario's name.
    pub scenario: String,
    /// The boot.
    pub boot: BootInfo,
    /// The steps run (up to the failing one).
    pub steps: Vec<TraceEntry>,
}

impl Trace {
    /// The trace as YAML text (what snapshots hold).
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_else(|e| format!("unserializable trace: {e}\n"))
    }
}

/// `1s 500ms`, `0s`.
pub fn time(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// `+1s #3 add@/devices/... [block] DEVNAME=vda`.
pub fn uevent_line(d: &Delivery) -> String {
    format!("{} #{} {d}", time(d.at), d.seqnum)
}
