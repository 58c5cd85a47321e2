//! `kata-agent`: a Kata Containers guest agent, library-first.
//!
//! The agent logic talks to the OS only through the traits in [`host`]; [`linux`] implements
//! them for a real guest, and the `agent-fakes` crate implements them in memory. [`rpc`] serves
//! Kata's ttrpc contract over an [`Agent`].

mod agent;
pub mod attach;
pub mod config;
pub mod console;
pub mod container;
pub mod device;
pub mod guest;
pub mod host;
pub mod init;
pub mod linux;
pub mod logging;
pub mod network;
pub mod process;
pub mod ready;
pub mod rpc;
pub mod sandbox;
pub mod startup;
pub mod storage;
pub mod telemetry;
mod undo;

pub use agent::Agent;
