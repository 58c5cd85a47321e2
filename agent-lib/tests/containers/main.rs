//! The container RPCs on the fakes, over ttrpc: lifecycle, errors, faults and their undo,
//! hooks, labels, passed fds, shared mounts, string users and the security rules. One binary:
//! the fixtures of `agent_testing::pod` compile once.

mod container_errors;
mod container_faults;
mod container_hooks;
mod container_labels;
mod container_lifecycle;
mod container_passfd;
mod container_remove_faults;
mod container_shared_mounts;
mod container_stats_lock;
mod container_string_user;
mod security_rules;
