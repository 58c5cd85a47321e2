//! GetIPTables / SetIPTables: the guest's packet filter, through `iptables-save` and
//! `iptables-restore` (or their IPv6 twins), run directly (never through a shell) with the
//! rules on stdin.

use std::time::Duration;

use super::{Network, NetworkError};
use crate::process::{Command, HELPER_PATH, find_program};

/// How many seconds `iptables-restore --wait` waits for the xtables lock (Kata's value).
const RESTORE_WAIT_SECS: u64 = 5;
/// How long either program may run in all.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest rule set returned: under ttrpc's 4 MiB message limit. A bigger one is an error,
/// never a truncated (and so unrestorable) rule set.
pub const MAX_RULES: usize = 4 * 1024 * 1024 - 64 * 1024;

/// Which family's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpFamily {
    /// `iptables-*`.
    V4,
    /// `ip6tables-*`.
    V6,
}

impl IpFamily {
    fn save(self) -> &'static str {
        match self {
            IpFamily::V4 => "iptables-save",
            IpFamily::V6 => "ip6tables-save",
        }
    }

    fn restore(self) -> &'static str {
        match self {
            IpFamily::V4 => "iptables-restore",
            IpFamily::V6 => "ip6tables-restore",
        }
    }
}

impl Network {
    /// The output of `iptables-save` (or `ip6tables-save`).
    pub async fn get_iptables(&self, family: IpFamily) -> Result<Vec<u8>, NetworkError> {
        self.run_iptables(family.save(), Vec::new(), &[]).await
    }

    /// Feeds `rules` to `iptables-restore --wait 5` (or `ip6tables-restore`) and returns what
    /// it printed.
    pub async fn set_iptables(
        &self,
        family: IpFamily,
        rules: &[u8],
    ) -> Result<Vec<u8>, NetworkError> {
        let args = vec!["--wait".to_owned(), RESTORE_WAIT_SECS.to_string()];
        self.run_iptables(family.restore(), args, rules).await
    }

    async fn run_iptables(
        &self,
        program: &'static str,
        args: Vec<String>,
        stdin: &[u8],
    ) -> Result<Vec<u8>, NetworkError> {
        let path = find_program(&self.host, program, HELPER_PATH).ok_or_else(|| {
            NetworkError::MissingProgram {
                program,
                searched: HELPER_PATH.to_owned(),
            }
        })?;
        let failed = |reason: String| NetworkError::Command {
            program: path.clone(),
            reason,
        };
        let command = Command {
            args: std::iter::once(path.clone()).chain(args).collect(),
            stdin,
            max_output: MAX_RULES,
            timeout: TIMEOUT,
        };
        let output = command
            .run(&self.host)
            .await
            .map_err(|source| NetworkError::Run {
                program: path.clone(),
                source,
            })?;
        if output.code != 0 {
            return Err(failed(output.describe()));
        }
        if output.truncated {
            return Err(failed(format!(
                "printed more than {MAX_RULES} bytes, more than a reply can carry"
            )));
        }
        tracing::info!(program = %path, bytes = output.stdout.len(), "iptables program ran");
        Ok(output.stdout)
    }
}
