//! The TOML config file (`--config <file>` or `agent.config_file=<file>`).
//!
//! The keys, their types and the duration forms are listed in the [`config`](super) module
//! documentation. Only the keys present change the configuration; unknown keys and bad values
//! are warnings.

use std::time::Duration;

use toml::{Table, Value};

use super::Config;
use super::duration::{check_timeout, timeout_from_secs};
use super::mem_agent::{Knob, KnobValue};
use super::value::{parse_proxy_url, parse_timeout, parse_with, pipe_size_from_int, port_from_int};
use super::warning::{ConfigWarning, WarningKind, WarningSource};

/// The token of a file-level warning when the caller gave no path.
const UNNAMED_FILE: &str = "(config file)";
const MEM_AGENT_OFF_NOTE: &str = "mem_agent_enable is not true in the file or on the command line";

impl Config {
    /// Override this configuration with the keys set in `text`, a TOML config file. Pure: the
    /// caller reads the file. If `text` is not TOML, nothing changes and the one warning says
    /// why.
    pub fn apply_file(&mut self, text: &str) -> Vec<ConfigWarning> {
        match parse_table(text) {
            Ok(table) => apply_table(self, &table),
            Err(kind) => vec![ConfigWarning::new(
                WarningSource::ConfigFile,
                UNNAMED_FILE,
                kind,
            )],
        }
    }
}

/// Parse the file into a table, or say where the TOML is broken.
pub(crate) fn parse_table(text: &str) -> Result<Table, WarningKind> {
    text.parse::<Table>().map_err(|e| {
        let place = e
            .span()
            .map(|span| {
                let mut start = span.start.min(text.len());
                while !text.is_char_boundary(start) {
                    start -= 1;
                }
                let before = &text[..start];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {column}: ")
            })
            .unwrap_or_default();
        WarningKind::FileUnparsable(format!("{place}{}", e.message().trim_end()))
    })
}

/// Apply every key of a parsed file; return one warning per refused key.
pub(crate) fn apply_table(config: &mut Config, table: &Table) -> Vec<ConfigWarning> {
    let mut warnings = Vec::new();
    let mut warn = |key: &str, kind| {
        warnings.push(ConfigWarning::new(WarningSource::ConfigFile, key, kind));
    };
    let mut mem_agent_enable = None;
    let mut knobs = Vec::new();

    for (key, value) in table {
        let result = match key.as_str() {
            "mem_agent_enable" => as_bool(value).map(|b| mem_agent_enable = Some(b)),
            other => match Knob::from_name(other) {
                Some(knob) => knob_value(value).map(|v| knobs.push((key, knob, v))),
                None => apply_key(config, key, value),
            },
        };
        if let Err(kind) = result {
            warn(key, kind);
        }
    }

    match mem_agent_enable {
        Some(true) => {
            config.mem_agent.get_or_insert_with(Default::default);
        }
        Some(false) => config.mem_agent = None,
        None => {}
    }
    for (key, knob, value) in knobs {
        match config.mem_agent.as_mut() {
            Some(mem_agent) => {
                if let Err(reason) = mem_agent.set(knob, value) {
                    warn(key, WarningKind::InvalidValue(reason));
                }
            }
            None => warn(key, WarningKind::Ignored(MEM_AGENT_OFF_NOTE)),
        }
    }
    warnings
}

fn apply_key(c: &mut Config, key: &str, value: &Value) -> Result<(), WarningKind> {
    match key {
        "debug_console" => c.debug_console = as_bool(value)?,
        "dev_mode" => c.dev_mode = as_bool(value)?,
        "tracing" => c.tracing = as_bool(value)?,
        "visible_cdi_devices" => c.visible_cdi_devices = as_bool(value)?,
        "unified_cgroup_hierarchy" => c.unified_cgroup_hierarchy = as_bool(value)?,
        "secure_storage_integrity" => c.secure_storage_integrity = as_bool(value)?,
        "log_level" => c.log_level = parse_with(as_str(value)?)?,
        "server_addr" => c.server_addr = parse_with(as_str(value)?)?,
        "hotplug_timeout" => c.hotplug_timeout = as_timeout(value)?,
        "cdh_api_timeout" => c.cdh_api_timeout = as_timeout(value)?,
        "image_pull_timeout" => c.image_pull_timeout = as_timeout(value)?,
        "cdi_timeout" => c.cdi_timeout = as_timeout(value)?,
        "launch_process_timeout" => c.launch_process_timeout = as_timeout(value)?,
        "debug_console_vport" => c.debug_console_vport = port_from_int(as_int(value)?)?,
        "log_vport" => c.log_vport = port_from_int(as_int(value)?)?,
        "passfd_listener_port" => c.passfd_listener_port = port_from_int(as_int(value)?)?,
        "container_pipe_size" => c.container_pipe_size = pipe_size_from_int(as_int(value)?)?,
        "https_proxy" => {
            c.https_proxy = non_empty(as_str(value)?).map(parse_proxy_url).transpose()?
        }
        "no_proxy" => c.no_proxy = non_empty(as_str(value)?).map(str::to_owned),
        "policy_file" => c.policy_file = non_empty(as_str(value)?).map(Into::into),
        "guest_components_rest_api" => c.guest_components_rest_api = parse_with(as_str(value)?)?,
        "guest_components_procs" => c.guest_components_procs = parse_with(as_str(value)?)?,
        _ => return Err(WarningKind::UnknownKey),
    }
    Ok(())
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn type_mismatch(expected: &str, found: &Value) -> WarningKind {
    WarningKind::InvalidValue(format!("expected {expected}, found {}", found.type_str()))
}

fn as_bool(value: &Value) -> Result<bool, WarningKind> {
    value
        .as_bool()
        .ok_or_else(|| type_mismatch("a boolean", value))
}

fn as_str(value: &Value) -> Result<&str, WarningKind> {
    value
        .as_str()
        .ok_or_else(|| type_mismatch("a string", value))
}

fn as_int(value: &Value) -> Result<i128, WarningKind> {
    value
        .as_integer()
        .map(i128::from)
        .ok_or_else(|| type_mismatch("an integer", value))
}

fn knob_value(value: &Value) -> Result<KnobValue, WarningKind> {
    match value {
        Value::Boolean(b) => Ok(KnobValue::Bool(*b)),
        Value::Integer(n) => Ok(KnobValue::Int(i128::from(*n))),
        other => Err(type_mismatch("a boolean or an integer", other)),
    }
}

/// A timeout as a Go duration string, whole seconds, or a `{ secs, nanos }` table.
fn as_timeout(value: &Value) -> Result<Duration, WarningKind> {
    const EXPECTED: &str = "a duration (\"10s\", 10 or { secs = 10, nanos = 0 })";
    match value {
        Value::String(s) => parse_timeout(s),
        Value::Integer(n) if *n <= 0 => Err(WarningKind::NotPositive),
        Value::Integer(n) => Ok(timeout_from_secs(u128::from(n.unsigned_abs()))?),
        Value::Table(t) => {
            let mut secs = None;
            let mut nanos = 0;
            for (k, v) in t {
                match (k.as_str(), v.as_integer()) {
                    ("secs", Some(n)) if n >= 0 => secs = Some(n.unsigned_abs()),
                    ("nanos", Some(n)) if (0..1_000_000_000).contains(&n) => nanos = n as u32,
                    _ => return Err(type_mismatch(EXPECTED, value)),
                }
            }
            let secs = secs.ok_or_else(|| type_mismatch(EXPECTED, value))?;
            Ok(check_timeout(Duration::new(secs, nanos))?)
        }
        other => Err(type_mismatch(EXPECTED, other)),
    }
}
