//! Kernel modules the sandbox asks for, loaded with `modprobe`.

use std::time::Duration;

use super::SandboxError;
use crate::host::Host;
use crate::process::Command;

/// Where modprobe is in the guest (Kata's `MODPROBE_PATH`).
pub const MODPROBE: &str = "/sbin/modprobe";

/// How much of modprobe's output an error quotes.
const MAX_OUTPUT: usize = 4096;

/// How long modprobe may take (a module's init can wait for its hardware).
const MODPROBE_TIMEOUT: Duration = Duration::from_secs(60);

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
    let command = Command {
        args,
        stdin: &[],
        max_output: MAX_OUTPUT,
        timeout: MODPROBE_TIMEOUT,
    };
    let output = command
        .run(host)
        .await
        .map_err(|source| SandboxError::ModuleIo {
            module: module.name.clone(),
            source,
        })?;
    match output.code {
        0 => Ok(()),
        _ => Err(SandboxError::Module {
            module: module.name.clone(),
            reason: format!("modprobe {}", output.describe()),
        }),
    }
}
