//! What the parsers report instead of failing: one [`ConfigWarning`] per rejected token.
//!
//! The parsers never log. Configuration is read before the tracing subscriber exists (the
//! subscriber's level is itself configuration), so the caller sets up logging from the finished
//! [`Config`](super::Config) and then calls [`ConfigWarning::log`] (or
//! [`Loaded::log_warnings`](super::Loaded::log_warnings)) on what came back.

use std::fmt;

/// Where a rejected token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WarningSource {
    /// The kernel command line (`/proc/cmdline`).
    Cmdline,
    /// The TOML file given by `--config` or `agent.config_file=`.
    ConfigFile,
    /// A `KATA_AGENT_*` environment variable.
    Env,
}

impl WarningSource {
    /// A short name, used as the `source` field of the log record.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningSource::Cmdline => "kernel command line",
            WarningSource::ConfigFile => "config file",
            WarningSource::Env => "environment",
        }
    }
}

impl fmt::Display for WarningSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a token was rejected or ignored. In every case the setting keeps the value it had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WarningKind {
    /// An `agent.*` command line option this agent does not know.
    #[error("unknown option")]
    UnknownOption,
    /// A config file key this agent does not know.
    #[error("unknown key")]
    UnknownKey,
    /// An option that needs `name=value` came without a value, or with an empty one.
    #[error("missing value")]
    MissingValue,
    /// A flag (`agent.debug_console`, `agent.devmode`) was given a value; only the bare token
    /// counts, as in Kata.
    #[error("this flag takes no value; token ignored")]
    FlagWithValue,
    /// The value does not parse or is out of range.
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// A timeout of zero or less; the previous timeout is kept.
    #[error("a timeout must be positive; value ignored")]
    NotPositive,
    /// A valid token that has no effect, with the reason.
    #[error("ignored: {0}")]
    Ignored(&'static str),
    /// The config file could not be read; the token is its path.
    #[error("cannot read config file: {0}")]
    FileUnreadable(String),
    /// The config file is not valid TOML; the token is its path.
    #[error("cannot parse config file: {0}")]
    FileUnparsable(String),
}

/// One rejected or ignored configuration token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Which source the token came from.
    pub source: WarningSource,
    /// The token as written: `name=value` on the command line or in the environment, the key in
    /// the config file, or the file path for a file that cannot be read or parsed.
    pub token: String,
    /// What was wrong with it.
    pub kind: WarningKind,
}

impl ConfigWarning {
    /// A warning about `token` from `source`.
    pub fn new(source: WarningSource, token: impl Into<String>, kind: WarningKind) -> Self {
        ConfigWarning {
            source,
            token: token.into(),
            kind,
        }
    }

    /// Emit this warning as a `tracing` WARN event with the fields `source`, `token` and
    /// `reason`. Call it once a subscriber is installed.
    pub fn log(&self) {
        tracing::warn!(
            source = self.source.as_str(),
            token = %self.token,
            reason = %self.kind,
            "ignoring configuration token"
        );
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: `{}`: {}", self.source, self.token, self.kind)
    }
}
