//! ttrpc contexts and the status of failed calls.

use std::fmt::Debug;
use std::time::Duration;

use agent_harness::context;
pub use agent_harness::ctx;

/// The deadline of calls that must answer (not waits or long polls).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A context with [`CALL_TIMEOUT`].
pub fn timed_ctx() -> ttrpc::context::Context {
    context(CALL_TIMEOUT)
}

/// The outcome of a call, owned or borrowed, whose error status tests read.
pub trait Outcome: Debug {
    /// The RPC status of a failed call; `None` for a success or a transport error.
    fn status(&self) -> Option<&ttrpc::proto::Status>;
}

impl<T: Debug> Outcome for ttrpc::Result<T> {
    fn status(&self) -> Option<&ttrpc::proto::Status> {
        match self {
            Err(ttrpc::Error::RpcStatus(status)) => Some(status),
            _ => None,
        }
    }
}

impl<T: Outcome> Outcome for &T {
    fn status(&self) -> Option<&ttrpc::proto::Status> {
        (**self).status()
    }
}

/// The status code of a failed call; panics on anything but an RPC status error.
pub fn code(result: impl Outcome) -> ttrpc::Code {
    match result.status() {
        Some(status) => status.code(),
        None => panic!("expected an RPC status error, got {result:?}"),
    }
}

/// The status message of a failed call; panics on anything but an RPC status error.
pub fn message(result: impl Outcome) -> String {
    match result.status() {
        Some(status) => status.message().to_owned(),
        None => panic!("expected an RPC status error, got {result:?}"),
    }
}
