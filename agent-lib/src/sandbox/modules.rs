//! Kernel modules the sandbox asks for, loaded with `modprobe`.

use std::path::Path;

use super::SandboxError;
use crate::host::{Host, LaunchRequest, LaunchTarget, ProcessSpec, StdioMode};
use crate::process::{Output, Process};

/// Where modprobe is in the guest (Kata's `MODPROBE_PATH`).
pub const MODPROBE: &str = "/sbin/modprobe";

/// How much of modprobe's output an error quotes.
const MAX_OUTPUT: usize = 4096;

/// A kernel module to load, with its `key=value` parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelModule {
    /// The module name.
    pub name: String,
    /// Its parameters.
    pub parameters: Vec<String>,
}

/// Runs `modprobe -v <name> <parameters...>` and waits for it.
pub(crate) async fn load(host: &Host, module: &KernelModule) -> Result<(), SandboxError> {
    if module.name.trim().is_empty() {
        return Err(SandboxError::InvalidRequest(
            "kernel module name is empty".into(),
        ));
    }
    tracing::info!(module = %module.name, parameters = ?module.parameters, "loading kernel module");
    let mut args = vec![MODPROBE.to_owned(), "-v".to_owned(), module.name.clone()];
    args.extend(module.parameters.iter().cloned());
    let request = LaunchRequest {
        process: ProcessSpec {
            args,
            env: vec!["PATH=/sbin:/usr/sbin:/bin:/usr/bin".to_owned()],
            cwd: Path::new("/").to_owned(),
            ..ProcessSpec::default()
        },
        stdio: StdioMode::Pipes,
        target: LaunchTarget::Host,
        ..LaunchRequest::default()
    };
    let launched = host
        .launcher
        .launch(&request)
        .await
        .map_err(SandboxError::step(format!(
            "start {MODPROBE} for {}",
            module.name
        )))?;
    let pid = launched.pid;
    let process = match Process::new("modprobe", false, launched) {
        Ok(process) => process,
        Err(source) => {
            // The process is ours to stop; its exit is still reaped by the launcher.
            let _ = host.launcher.signal(pid, libc::SIGKILL);
            return Err(SandboxError::ModuleIo {
                module: module.name.clone(),
                source,
            });
        }
    };
    let (stdout, stderr) = tokio::join!(
        collect(&process, Output::Stdout),
        collect(&process, Output::Stderr)
    );
    let status = process.wait().await;
    let module_io = |source| SandboxError::ModuleIo {
        module: module.name.clone(),
        source,
    };
    let (stdout, stderr) = (stdout.map_err(module_io)?, stderr.map_err(module_io)?);
    match status.code() {
        0 => Ok(()),
        code => Err(SandboxError::Module {
            module: module.name.clone(),
            reason: format!(
                "modprobe exit code {code}; stdout: {:?}; stderr: {:?}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            ),
        }),
    }
}

/// Reads a stream to its end, keeping the first [`MAX_OUTPUT`] bytes.
async fn collect(
    process: &Process,
    which: Output,
) -> Result<Vec<u8>, crate::process::ProcessError> {
    let mut out = Vec::new();
    loop {
        let chunk = process.read(which, 16 * 1024).await?;
        if chunk.is_empty() {
            return Ok(out);
        }
        let room = MAX_OUTPUT.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
}
