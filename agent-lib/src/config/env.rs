//! Environment overrides: the knobs for running the agent outside a VM, which win over every
//! other source. In a guest they can also come from the kernel command line, since the kernel
//! hands `NAME=value` parameters it does not know to init as environment variables.

use std::path::PathBuf;

use super::Config;
use super::value::{parse_bool, parse_with};
use super::warning::{ConfigWarning, WarningKind, WarningSource};

/// Replaces `server_addr`.
pub const SERVER_ADDR_ENV: &str = "KATA_AGENT_SERVER_ADDR";
/// Replaces `log_level` (logrus names).
pub const LOG_LEVEL_ENV: &str = "KATA_AGENT_LOG_LEVEL";
/// Replaces `tracing` (a boolean, as on the command line).
pub const TRACING_ENV: &str = "KATA_AGENT_TRACING";
/// Replaces `policy_file`.
pub const POLICY_FILE_ENV: &str = "KATA_AGENT_POLICY_FILE";

impl Config {
    /// Override this configuration from the environment. `lookup` returns a variable's value
    /// (the binary passes `|k| std::env::var(k).ok()`; tests pass a map), so this stays pure.
    /// An unset or empty variable changes nothing; an invalid one is a warning and changes
    /// nothing (Kata keeps an invalid `KATA_AGENT_SERVER_ADDR` verbatim and reads an invalid
    /// `KATA_AGENT_TRACING` as false).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Vec<ConfigWarning> {
        let mut warnings = Vec::new();
        for name in [SERVER_ADDR_ENV, LOG_LEVEL_ENV, TRACING_ENV, POLICY_FILE_ENV] {
            let Some(value) = lookup(name).filter(|v| !v.is_empty()) else {
                continue;
            };
            if let Err(kind) = self.apply_env_var(name, &value) {
                warnings.push(ConfigWarning::new(
                    WarningSource::Env,
                    format!("{name}={value}"),
                    kind,
                ));
            }
        }
        warnings
    }

    fn apply_env_var(&mut self, name: &str, value: &str) -> Result<(), WarningKind> {
        match name {
            SERVER_ADDR_ENV => self.server_addr = parse_with(value)?,
            LOG_LEVEL_ENV => self.log_level = parse_with(value)?,
            TRACING_ENV => self.tracing = parse_bool(value)?,
            POLICY_FILE_ENV => self.policy_file = Some(PathBuf::from(value)),
            _ => return Err(WarningKind::UnknownOption),
        }
        Ok(())
    }
}
