//! The agent's log level, named as logrus names it (the Go agent used logrus, and the Kata
//! runtime still passes those names in `agent.log=`).

use std::fmt;
use std::str::FromStr;

use tracing::level_filters::LevelFilter;

/// A log level. Parsing accepts the logrus names case-insensitively: `fatal`, `panic` and
/// `critical` are all [`LogLevel::Critical`]; `warn` and `warning` are [`LogLevel::Warning`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum LogLevel {
    /// `critical` (`fatal`, `panic`): unrecoverable failures only. Unlike logrus, logging at
    /// this level never exits or panics.
    Critical,
    /// `error`.
    Error,
    /// `warn` / `warning`.
    Warning,
    /// `info`: the default.
    #[default]
    Info,
    /// `debug`.
    Debug,
    /// `trace` (not a logrus level; Kata added it).
    Trace,
}

impl LogLevel {
    /// Every level, most severe first.
    pub const ALL: [LogLevel; 6] = [
        LogLevel::Critical,
        LogLevel::Error,
        LogLevel::Warning,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    /// The canonical name; [`FromStr`] accepts it back.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Critical => "critical",
            LogLevel::Error => "error",
            LogLevel::Warning => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    /// The most verbose `tracing` level to record. `tracing` has no level above ERROR, so
    /// [`LogLevel::Critical`] records ERROR events too.
    pub fn level_filter(self) -> LevelFilter {
        match self {
            LogLevel::Critical | LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warning => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        }
    }
}

/// The text is not a logrus level name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown log level {0:?}; expected one of trace, debug, info, warn, warning, error, \
     critical, fatal, panic"
)]
pub struct LogLevelError(pub String);

impl FromStr for LogLevel {
    type Err = LogLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "critical" | "fatal" | "panic" => LogLevel::Critical,
            "error" => LogLevel::Error,
            "warn" | "warning" => LogLevel::Warning,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            _ => return Err(LogLevelError(s.to_owned())),
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
