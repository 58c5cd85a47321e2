//! Agent configuration: a value built by pure parsers from the kernel command line, an optional
//! TOML file and a few environment variables.
//!
//! # Sources and precedence
//!
//! [`load()`] reads the sources in this order, each overriding the one before:
//!
//! 1. **defaults** ([`Config::default`]);
//! 2. **the kernel command line** ([`parse_cmdline`], [`Config::from_cmdline`]); a later
//!    parameter overrides an earlier one;
//! 3. **the TOML file** ([`Config::apply_file`]; keys under
//!    [The config file](#the-config-file)): only the keys present override;
//! 4. **the environment** ([`Config::apply_env`]): `KATA_AGENT_SERVER_ADDR`,
//!    `KATA_AGENT_LOG_LEVEL`, `KATA_AGENT_TRACING`, `KATA_AGENT_POLICY_FILE`.
//!
//! The file is the one named by `--config <file>` when the binary got that flag, otherwise the
//! one named by the first `agent.config_file=<file>` on the command line:
//!
//! - With `--config`, the layers stack as listed (Kata instead ignores the command line
//!   entirely; the binary may pass an empty command line to get that). An
//!   `agent.config_file=` on the command line is then ignored with a warning.
//! - With `agent.config_file=`, the file **replaces** the command line's `agent.*` options, as
//!   in Kata: they are ignored, each with a warning. Two things differ from Kata, which returns
//!   the file alone: `systemd.unified_cgroup_hierarchy` and `cgroup_no_v1=all` still count,
//!   because they describe how the guest kernel was booted, and the environment still
//!   overrides, as it does with `--config`.
//! - A file that cannot be read or is not TOML is a warning, and the configuration is built as
//!   if no file had been named (Kata fails to start).
//!
//! # Errors are warnings
//!
//! Nothing here fails or panics. A refused token becomes a [`ConfigWarning`] (source, token,
//! [`WarningKind`]) and its setting keeps the value it had, as the Go agent did. Kata instead
//! panics on most bad values, which kills a guest whose agent is PID 1. The parsers do not log:
//! the subscriber does not exist yet while the configuration (which holds the log level) is
//! read. The binary builds the subscriber from [`Config::log_level`] and then calls
//! [`Loaded::log_warnings`]. Unknown `agent.*` options and unknown file keys are warnings too.
//!
//! # Kernel command line options
//!
//! | option | field | default | notes |
//! |---|---|---|---|
//! | `agent.debug_console` | `debug_console` | false | bare flag; `=value` is ignored with a warning, as Kata ignores it |
//! | `agent.debug_console_vport=P` | `debug_console_vport` | none (`/dev/console`) | does **not** enable the console by itself (Kata 4.1; the Go agent did); `0` = none |
//! | `agent.devmode` | `dev_mode` | false | bare flag |
//! | `agent.log=L` | `log_level` | `info` | [`LogLevel`], logrus names |
//! | `agent.log_vport=P` | `log_vport` | none (stdout) | `0` = none |
//! | `agent.server_addr=A` | `server_addr` | `vsock://-1:1024` | [`ServerAddr`] |
//! | `agent.passfd_listener_port=P` | `passfd_listener_port` | none (off) | `0` = none |
//! | `agent.hotplug_timeout=T` | `hotplug_timeout` | 3 s | timeout, see below |
//! | `agent.cdh_api_timeout=T` | `cdh_api_timeout` | 50 s | timeout |
//! | `agent.image_pull_timeout=T` | `image_pull_timeout` | 1200 s | timeout |
//! | `agent.cdi_timeout=T` | `cdi_timeout` | 100 s | timeout |
//! | `agent.launch_process_timeout=T` | `launch_process_timeout` | 6 s | timeout |
//! | `agent.container_pipe_size=N` | `container_pipe_size` | none (kernel default) | bytes, `0` = none, at most `i32::MAX` |
//! | `agent.trace` / `agent.trace=B` | `tracing` | false | bare = true; also the Go agent's `isolated` / `collated` (= true) |
//! | `agent.visible_cdi_devices=B` | `visible_cdi_devices` | false | |
//! | `agent.https_proxy=URL` | `https_proxy` | none | must look like `scheme://…` |
//! | `agent.no_proxy=LIST` | `no_proxy` | none | |
//! | `agent.guest_components_rest_api=X` | `guest_components_rest_api` | `resource` | `all`, `attestation`, `resource` |
//! | `agent.guest_components_procs=X` | `guest_components_procs` | `api-server-rest` | `none`, `attestation-agent`, `confidential-data-hub`, `api-server-rest` |
//! | `agent.secure_storage_integrity=B` | `secure_storage_integrity` | **true** | |
//! | `agent.mem_agent_enable=B` | `mem_agent` | none (off) | [`MemAgentConfig`] defaults when true |
//! | `agent.mem_agent_{memcg,compact}_*=V` | `mem_agent.*` | see [`MemcgConfig`], [`CompactConfig`] | apply only if enabled; their order relative to the enable token does not matter (it does in Kata) |
//! | `systemd.unified_cgroup_hierarchy[=B]` | `unified_cgroup_hierarchy` | false | bare = true, as systemd reads it |
//! | `agent.unified_cgroup_hierarchy=B` | `unified_cgroup_hierarchy` | false | Go agent; ORed with the systemd one |
//! | `cgroup_no_v1=LIST` | `cgroup_no_v1_all` | false | true when the list contains `all`; other lists are fine and change nothing |
//! | `agent.use_vsock=B` | — | — | Go agent; accepted and ignored with a warning |
//! | `agent.config_file=PATH` | — | — | see above |
//!
//! cgroup v2 is in use when [`Config::cgroup_v2`] is true: `systemd.unified_cgroup_hierarchy`
//! OR `agent.unified_cgroup_hierarchy` OR `cgroup_no_v1=all`.
//!
//! Booleans (`B`) are `true`/`false`, Go's `1 t T TRUE True 0 f F FALSE False`, or an unsigned
//! integer (non-zero = true); anything else is a warning (Kata silently reads it as false).
//! Ports (`P`) are 0 to `u32::MAX`. An option that needs a value but has none or an empty one is
//! a warning.
//!
//! **Timeouts** (`T`) accept whole seconds (`10`, Kata's form) and Go durations (`10s`, `1m30s`,
//! `500ms`, `1.5h`, `300us`, `300µs`, `2h45m`: the Go agent's form, see [`parse_go_duration`]).
//! Zero and negative values are ignored with a warning and the previous value kept; more than
//! `i64::MAX` nanoseconds is refused.
//!
//! # The config file
//!
//! TOML, with the field names of Kata's `AgentConfigBuilder` as top-level keys:
//!
//! | key | TOML type |
//! |---|---|
//! | `debug_console`, `dev_mode`, `tracing`, `visible_cdi_devices`, `unified_cgroup_hierarchy`, `secure_storage_integrity`, `mem_agent_enable` | boolean |
//! | `log_level` | string, a logrus level name |
//! | `server_addr` | string, a [`ServerAddr`] |
//! | `hotplug_timeout`, `cdh_api_timeout`, `image_pull_timeout`, `cdi_timeout`, `launch_process_timeout` | duration |
//! | `debug_console_vport`, `log_vport`, `passfd_listener_port` | integer, `0` = none |
//! | `container_pipe_size` | integer bytes, `0` = kernel default |
//! | `https_proxy`, `no_proxy`, `policy_file` | string, `""` = none |
//! | `guest_components_rest_api`, `guest_components_procs` | string, as on the command line |
//! | `mem_agent_memcg_*`, `mem_agent_compact_*` | boolean or integer, per knob |
//!
//! A duration is a Go duration string (`"10s"`), whole seconds as an integer (`10`) or a string
//! (`"10"`), or Kata's serde form, a table `{ secs = 10, nanos = 0 }` (`nanos` optional). The
//! knobs apply only when the mem-agent ends up enabled (by the file's `mem_agent_enable` or,
//! with `--config`, the command line). Kata ignores unknown keys; here each is a warning.

