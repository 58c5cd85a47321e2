//! The network RPCs on the fakes, over ttrpc, and the order of UpdateInterface's netlink
//! calls against a mock of the seam.

mod network;
mod network_calls;
