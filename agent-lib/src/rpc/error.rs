//! The one mapping from agent errors to ttrpc statuses.

use ttrpc::{Code, Error};

/// A ttrpc status error with `code` and `message`.
pub(crate) fn status(code: Code, message: impl Into<String>) -> Error {
    Error::RpcStatus(ttrpc::get_status(code, message.into()))
}

/// The status of a failed device lookup, device handler or hotplug request: a malformed
/// request is `INVALID_ARGUMENT`, a device that did not appear in time `DEADLINE_EXCEEDED`,
/// anything else `INTERNAL`. The message carries the whole error chain.
pub(crate) fn device_error(err: &crate::device::DeviceError) -> Error {
    let code = if err.is_invalid_request() {
        Code::INVALID_ARGUMENT
    } else if err.is_timeout() {
        Code::DEADLINE_EXCEEDED
    } else {
        Code::INTERNAL
    };
    status(code, chain(err))
}

/// `err: cause: cause...`.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The status of a failed storage request or storage RPC: bad input (unknown driver, bad option
/// or field) is `INVALID_ARGUMENT`, a device that did not appear in time `DEADLINE_EXCEEDED`, a
/// path that is not a volume `NOT_FOUND`, something this agent cannot do `UNIMPLEMENTED`,
/// anything else `INTERNAL`. The message carries the whole error chain.
pub(crate) fn storage_error(err: &crate::storage::StorageError) -> Error {
    use crate::storage::StorageError;
    let code = if err.is_invalid_input() {
        Code::INVALID_ARGUMENT
    } else if err.is_timeout() {
        Code::DEADLINE_EXCEEDED
    } else {
        match err {
            StorageError::NoVolume(_) => Code::NOT_FOUND,
            StorageError::Unsupported(_) => Code::UNIMPLEMENTED,
            _ => Code::INTERNAL,
        }
    };
    status(code, chain(err))
}

/// The status of a failed device or storage step of CreateSandbox or CreateContainer.
fn attach_code(err: &crate::attach::AttachError) -> Code {
    use crate::attach::AttachError;
    let status = match err {
        AttachError::Device(e) => device_error(e),
        AttachError::Storage(e) => storage_error(e),
    };
    match status {
        Error::RpcStatus(s) => s.code(),
        _ => Code::INTERNAL,
    }
}

/// The status of a failed process operation: `NoTty` is `UNAVAILABLE` ("no tty", as Kata), a
/// bad process `INVALID_ARGUMENT`, a closed or missing stream `FAILED_PRECONDITION`, too much
/// stdin waiting `RESOURCE_EXHAUSTED`.
fn process_code(err: &crate::process::ProcessError) -> Code {
    use crate::process::ProcessError;
    match err {
        ProcessError::InvalidProcess(_) => Code::INVALID_ARGUMENT,
        ProcessError::NoTty => Code::UNAVAILABLE,
        ProcessError::StdinBusy { .. } => Code::RESOURCE_EXHAUSTED,
        ProcessError::StdinClosed | ProcessError::NoStream(_) => Code::FAILED_PRECONDITION,
        ProcessError::Register { .. } | ProcessError::Io { .. } => Code::INTERNAL,
    }
}

