//! Fixtures shared by the criterion benches and the regression gate: an agent on the fakes
//! served over a real unix socket, and a bare ttrpc server as the floor of the RPC round trip.

pub mod echo;
pub mod fixture;

pub use echo::EchoServer;
pub use fixture::SocketAgent;
