//! Container and exec ids: names that become paths, so they are checked before any use.

use super::ContainerError;

/// The longest id accepted.
pub const MAX_ID_LEN: usize = 256;

/// Why `id` is not a usable name, if it is not: it must be 1 to [`MAX_ID_LEN`] characters of
/// `[A-Za-z0-9_.-]`, start with a letter or digit, and not be `.` or `..` (so it never escapes
/// the folder it names a child of).
fn problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        return Some("empty");
    }
    if id.len() > MAX_ID_LEN {
        return Some("longer than 256 characters");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Some("only letters, digits, '_', '.' and '-' are allowed");
    }
    if !id.as_bytes()[0].is_ascii_alphanumeric() {
        return Some("must start with a letter or digit");
    }
    None
}

/// Checks a container id.
pub fn validate_container_id(id: &str) -> Result<(), ContainerError> {
    match problem(id) {
        None => Ok(()),
        Some(reason) => Err(ContainerError::InvalidId {
            id: id.to_owned(),
            reason,
        }),
    }
}

/// Checks the exec id of a new exec process.
pub fn validate_exec_id(id: &str) -> Result<(), ContainerError> {
    match problem(id) {
        None => Ok(()),
        Some(reason) => Err(ContainerError::InvalidExecId {
            id: id.to_owned(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for good in ["a", "abc-123", "A_b.c", "0", &"x".repeat(256)] {
            assert!(validate_container_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "/abs",
            "-x",
            ".hidden",
            "a b",
            "é",
            "a\0",
            &"x".repeat(257),
        ] {
            assert!(validate_container_id(bad).is_err(), "{bad:?}");
        }
    }
}
