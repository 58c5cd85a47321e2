//! The guest side on the fakes: init as PID 1, the guest-service RPCs and the mem-agent.

mod guest;
mod guest_mem_agent;
mod init;
mod start_order;
