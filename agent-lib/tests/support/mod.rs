//! Fixtures shared by the real-kernel tests: a busybox rootfs, and a real `kata-agent` process
//! driven over ttrpc.

#![allow(dead_code)]

pub mod host_state;
pub mod real_agent;
pub mod rootfs;
pub mod wire;
