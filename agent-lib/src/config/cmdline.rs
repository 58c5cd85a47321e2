//! The kernel command line parser: a pure function from the text of `/proc/cmdline` to a
//! [`Config`] plus warnings.
//!
//! Parameters are split as the kernel splits them: on whitespace outside double quotes, with
//! the quotes around a parameter or around its value removed (`agent.no_proxy="a,b"`). The
//! name is the text before the first `=`, the value everything after it (it may contain `=`).
//! Parameters not starting with `agent.` are ignored, except `systemd.unified_cgroup_hierarchy`
//! and `cgroup_no_v1`. Within the command line a later parameter overrides an earlier one.

use std::path::PathBuf;

use super::Config;
use super::mem_agent::{Knob, KnobKind, KnobValue, MemAgentConfig};
use super::value::{
    parse_bool, parse_int, parse_pipe_size, parse_port, parse_proxy_url, parse_timeout, parse_with,
};
use super::warning::{ConfigWarning, WarningKind, WarningSource};

/// Every `agent.` option that takes a value, without the prefix (the mem-agent knobs are
/// listed by [`Knob`]). `agent.debug_console` and `agent.devmode` are bare flags;
/// `agent.trace` may be either.
pub(crate) const VALUE_OPTIONS: &[&str] = &[
    "log",
    "trace",
    "server_addr",
    "hotplug_timeout",
    "cdh_api_timeout",
    "image_pull_timeout",
    "cdi_timeout",
    "launch_process_timeout",
    "debug_console_vport",
    "log_vport",
    "passfd_listener_port",
    "container_pipe_size",
    "visible_cdi_devices",
    "https_proxy",
    "no_proxy",
    "guest_components_rest_api",
    "guest_components_procs",
    "secure_storage_integrity",
    "unified_cgroup_hierarchy",
    "use_vsock",
    "config_file",
    "mem_agent_enable",
];

const AGENT_PREFIX: &str = "agent.";
const SYSTEMD_UNIFIED: &str = "systemd.unified_cgroup_hierarchy";
const CGROUP_NO_V1: &str = "cgroup_no_v1";

const USE_VSOCK_NOTE: &str = "a Go-agent option; this agent always listens on agent.server_addr \
                              (vsock by default) and has no virtio-serial channel";
const MEM_AGENT_OFF_NOTE: &str = "agent.mem_agent_enable is not set to true";
const SECOND_CONFIG_FILE_NOTE: &str = "only the first agent.config_file= counts, as in Kata";

/// The result of parsing a kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCmdline {
    /// Defaults overridden by every recognised parameter.
    pub config: Config,
    /// The path given by the first `agent.config_file=`, if any. [`load`](super::load()) decides
    /// what it means; the parser only records it.
    pub config_file: Option<PathBuf>,
    /// Every refused or ignored parameter, in command line order (mem-agent knobs ignored
    /// because the mem-agent is off come last).
    pub warnings: Vec<ConfigWarning>,
}

/// Parse the text of `/proc/cmdline`. Never fails: every bad parameter becomes a warning and
/// leaves its setting unchanged.
pub fn parse_cmdline(cmdline: &str) -> ParsedCmdline {
    let mut parser = Parser::default();
    for param in params(cmdline) {
        if let Err(kind) = parser.param(&param) {
            parser.warn(param.raw, kind);
        }
    }
    parser.finish()
}

impl Config {
    /// Defaults overridden by the kernel command line, and the warnings. An
    /// `agent.config_file=` parameter is recorded nowhere here; use [`parse_cmdline`] or
    /// [`load`](super::load()) to honour it.
    pub fn from_cmdline(cmdline: &str) -> (Config, Vec<ConfigWarning>) {
        let parsed = parse_cmdline(cmdline);
        (parsed.config, parsed.warnings)
    }
}

/// One kernel parameter: the raw token, its name, and its value if it had an `=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Param<'a> {
    pub(crate) raw: &'a str,
    pub(crate) name: &'a str,
    pub(crate) value: Option<&'a str>,
}

