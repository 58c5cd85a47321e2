//! From an OCI process to what the launcher runs.

use std::path::PathBuf;

use oci_spec::runtime::Process as OciProcess;

use super::ProcessError;
use crate::host::{ProcessSpec, StdioMode};

/// The program, credentials and stdio mode of an OCI process: a pty when it asks for a
/// terminal, pipes otherwise.
pub fn launch_spec(process: &OciProcess) -> Result<(ProcessSpec, StdioMode), ProcessError> {
    let args = process.args().clone().unwrap_or_default();
    if args.first().is_none_or(|a| a.is_empty()) {
        return Err(ProcessError::InvalidProcess(
            "process.args is empty: nothing to run".into(),
        ));
    }
    let cwd = process.cwd();
    let cwd = if cwd.as_os_str().is_empty() {
        PathBuf::from("/")
    } else if cwd.is_absolute() {
        cwd.clone()
    } else {
        return Err(ProcessError::InvalidProcess(format!(
            "process.cwd {cwd:?} is not absolute"
        )));
    };
    let user = process.user();
    let spec = ProcessSpec {
        args,
        env: process.env().clone().unwrap_or_default(),
        cwd,
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
    };
    let stdio = match process.terminal() {
        Some(true) => StdioMode::Pty,
        _ => StdioMode::Pipes,
    };
    Ok((spec, stdio))
}
