//! In-memory implementations of every host seam of the agent ([`kata_agent::host`]), for the
//! VMM test harness, benches and tests.
//!
//! Each fake is a typed, stateful model of its OS facility with kernel-like errors, built on
//! tokio time and free of global state. All share one [`Faults`] (fault injection and call
//! counting, see [`Op`]); [`FakeHost`] bundles them, hands them to the agent as a
//! [`kata_agent::host::Host`], and reports what a scenario left behind ([`Leftovers`]).
//!
//! ```
//! use agent_fakes::{FakeHost, Op, Script};
//! use kata_agent::host::MountSpec;
//! use nix::errno::Errno;
//!
//! let fake = FakeHost::new();
//! fake.launcher.script("true", Script::exit(0));
//! let host = fake.host(); // what the agent gets
//!
//! fake.faults.fail_next(Op::Mount, Errno::ENOSPC);
//! let spec = MountSpec::new("tmpfs", "/run/x", "tmpfs");
//! assert!(host.mounter.mount(&spec).is_err());
//! assert!(fake.leftovers().is_empty());
//!
//! host.mounter.mount(&spec).unwrap();
//! assert_eq!(fake.leftovers().mounts.len(), 1);
//! assert_eq!(fake.faults.calls(Op::Mount), 2);
//! ```

#![warn(missing_docs)]

mod cgroups;
mod faults;
mod file_tree;
mod host;
mod launcher;
mod mounter;
mod netlink;
mod script;
mod sysfs;
mod system;
mod transport;
mod uevent;

pub use cgroups::{CgroupState, FakeCgroups, StatsHold};
pub use faults::{FaultPoint, Faults, Op, lock};
pub use file_tree::FakeFileTree;
pub use host::{FakeHost, Leftovers};
pub use launcher::{ExitHook, FIRST_PID, FakeLauncher, LaunchRecord};
pub use mounter::{FakeMount, FakeMounter, FakeSharedMount};
pub use netlink::{FakeNetlink, NetState};
pub use script::{End, Reaction, Script, Step};
pub use sysfs::{FakeSysfs, WriteHook};
pub use system::FakeSystem;
pub use transport::{DEFAULT_BUFFER, FakeTransport};
pub use uevent::{FakeUevents, uevent_datagram};
