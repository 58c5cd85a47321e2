//! The one mapping from agent errors to ttrpc statuses.

use ttrpc::{Code, Error};

/// A ttrpc status error with `code` and `message`.
pub(crate) fn status(code: Code, message: impl Into<String>) -> Error {
    Error::RpcStatus(ttrpc::get_status(code, message.into()))
}

/// A failed device lookup, device handler or hotplug request: a malformed request is
/// `INVALID_ARGUMENT`, a device that did not appear in time `DEADLINE_EXCEEDED`, anything else
/// `INTERNAL`.
fn device_code(err: &crate::device::DeviceError) -> Code {
    if err.is_invalid_request() {
        Code::INVALID_ARGUMENT
    } else if err.is_timeout() {
        Code::DEADLINE_EXCEEDED
    } else {
        Code::INTERNAL
    }
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

/// A failed storage request or storage RPC: bad input (unknown driver, bad option or field) is
/// `INVALID_ARGUMENT`, a device that did not appear in time `DEADLINE_EXCEEDED`, a path that is
/// not a volume `NOT_FOUND`, something this agent cannot do `UNIMPLEMENTED`, anything else
/// `INTERNAL`.
fn storage_code(err: &crate::storage::StorageError) -> Code {
    use crate::storage::StorageError;
    if err.is_invalid_input() {
        Code::INVALID_ARGUMENT
    } else if err.is_timeout() {
        Code::DEADLINE_EXCEEDED
    } else {
        match err {
            StorageError::NoVolume(_) => Code::NOT_FOUND,
            StorageError::Unsupported(_) => Code::UNIMPLEMENTED,
            _ => Code::INTERNAL,
        }
    }
}

/// A failed device or storage step of CreateSandbox or CreateContainer.
fn attach_code(err: &crate::attach::AttachError) -> Code {
    use crate::attach::AttachError;
    match err {
        AttachError::Device(e) => device_code(e),
        AttachError::Storage(e) => storage_code(e),
    }
}

/// A failed process operation: `NoTty` is `UNAVAILABLE` ("no tty", as Kata), a
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

/// A failed container or process RPC: unknown container or process `NOT_FOUND`,
/// bad ids, specs and signals `INVALID_ARGUMENT`, duplicates `ALREADY_EXISTS`, a container in
/// the wrong state `FAILED_PRECONDITION`, a RemoveContainer timeout `DEADLINE_EXCEEDED` (its
/// message names ETIME), failed OS steps `INTERNAL`. And for the fields of issue #16: a
/// `string_user` that does not resolve `INVALID_ARGUMENT` (an unreadable passwd or group
/// `INTERNAL`); a shared mount's unknown source `NOT_FOUND`, one not running
/// `FAILED_PRECONDITION`; a label whose LSM the guest lacks `FAILED_PRECONDITION`; passfd ports
/// without a listener `INVALID_ARGUMENT`, a stream that never came `DEADLINE_EXCEEDED`.
fn container_code(err: &crate::container::ContainerError) -> Code {
    use crate::container::ContainerError as E;
    match err {
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
    }
}

/// A failed CreateSandbox or DestroySandbox.
fn sandbox_code(err: &crate::sandbox::SandboxError) -> Code {
    use crate::sandbox::SandboxError as E;
    match err {
        E::AlreadyCreated => Code::ALREADY_EXISTS,
        E::InvalidRequest(_) => Code::INVALID_ARGUMENT,
        E::Storages(e) => attach_code(e),
        E::Step { .. } | E::Module { .. } | E::ModuleIo { .. } | E::ResolvConfIsDirectory => {
            Code::INTERNAL
        }
    }
}

/// A failed guest-service request: a bad field `INVALID_ARGUMENT`, a CopyFile
/// path refused because it leads outside the shared directory or through a link or fifo
/// `PERMISSION_DENIED`, a missing termination log `NOT_FOUND`, the mem-agent RPCs while it is
/// disabled `INTERNAL "mem-agent is disabled"` (Kata's answer), failed OS steps `INTERNAL`.
fn guest_code(err: &crate::guest::GuestError) -> Code {
    use crate::guest::GuestError as E;
    match err {
        E::Invalid { .. } => Code::INVALID_ARGUMENT,
        E::Refused { .. } => Code::PERMISSION_DENIED,
        E::NoTerminationLog { .. } => Code::NOT_FOUND,
        E::MemAgentDisabled | E::Io { .. } | E::Metrics(_) => Code::INTERNAL,
    }
}

/// A failed network RPC: bad input `INVALID_ARGUMENT`, an unknown link
/// `NOT_FOUND` (its message starts with "Link not found", which the Kata runtime retries on),
/// a NIC that did not appear in time `DEADLINE_EXCEEDED`, a missing iptables program
/// `FAILED_PRECONDITION`, anything else `INTERNAL`.
fn network_code(err: &crate::network::NetworkError) -> Code {
    use crate::network::NetworkError as E;
    match err {
        e if e.is_invalid_input() => Code::INVALID_ARGUMENT,
        E::LinkNotFound(_) => Code::NOT_FOUND,
        E::Device { source, .. } if source.is_timeout() => Code::DEADLINE_EXCEEDED,
        E::MissingProgram { .. } => Code::FAILED_PRECONDITION,
        _ => Code::INTERNAL,
    }
}

/// Each subsystem error becomes the status its `*_code` mapper names, with the whole error
/// chain as the message, so handlers answer with `?`.
macro_rules! into_status {
    ($($error:ty => $code:ident),* $(,)?) => {$(
        impl From<$error> for Error {
            fn from(err: $error) -> Self {
                status($code(&err), chain(&err))
            }
        }
    )*};
}

into_status! {
    crate::device::DeviceError => device_code,
    crate::storage::StorageError => storage_code,
    crate::container::ContainerError => container_code,
    crate::process::ProcessError => process_code,
    crate::sandbox::SandboxError => sandbox_code,
    crate::guest::GuestError => guest_code,
    crate::network::NetworkError => network_code,
}

/// A wire spec that does not convert is `INVALID_ARGUMENT`.
impl From<super::oci::OciError> for Error {
    fn from(err: super::oci::OciError) -> Self {
        status(Code::INVALID_ARGUMENT, err.to_string())
    }
}