mod cmdline;
mod duration;
mod env;
mod file;
mod guest_components;
mod load;
mod log_level;
mod mem_agent;
mod value;
mod warning;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::host::{ServerAddr, ServerAddrError};
pub use cmdline::{ParsedCmdline, parse_cmdline};
pub use duration::{DurationError, GoDuration, MAX_DURATION, parse_go_duration};
pub use env::{LOG_LEVEL_ENV, POLICY_FILE_ENV, SERVER_ADDR_ENV, TRACING_ENV};
pub use guest_components::{GuestComponentsError, GuestComponentsProcs, GuestComponentsRestApi};
pub use load::{Loaded, load};
pub use log_level::{LogLevel, LogLevelError};
pub use mem_agent::{CompactConfig, MemAgentConfig, MemcgConfig};
pub use warning::{ConfigWarning, WarningKind, WarningSource};

/// Default `hotplug_timeout`: how long to wait for a hot-plugged device to appear.
pub const DEFAULT_HOTPLUG_TIMEOUT: Duration = Duration::from_secs(3);
/// Default `cdh_api_timeout`: calls to the confidential data hub.
pub const DEFAULT_CDH_API_TIMEOUT: Duration = Duration::from_secs(50);
/// Default `image_pull_timeout`: guest image pulls.
pub const DEFAULT_IMAGE_PULL_TIMEOUT: Duration = Duration::from_secs(1200);
/// Default `cdi_timeout`: waiting for CDI device specs.
pub const DEFAULT_CDI_TIMEOUT: Duration = Duration::from_secs(100);
/// Default `launch_process_timeout`: starting a container process.
pub const DEFAULT_LAUNCH_PROCESS_TIMEOUT: Duration = Duration::from_secs(6);