impl<'a> Param<'a> {
    pub(crate) fn new(raw: &'a str) -> Self {
        let quoted = raw.starts_with('"');
        let body = if quoted { &raw[1..] } else { raw };
        let Some((name, value)) = body.split_once('=') else {
            let name = if quoted {
                body.strip_suffix('"').unwrap_or(body)
            } else {
                body
            };
            return Param {
                raw,
                name,
                value: None,
            };
        };
        let (value, value_quoted) = match value.strip_prefix('"') {
            Some(inner) => (inner, true),
            None => (value, false),
        };
        let value = if quoted || value_quoted {
            value.strip_suffix('"').unwrap_or(value)
        } else {
            value
        };
        Param {
            raw,
            name,
            value: Some(value),
        }
    }
}

/// Split a command line into parameters: whitespace separates them except inside `"…"`.
pub(crate) fn params(cmdline: &str) -> Vec<Param<'_>> {
    let bytes = cmdline.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let mut in_quote = false;
        while i < bytes.len() && (in_quote || !bytes[i].is_ascii_whitespace()) {
            in_quote ^= bytes[i] == b'"';
            i += 1;
        }
        // Both ends sit on ASCII bytes (or the end), so they are char boundaries.
        out.push(Param::new(&cmdline[start..i]));
    }
    out
}

#[derive(Default)]
struct Parser {
    config: Config,
    config_file: Option<PathBuf>,
    warnings: Vec<ConfigWarning>,
    systemd_unified: Option<bool>,
    agent_unified: Option<bool>,
    mem_agent_enable: Option<bool>,
    /// Knobs are applied at the end, so their position relative to `agent.mem_agent_enable`
    /// does not matter (in Kata, knobs before the enable token are silently dropped, and
    /// runtime-rs emits them in hash-map order).
    mem_agent_knobs: Vec<(String, Knob, KnobValue)>,
}

impl Parser {
    fn warn(&mut self, token: &str, kind: WarningKind) {
        self.warnings
            .push(ConfigWarning::new(WarningSource::Cmdline, token, kind));
    }

    fn param(&mut self, p: &Param<'_>) -> Result<(), WarningKind> {
        if let Some(option) = p.name.strip_prefix(AGENT_PREFIX) {
            return self.agent_param(p, option);
        }
        match (p.name, p.value) {
            // systemd reads a bare boolean parameter as true.
            (SYSTEMD_UNIFIED, None) => self.systemd_unified = Some(true),
            (SYSTEMD_UNIFIED, Some("")) => return Err(WarningKind::MissingValue),
            (SYSTEMD_UNIFIED, Some(v)) => self.systemd_unified = Some(parse_bool(v)?),
            // The kernel takes a comma-separated controller list; `all` anywhere in it
            // disables every v1 controller. Other lists are valid but do not imply v2.
            (CGROUP_NO_V1, Some(v)) if v.split(',').any(|c| c == "all") => {
                self.config.cgroup_no_v1_all = true
            }
            _ => {}
        }
        Ok(())
    }

    fn agent_param(&mut self, p: &Param<'_>, option: &str) -> Result<(), WarningKind> {
        let known = VALUE_OPTIONS.contains(&option) || Knob::from_name(option).is_some();
        let value = match (option, p.value) {
            ("debug_console", None) => {
                self.config.debug_console = true;
                return Ok(());
            }
            ("devmode", None) => {
                self.config.dev_mode = true;
                return Ok(());
            }
            // Kata 1.x form, still accepted by Kata.
            ("trace", None) => {
                self.config.tracing = true;
                return Ok(());
            }
            ("use_vsock", None) => return Err(WarningKind::Ignored(USE_VSOCK_NOTE)),
            ("debug_console" | "devmode", Some(_)) => return Err(WarningKind::FlagWithValue),
            (_, _) if !known => return Err(WarningKind::UnknownOption),
            (_, None | Some("")) => return Err(WarningKind::MissingValue),
            (_, Some(value)) => value,
        };
        self.agent_option(p.raw, option, value)
    }

