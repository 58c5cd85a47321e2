//! OCI hooks that run inside the container's namespaces: createContainer (before the pivot)
//! and startContainer (just before the program). The agent core runs the others on the host.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;
use serde::Serialize;

use super::error::{Result, SetupError, Step};

/// How long a hook without a timeout may run.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The OCI state a hook reads on its stdin.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HookState {
    pub(super) oci_version: String,
    pub(super) id: String,
    pub(super) status: String,
    /// The container process's pid in the agent's pid namespace.
    pub(super) pid: i32,
    pub(super) bundle: String,
    pub(super) annotations: std::collections::HashMap<String, String>,
}

/// Runs each hook in order; the first failure (start, non-zero exit, timeout) is the error.
pub(super) fn run(kind: &str, hooks: &[Hook], state: &HookState) -> Result<()> {
    let input = serde_json::to_vec(state).map_err(|e| SetupError::spec(e.to_string()))?;
    for (index, hook) in hooks.iter().enumerate() {
        let path = hook.path();
        let step = || format!("{kind} hook {index} ({})", path.display());
        let args = hook.args().clone().unwrap_or_default();
        let mut cmd = Command::new(path);
        if let Some((first, rest)) = args.split_first() {
            std::os::unix::process::CommandExt::arg0(&mut cmd, first);
            cmd.args(rest);
        }
        cmd.env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for entry in hook.env().as_deref().unwrap_or_default() {
            if let Some((k, v)) = entry.split_once('=') {
                cmd.env(k, v);
            }
        }
        let mut child = cmd.spawn().step(step)?;
        if let Some(mut stdin) = child.stdin.take() {
            // A hook may exit without reading its stdin: a broken pipe is not a failure.
            let _ = stdin.write_all(&input);
        }
        let timeout = hook
            .timeout()
            .and_then(|t| u64::try_from(t).ok())
            .filter(|&t| t > 0)
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().step(step)? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SetupError::spec(format!(
                    "{}: timed out after {timeout:?}",
                    step()
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if !status.success() {
            return Err(SetupError::spec(format!("{}: {status}", step())));
        }
    }
    Ok(())
}
