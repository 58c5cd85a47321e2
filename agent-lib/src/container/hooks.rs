//! OCI hooks the agent runs in its own namespaces (prestart, createRuntime, poststart,
//! poststop); createContainer and startContainer run inside the container (the launcher's).
//!
//! Each hook is a process started through the [`Launcher`] with the container's OCI state as
//! JSON on its stdin, waited for up to its timeout (30 s when the spec sets none), and killed
//! when it overruns.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::time::Duration;

use oci_spec::runtime::Hook;
use serde::Serialize;

use crate::host::{ExitStatus, LaunchRequest, LaunchTarget, Launcher, ProcessSpec, StdioMode};

/// How long a hook without a timeout may run.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The OCI state of a container, as hooks read it on stdin.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HookState {
    pub(crate) oci_version: String,
    pub(crate) id: String,
    pub(crate) status: &'static str,
    pub(crate) pid: i32,
    pub(crate) bundle: String,
    pub(crate) annotations: HashMap<String, String>,
}

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The hook could not be started.
    #[error("{kind} hook {path}: cannot start")]
    Start {
        /// prestart, createRuntime, poststart or poststop.
        kind: &'static str,
        /// The hook's program.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The hook ran and failed.
    #[error("{kind} hook {path}: exit code {code}")]
    Failed {
        /// The hook kind.
        kind: &'static str,
        /// The hook's program.
        path: String,
        /// Its exit code (128 + signal when killed).
        code: i32,
    },
    /// The hook ran past its timeout and was killed.
    #[error("{kind} hook {path}: timed out after {timeout:?}")]
    Timeout {
        /// The hook kind.
        kind: &'static str,
        /// The hook's program.
        path: String,
        /// Its timeout.
        timeout: Duration,
    },
}

/// Runs `hooks` in order; the first failure stops the run and is returned.
pub(crate) async fn run_hooks(
    launcher: &dyn Launcher,
    kind: &'static str,
    hooks: &[Hook],
    state: &HookState,
) -> Result<(), HookError> {
    if hooks.is_empty() {
        return Ok(());
    }
    // Serialising a map of strings and numbers cannot fail.
    let input = serde_json::to_vec(state).unwrap_or_default();
    for hook in hooks {
        run_one(launcher, kind, hook, &input).await?;
    }
    Ok(())
}

/// Runs `hooks` and logs a failure instead of returning it (poststart and poststop: the OCI
/// lifecycle goes on).
pub(crate) async fn run_hooks_logged(
    launcher: &dyn Launcher,
    kind: &'static str,
    hooks: &[Hook],
    state: &HookState,
) {
    if let Err(e) = run_hooks(launcher, kind, hooks, state).await {
        tracing::warn!(container = %state.id, error = %e, "hook failed");
    }
}

async fn run_one(
    launcher: &dyn Launcher,
    kind: &'static str,
    hook: &Hook,
    input: &[u8],
) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    // argv[0] of a hook is its name; the program is always `path`.
    let mut args = vec![path.clone()];
    args.extend(hook.args().iter().flatten().skip(1).cloned());
    let request = LaunchRequest {
        process: ProcessSpec {
            args,
            env: hook.env().clone().unwrap_or_default(),
            cwd: "/".into(),
            ..ProcessSpec::default()
        },
        stdio: StdioMode::Pipes,
        target: LaunchTarget::Host,
        ..LaunchRequest::default()
    };
    let launched = launcher
        .launch(&request)
        .await
        .map_err(|source| HookError::Start {
            kind,
            path: path.clone(),
            source,
        })?;
    let pid = launched.pid;
    if let Some(stdin) = launched.stdin {
        let input = input.to_vec();
        // A small write into a fresh pipe; a hook that exits without reading is no failure.
        let _ = tokio::task::spawn_blocking(move || File::from(stdin).write_all(&input)).await;
    }
    // Nobody reads the hook's output: closing the read ends makes a chatty hook see EPIPE
    // rather than block forever on a full pipe.
    drop(launched.stdout);
    drop(launched.stderr);
    let timeout = hook
        .timeout()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let mut exit = launched.exit;
    let status = match tokio::time::timeout(timeout, &mut exit).await {
        Ok(Ok(status)) => status,
        Ok(Err(_)) => ExitStatus::Signaled(libc::SIGKILL),
        Err(_) => {
            let _ = launcher.signal(pid, libc::SIGKILL);
            let _ = exit.await;
            return Err(HookError::Timeout {
                kind,
                path,
                timeout,
            });
        }
    };
    match status.code() {
        0 => Ok(()),
        code => Err(HookError::Failed { kind, path, code }),
    }
}
