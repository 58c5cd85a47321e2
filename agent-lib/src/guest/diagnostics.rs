//! GetDiagnosticData: a container's termination log (Kubernetes' `terminationMessagePath`).

use std::path::Path;

use oci_spec::runtime::Spec;

use super::copy_file::SHARED_DIR;
use super::error::GuestError;
use crate::host::{FileTree, OpenMode};

/// The annotation naming the termination log inside the container.
pub const TERMINATION_PATH_ANNOTATION: &str = "io.kubernetes.container.terminationMessagePath";
/// Kubernetes caps termination messages at 4 KiB; so does the agent's read.
pub const TERMINATION_LOG_MAX: usize = 4096;

/// The log types GetDiagnosticData knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogType {
    /// `termination_log`.
    TerminationLog,
}

impl LogType {
    /// Parses the wire name; anything else is refused naming `log_type`.
    pub fn parse(name: &str) -> Result<LogType, GuestError> {
        match name {
            "termination_log" => Ok(LogType::TerminationLog),
            other => Err(GuestError::invalid(
                "log_type",
                format!("unsupported diagnostic log type {other:?}; known: termination_log"),
            )),
        }
    }
}

/// Reads the termination log of container `cid` whose spec is `spec`: the file at the guest
/// source of the mount whose destination is the annotated path, read beneath
/// [`SHARED_DIR`] without following any symbolic link, at most [`TERMINATION_LOG_MAX`] bytes,
/// invalid UTF-8 replaced. A log not written yet is empty, as in Kata.
pub fn termination_log(files: &dyn FileTree, cid: &str, spec: &Spec) -> Result<String, GuestError> {
    let missing = |reason: String| GuestError::NoTerminationLog {
        container: cid.to_owned(),
        reason,
    };
    let dest = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(TERMINATION_PATH_ANNOTATION))
        .ok_or_else(|| missing(format!("no {TERMINATION_PATH_ANNOTATION} annotation")))?;
    let source = spec
        .mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new(dest))
        .and_then(|m| m.source().clone())
        .ok_or_else(|| missing(format!("no mount on {dest}")))?;
    let rel = source.strip_prefix(SHARED_DIR).map_err(|_| {
        missing(format!(
            "its source {} is not beneath {SHARED_DIR}",
            source.display()
        ))
    })?;
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(missing(format!(
            "its source {} names no file",
            source.display()
        )));
    };
    let refused = |e: std::io::Error| GuestError::Refused {
        path: source.display().to_string(),
        reason: e.to_string(),
    };
    let root = files
        .open_base(Path::new(SHARED_DIR))
        .map_err(GuestError::io(format!("open {SHARED_DIR}")))?;
    let data = match root
        .walk(parent, None)
        .and_then(|d| d.open_file(name, OpenMode::Read))
    {
        Ok(file) => file
            .read_head(TERMINATION_LOG_MAX)
            .map_err(GuestError::io(format!("read {}", source.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(refused(e)),
    };
    Ok(String::from_utf8_lossy(&data).into_owned())
}
