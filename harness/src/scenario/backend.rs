//! What a scenario runs on: the fake VMM around an in-process agent, or a real guest under
//! QEMU. The runner drives RPC steps (calls, awaits, `advance`) the same way on both; every
//! other step goes to the backend.

use std::time::Duration;

use super::error::ScenarioError;
use super::format::Step;
use super::trace::TraceEntry;
use crate::client::AgentClient;

/// What a non-RPC step came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done {
    /// It ran in full.
    Ran,
    /// It could not run on this backend, for this reason (never counted as passed).
    Skipped(String),
    /// It ran, but these parts could not (the reason).
    Partly(String),
}

/// A guest the runner drives.
pub(super) trait Backend {
    /// The agent's client, for RPC steps.
    fn client(&self) -> AgentClient;

    /// How long a background call is given to reach the agent before the next step.
    fn background_grace(&self) -> Duration;

    /// The timeout of an RPC step that gives none (zero: none).
    fn call_limit(&self) -> Duration;

    /// Runs a step that is not an RPC, `call`, `await` or `advance`; fills `entry`.
    async fn device_step(
        &mut self,
        step: &Step,
        entry: &mut TraceEntry,
    ) -> Result<Done, ScenarioError>;

    /// The uevents the guest delivered since the last call, as trace lines.
    fn new_uevents(&mut self) -> Vec<String>;

    /// Stops the guest.
    async fn finish(self);
}
