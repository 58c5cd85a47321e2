//! The VMM test harness for `kata-agent`: a ttrpc client for Kata's agent contract, a fake VMM
//! that plays the virtual machine around an in-process agent built from the fakes, and a
//! scenario runner that replays device hotplug and cgroup scenarios against it.

pub mod call;
pub mod client;
pub mod messages;
pub mod scenario;
mod shortcuts;
pub mod vmm;
// The real-guest backend, beside the fake VMM.
pub mod qemu;

pub use call::{CallError, call_json};
pub use client::{AgentClient, ConnectError, context, ctx};
pub use vmm::FakeVmm;
