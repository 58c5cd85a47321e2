//! The one mapping from agent errors to ttrpc statuses.

use ttrpc::{Code, Error};

/// A ttrpc status error with `code` and `message`.
pub(crate) fn status(code: Code, message: impl Into<String>) -> Error {
    Error::RpcStatus(ttrpc::get_status(code, message.into()))
}

/// The answer of an RPC this agent does not serve (yet).
///
/// `UNIMPLEMENTED` is what Kata's runtime treats as "older agent" and tolerates where it can.
pub(crate) fn not_implemented(method: &str) -> Error {
    status(
        Code::UNIMPLEMENTED,
        format!("grpc.AgentService/{method} is not implemented by this agent"),
    )
}