/// The agent's configuration. Build it with [`load()`] (or the pieces: [`Config::from_cmdline`],
/// [`Config::apply_file`], [`Config::apply_env`]); the module documentation lists every option.
///
/// Optional ports and sizes are `None` when unset and never `Some(0)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Start a debug shell (`agent.debug_console`).
    pub debug_console: bool,
    /// The vsock port of the debug console; `None` means `/dev/console`. Setting it does not
    /// enable the console (`debug_console` does), as in Kata 4.1.
    pub debug_console_vport: Option<u32>,
    /// Developer mode (`agent.devmode`).
    pub dev_mode: bool,
    /// The log level (`agent.log`).
    pub log_level: LogLevel,
    /// The vsock port the log is written to; `None` means stdout.
    pub log_vport: Option<u32>,
    /// The address the ttrpc server listens on.
    pub server_addr: ServerAddr,
    /// The vsock port of the passfd I/O listener; `None` disables it.
    pub passfd_listener_port: Option<u32>,
    /// How long to wait for a hot-plugged device.
    pub hotplug_timeout: Duration,
    /// Timeout of calls to the confidential data hub.
    pub cdh_api_timeout: Duration,
    /// Timeout of a guest image pull.
    pub image_pull_timeout: Duration,
    /// How long to wait for CDI device specs.
    pub cdi_timeout: Duration,
    /// How long to wait for a container process to start.
    pub launch_process_timeout: Duration,
    /// `F_SETPIPE_SZ` for container stdout/stderr pipes; `None` keeps the kernel default.
    pub container_pipe_size: Option<u32>,
    /// Export traces (`agent.trace`).
    pub tracing: bool,
    /// Make CDI devices visible (`agent.visible_cdi_devices`).
    pub visible_cdi_devices: bool,
    /// `systemd.unified_cgroup_hierarchy` / `agent.unified_cgroup_hierarchy` / file key.
    pub unified_cgroup_hierarchy: bool,
    /// `cgroup_no_v1=all` was on the kernel command line.
    pub cgroup_no_v1_all: bool,
    /// HTTPS proxy for guest image pulls.
    pub https_proxy: Option<String>,
    /// Proxy exclusions for guest image pulls.
    pub no_proxy: Option<String>,
    /// The guest components' REST API features.
    pub guest_components_rest_api: GuestComponentsRestApi,
    /// The guest-component processes to start.
    pub guest_components_procs: GuestComponentsProcs,
    /// Protect encrypted guest storage with dm-integrity.
    pub secure_storage_integrity: bool,
    /// The policy document to load (`policy_file` key, `KATA_AGENT_POLICY_FILE`).
    pub policy_file: Option<PathBuf>,
    /// The mem-agent settings; `None` when the mem-agent is off.
    pub mem_agent: Option<MemAgentConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            debug_console: false,
            debug_console_vport: None,
            dev_mode: false,
            log_level: LogLevel::Info,
            log_vport: None,
            server_addr: ServerAddr::default(),
            passfd_listener_port: None,
            hotplug_timeout: DEFAULT_HOTPLUG_TIMEOUT,
            cdh_api_timeout: DEFAULT_CDH_API_TIMEOUT,
            image_pull_timeout: DEFAULT_IMAGE_PULL_TIMEOUT,
            cdi_timeout: DEFAULT_CDI_TIMEOUT,
            launch_process_timeout: DEFAULT_LAUNCH_PROCESS_TIMEOUT,
            container_pipe_size: None,
            tracing: false,
            visible_cdi_devices: false,
            unified_cgroup_hierarchy: false,
            cgroup_no_v1_all: false,
            https_proxy: None,
            no_proxy: None,
            guest_components_rest_api: GuestComponentsRestApi::default(),
            guest_components_procs: GuestComponentsProcs::default(),
            secure_storage_integrity: true,
            policy_file: None,
            mem_agent: None,
        }
    }
}

impl Config {
    /// Whether the guest uses the unified (v2) cgroup hierarchy:
    /// `unified_cgroup_hierarchy` OR `cgroup_no_v1=all`.
    pub fn cgroup_v2(&self) -> bool {
        self.unified_cgroup_hierarchy || self.cgroup_no_v1_all
    }
}