/// The status of a failed container or process RPC: unknown container or process `NOT_FOUND`,
/// bad ids, specs and signals `INVALID_ARGUMENT`, duplicates `ALREADY_EXISTS`, a container in
/// the wrong state `FAILED_PRECONDITION`, a RemoveContainer timeout `DEADLINE_EXCEEDED` (its
/// message names ETIME), failed OS steps `INTERNAL`. And for the fields of issue #16: a
/// `string_user` that does not resolve `INVALID_ARGUMENT` (an unreadable passwd or group
/// `INTERNAL`); a shared mount's unknown source `NOT_FOUND`, one not running
/// `FAILED_PRECONDITION`; a label whose LSM the guest lacks `FAILED_PRECONDITION`; passfd ports
/// without a listener `INVALID_ARGUMENT`, a stream that never came `DEADLINE_EXCEEDED`.
pub(crate) fn container_error(err: &crate::container::ContainerError) -> Error {
    use crate::container::ContainerError as E;
    let code = match err {
        E::InvalidId { .. } | E::InvalidExecId { .. } | E::InvalidSpec(_) | E::InvalidSignal(_) => {
            Code::INVALID_ARGUMENT
        }
        E::NotFound(_) | E::ProcessNotFound { .. } => Code::NOT_FOUND,
        E::AlreadyExists(_) | E::ProcessExists { .. } => Code::ALREADY_EXISTS,
        E::WrongState { .. } => Code::FAILED_PRECONDITION,
        E::Timeout { .. } => Code::DEADLINE_EXCEEDED,
        E::Step { .. } | E::Hook { .. } | E::Teardown { .. } => Code::INTERNAL,
        E::Attach { source, .. } => attach_code(source),
        E::Process(e) => process_code(e),
        E::LsmMissing { .. } => Code::FAILED_PRECONDITION,
        E::Passfd(crate::process::PassfdError::Disabled { .. }) => Code::INVALID_ARGUMENT,
        E::Passfd(crate::process::PassfdError::Missing { .. }) => Code::DEADLINE_EXCEEDED,
        E::SharedMountSource { state: None, .. } => Code::NOT_FOUND,
        E::SharedMountSource { .. } => Code::FAILED_PRECONDITION,
        E::User(crate::container::UserError::Read { .. }) => Code::INTERNAL,
        E::User(_) => Code::INVALID_ARGUMENT,
    };
    status(code, chain(err))
}

/// The status of a failed process (stdio) operation.
pub(crate) fn process_error(err: &crate::process::ProcessError) -> Error {
    status(process_code(err), chain(err))
}

/// The status of a failed CreateSandbox or DestroySandbox.
pub(crate) fn sandbox_error(err: &crate::sandbox::SandboxError) -> Error {
    use crate::sandbox::SandboxError as E;
    let code = match err {
        E::AlreadyCreated => Code::ALREADY_EXISTS,
        E::InvalidRequest(_) => Code::INVALID_ARGUMENT,
        E::Storages(e) => attach_code(e),
        E::Step { .. } | E::Module { .. } | E::ModuleIo { .. } | E::ResolvConfIsDirectory => {
            Code::INTERNAL
        }
    };
    status(code, chain(err))
}

/// The status of a failed guest-service request: a bad field `INVALID_ARGUMENT`, a CopyFile
/// path refused because it leads outside the shared directory or through a link or fifo
/// `PERMISSION_DENIED`, a missing termination log `NOT_FOUND`, the mem-agent RPCs while it is
/// disabled `INTERNAL "mem-agent is disabled"` (Kata's answer), failed OS steps `INTERNAL`.
pub(crate) fn guest_error(err: &crate::guest::GuestError) -> Error {
    use crate::guest::GuestError as E;
    let code = match err {
        E::Invalid { .. } => Code::INVALID_ARGUMENT,
        E::Refused { .. } => Code::PERMISSION_DENIED,
        E::NoTerminationLog { .. } => Code::NOT_FOUND,
        E::MemAgentDisabled | E::Io { .. } | E::Metrics(_) => Code::INTERNAL,
    };
    status(code, chain(err))
}

/// The status of a wire spec that does not convert: `INVALID_ARGUMENT`.
pub(crate) fn oci_error(err: &super::oci::OciError) -> Error {
    status(Code::INVALID_ARGUMENT, err.to_string())
}

/// The status of a failed network RPC: bad input `INVALID_ARGUMENT`, an unknown link
/// `NOT_FOUND` (its message starts with "Link not found", which the Kata runtime retries on),
/// a NIC that did not appear in time `DEADLINE_EXCEEDED`, a missing iptables program
/// `FAILED_PRECONDITION`, anything else `INTERNAL`.
pub(crate) fn network_error(err: &crate::network::NetworkError) -> Error {
    use crate::network::NetworkError as E;
    let code = match err {
        e if e.is_invalid_input() => Code::INVALID_ARGUMENT,
        E::LinkNotFound(_) => Code::NOT_FOUND,
        E::Device { source, .. } if source.is_timeout() => Code::DEADLINE_EXCEEDED,
        E::MissingProgram { .. } => Code::FAILED_PRECONDITION,
        _ => Code::INTERNAL,
    };
    status(code, chain(err))
}
