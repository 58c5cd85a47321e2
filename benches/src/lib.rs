//! Fixtures shared by the criterion benches and the regression gate: an agent on the fakes
//! served over a real unix socket, a bare ttrpc server as the floor of the RPC round trip, a
//! pod on the fakes inside the harness's fake VMM, a pod on real Linux with busybox
//! containers (on the host's cgroups or on cgroup v2) and the floor of a real exec, the RPC sequences they time, and latency
//! statistics.

pub mod calls;
pub mod cgroup2;
pub mod echo;
pub mod fixture;
pub mod floor;
pub mod guest;
pub mod real;
pub mod requests;
pub mod stats;
pub mod uevents;

pub use echo::EchoServer;
pub use fixture::SocketAgent;
pub use guest::FakePod;
pub use real::RealPod;
