//! The agent's test-support layer, shared by every test binary of the workspace (as youki's
//! `test_utils` and Firecracker's `TestContext`): one fixture per level, one wire-spec builder,
//! one root check and the small helpers tests kept writing again.
//!
//! Which fixture to use:
//! - **fakes, in-process**: [`pod::Pod`] is an agent on [`agent_fakes::FakeHost`] served over
//!   ttrpc on the fake transport, with a connected client. The device and storage tests take
//!   views of a pod built by it: `Pod::devices(cmdline)` gives a [`devices::Rig`] (the agent
//!   started, its uevent loop and device handlers at hand) and `Pod::storages()` a
//!   [`storage::Bench`] (the agent's storage drivers); both dereference to the pod.
//! - **the real binary over a socket**: [`real_agent::RealAgent`] starts `kata-agent` and drives
//!   it over a unix socket, as a Kata runtime would: as root in its own namespaces with real
//!   containers (their rootfs is a busybox [`rootfs`], and [`host_state`] reads what the host
//!   shows of them), or unprivileged, for the binary's own CLI, log and ports.
//! - **a whole guest**, in the harness: `agent_harness::scenario::GuestVm` on the fake VMM (the
//!   scenarios), and a real QEMU guest through `harness run --vmm qemu` (`agent_harness::qemu`).
//!
//! Specs are built by [`wire::SpecBuilder`]; calls take [`ctx`] (no deadline) or
//! [`timed_ctx`]; failed calls are read with [`code`] and [`message`]; tests that need root
//! begin with [`skip_unless_root!`].

pub mod devices;
pub mod host_state;
pub mod io;
mod launch;
pub mod ns;
pub mod pod;
pub mod real_agent;
pub mod root;
pub mod rootfs;
pub mod rpc;
pub mod storage;
pub mod wire;

pub use agent_fakes::lock;
pub use io::read_all;
pub use launch::{agent_command, file_lock};
pub use root::{is_root, require_root};
pub use rpc::{code, ctx, message, timed_ctx};
