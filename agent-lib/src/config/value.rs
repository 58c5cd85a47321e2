//! Typed readings of option values, shared by the command line, the environment and the
//! config file. Each returns the [`WarningKind`] to report when the value is refused, so every
//! source refuses the same values for the same reasons.

use std::time::Duration;

use super::duration::{self, TimeoutError};
use super::warning::WarningKind;

/// Largest `container_pipe_size`: `F_SETPIPE_SZ` takes a C `int`.
pub(crate) const MAX_PIPE_SIZE: i128 = i32::MAX as i128;

impl From<TimeoutError> for WarningKind {
    fn from(e: TimeoutError) -> Self {
        match e {
            TimeoutError::NotPositive => WarningKind::NotPositive,
            TimeoutError::Invalid(reason) => WarningKind::InvalidValue(reason),
        }
    }
}

/// A boolean as Kata and Go write them: `true`/`false`, Go's `1 t T TRUE True` and
/// `0 f F FALSE False`, or any unsigned integer (non-zero is true, as in Kata).
pub(crate) fn parse_bool(text: &str) -> Result<bool, WarningKind> {
    match text {
        "true" | "t" | "T" | "TRUE" | "True" => Ok(true),
        "false" | "f" | "F" | "FALSE" | "False" => Ok(false),
        digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(digits.bytes().any(|b| b != b'0'))
        }
        _ => Err(WarningKind::InvalidValue(format!(
            "{text:?} is not a boolean; expected true, false, 1 or 0"
        ))),
    }
}

/// A decimal integer of any sign, wide enough that range checks happen in the caller.
pub(crate) fn parse_int(text: &str) -> Result<i128, WarningKind> {
    text.parse::<i128>()
        .map_err(|_| WarningKind::InvalidValue(format!("{text:?} is not an integer")))
}

/// A timeout: whole seconds or a Go duration; zero and negative are refused.
pub(crate) fn parse_timeout(text: &str) -> Result<Duration, WarningKind> {
    duration::parse_timeout(text).map_err(WarningKind::from)
}

/// A vsock port for the log, debug console or passfd listener: `0` means "not set" (`None`),
/// as in Kata; negative or above `u32::MAX` is refused.
pub(crate) fn port_from_int(n: i128) -> Result<Option<u32>, WarningKind> {
    match u32::try_from(n) {
        Ok(0) => Ok(None),
        Ok(port) => Ok(Some(port)),
        Err(_) => Err(WarningKind::InvalidValue(format!(
            "{n} is not a vsock port; expected 0 to {}",
            u32::MAX
        ))),
    }
}

pub(crate) fn parse_port(text: &str) -> Result<Option<u32>, WarningKind> {
    port_from_int(parse_int(text)?)
}

/// A pipe size in bytes: `0` means "kernel default" (`None`); negative or above `i32::MAX` is
/// refused.
pub(crate) fn pipe_size_from_int(n: i128) -> Result<Option<u32>, WarningKind> {
    match n {
        0 => Ok(None),
        1..=MAX_PIPE_SIZE => Ok(Some(n as u32)),
        _ => Err(WarningKind::InvalidValue(format!(
            "{n} is not a pipe size; expected 0 to {MAX_PIPE_SIZE} bytes"
        ))),
    }
}

pub(crate) fn parse_pipe_size(text: &str) -> Result<Option<u32>, WarningKind> {
    pipe_size_from_int(parse_int(text)?)
}

/// A proxy URL: `scheme://rest` with an RFC 3986 scheme and something after `://`. Kata runs
/// the value through `Url::parse`; this is a lighter check that keeps the text as written.
pub(crate) fn parse_proxy_url(text: &str) -> Result<String, WarningKind> {
    let valid = text.split_once("://").is_some_and(|(scheme, rest)| {
        let mut chars = scheme.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !rest.is_empty()
    });
    if valid {
        Ok(text.to_owned())
    } else {
        Err(WarningKind::InvalidValue(format!(
            "{text:?} is not a URL; expected scheme://host[:port]"
        )))
    }
}

/// Any `FromStr` value whose error explains itself.
pub(crate) fn parse_with<T, E>(text: &str) -> Result<T, WarningKind>
where
    T: std::str::FromStr<Err = E>,
    E: std::fmt::Display,
{
    text.parse::<T>()
        .map_err(|e| WarningKind::InvalidValue(e.to_string()))
}
