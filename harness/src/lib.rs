//! The VMM test harness for `kata-agent`: a ttrpc client for Kata's agent contract, and (as it
//! grows) a fake VMM and a scenario runner that replay device hotplug and cgroup scenarios
//! against an agent built from the fakes.

pub mod call;
pub mod client;

pub use call::{CallError, call_json};
pub use client::{AgentClient, ConnectError, context};
