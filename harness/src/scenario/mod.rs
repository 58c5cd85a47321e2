//! Scenarios: YAML files of steps (RPC calls with expected replies, VMM actions, uevent
//! delivery rules, fault injections, guest-state checks) run against an in-process agent on
//! the fakes, inside the fake VMM, on paused tokio time; each run yields a deterministic
//! trace compared with its snapshot. See `format` for the file format.

mod agent_start;
mod backend;
mod capture;
mod check;
mod error;
mod expect;
mod fake;
pub mod format;
pub mod parity;
mod passfd;
pub mod port_steps;
mod ports;
mod real;
mod real_check;
mod real_mounts;
mod real_plug;
pub mod record;
mod runner;
pub mod suite;
mod sweep;
pub mod trace;
mod vm;

pub use agent_start::{AgentStart, agent_start};
pub use backend::Done;
pub use error::{FormatError, ScenarioError};
pub use format::{Scenario, Step};
pub use real::{RealOptions, RealOutcome, rootfs_paths, run_real};
pub use runner::{Outcome, Skip, StepError, run, run_once};
pub use trace::Trace;
pub use vm::{BootInfo, GuestVm};