    fn agent_option(&mut self, raw: &str, option: &str, value: &str) -> Result<(), WarningKind> {
        let c = &mut self.config;
        match option {
            "log" => c.log_level = parse_with(value)?,
            "trace" => c.tracing = parse_trace(value)?,
            "server_addr" => c.server_addr = parse_with(value)?,
            "hotplug_timeout" => c.hotplug_timeout = parse_timeout(value)?,
            "cdh_api_timeout" => c.cdh_api_timeout = parse_timeout(value)?,
            "image_pull_timeout" => c.image_pull_timeout = parse_timeout(value)?,
            "cdi_timeout" => c.cdi_timeout = parse_timeout(value)?,
            "launch_process_timeout" => c.launch_process_timeout = parse_timeout(value)?,
            "debug_console_vport" => c.debug_console_vport = parse_port(value)?,
            "log_vport" => c.log_vport = parse_port(value)?,
            "passfd_listener_port" => c.passfd_listener_port = parse_port(value)?,
            "container_pipe_size" => c.container_pipe_size = parse_pipe_size(value)?,
            "visible_cdi_devices" => c.visible_cdi_devices = parse_bool(value)?,
            "https_proxy" => c.https_proxy = Some(parse_proxy_url(value)?),
            "no_proxy" => c.no_proxy = Some(value.to_owned()),
            "guest_components_rest_api" => c.guest_components_rest_api = parse_with(value)?,
            "guest_components_procs" => c.guest_components_procs = parse_with(value)?,
            "secure_storage_integrity" => c.secure_storage_integrity = parse_bool(value)?,
            "unified_cgroup_hierarchy" => self.agent_unified = Some(parse_bool(value)?),
            "use_vsock" => {
                parse_bool(value)?;
                return Err(WarningKind::Ignored(USE_VSOCK_NOTE));
            }
            "config_file" if self.config_file.is_some() => {
                return Err(WarningKind::Ignored(SECOND_CONFIG_FILE_NOTE));
            }
            "config_file" => self.config_file = Some(PathBuf::from(value)),
            "mem_agent_enable" => self.mem_agent_enable = Some(parse_bool(value)?),
            knob => {
                let knob = Knob::from_name(knob).ok_or(WarningKind::UnknownOption)?;
                let parsed = match knob.kind() {
                    KnobKind::Bool => KnobValue::Bool(parse_bool(value)?),
                    KnobKind::Int => KnobValue::Int(parse_int(value)?),
                };
                // Check the range now, so the warning keeps command line order.
                MemAgentConfig::default()
                    .set(knob, parsed)
                    .map_err(WarningKind::InvalidValue)?;
                self.mem_agent_knobs.push((raw.to_owned(), knob, parsed));
            }
        }
        Ok(())
    }

    fn finish(mut self) -> ParsedCmdline {
        if self.systemd_unified.is_some() || self.agent_unified.is_some() {
            self.config.unified_cgroup_hierarchy =
                self.systemd_unified.unwrap_or(false) || self.agent_unified.unwrap_or(false);
        }

        let knobs = std::mem::take(&mut self.mem_agent_knobs);
        if self.mem_agent_enable == Some(true) {
            let mut mem_agent = MemAgentConfig::default();
            for (_, knob, value) in knobs {
                // Ranges were checked when the knob was read.
                let _ = mem_agent.set(knob, value);
            }
            self.config.mem_agent = Some(mem_agent);
        } else {
            for (token, _, _) in knobs {
                self.warn(&token, WarningKind::Ignored(MEM_AGENT_OFF_NOTE));
            }
        }

        ParsedCmdline {
            config: self.config,
            config_file: self.config_file,
            warnings: self.warnings,
        }
    }
}

/// `agent.trace=`: a boolean, or the Go agent's trace types `isolated` and `collated`, which
/// both turn tracing on (Kata reads them as false).
fn parse_trace(value: &str) -> Result<bool, WarningKind> {
    match value {
        "isolated" | "collated" => Ok(true),
        other => parse_bool(other),
    }
}
