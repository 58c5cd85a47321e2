//! The real `kata-agent` binary as root outside a VM, driven over ttrpc as a Kata runtime
//! drives it (`agent_testing::real_agent::RealAgent`): end to end, the container fields the
//! runtime sends, and the network RPCs against what `ip` shows. Real agents run one at a time
//! (a file lock), so these tests do not race each other.

mod network_real;
mod real_ctr_fields;
mod real_e2e;
