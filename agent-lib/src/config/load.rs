//! Composing the sources into the configuration the agent runs with. All IO is injected: the
//! caller passes the command line text, the environment lookup and the file reader.

use std::io;
use std::path::{Path, PathBuf};

use toml::Table;

use super::Config;
use super::cmdline::{Param, params, parse_cmdline};
use super::file::{apply_table, parse_table};
use super::warning::{ConfigWarning, WarningKind, WarningSource};

const CONFIG_FILE_OPTION: &str = "agent.config_file";
const CLI_WINS_NOTE: &str = "--config was given and takes precedence";
const REPLACED_BY_FILE_NOTE: &str =
    "agent.config_file= was given; the file replaces the agent.* options of the command line";

/// The configuration to run with, where it came from, and what was refused on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The final configuration.
    pub config: Config,
    /// The config file that was read and applied, if any.
    pub config_file: Option<PathBuf>,
    /// Every refused or ignored token, in the order the sources were read.
    pub warnings: Vec<ConfigWarning>,
}

impl Loaded {
    /// Log every warning at WARN level; call once the subscriber is installed.
    pub fn log_warnings(&self) {
        for warning in &self.warnings {
            warning.log();
        }
    }
}

/// Build the configuration from every source, in the order described in the
/// [module documentation](super): defaults, then the kernel command line `cmdline`, then the
/// config file (`cli_config_path` from `--config`, else the command line's
/// `agent.config_file=`), then the environment through `env`. `read_file` reads the config
/// file. Never fails and never panics: a missing or broken file is a warning, and the
/// configuration is then built as if no file had been named.
pub fn load<E, R>(cmdline: &str, cli_config_path: Option<&Path>, env: E, mut read_file: R) -> Loaded
where
    E: Fn(&str) -> Option<String>,
    R: FnMut(&Path) -> io::Result<String>,
{
    let parsed = parse_cmdline(cmdline);
    let mut config = parsed.config;
    let mut warnings = parsed.warnings;
    let mut config_file = None;

    match (cli_config_path, parsed.config_file) {
        (Some(path), cmdline_file) => {
            if let Some(ignored) = cmdline_file {
                warnings.push(ConfigWarning::new(
                    WarningSource::Cmdline,
                    format!("{CONFIG_FILE_OPTION}={}", ignored.display()),
                    WarningKind::Ignored(CLI_WINS_NOTE),
                ));
            }
            if let Some(table) = read_table(path, &mut read_file, &mut warnings) {
                warnings.extend(apply_table(&mut config, &table));
                config_file = Some(path.to_owned());
            }
        }
        (None, Some(path)) => {
            if let Some(table) = read_table(&path, &mut read_file, &mut warnings) {
                // The file replaces the agent's own options; what the command line says about
                // how the kernel set up cgroups still holds.
                let mut from_file = Config {
                    unified_cgroup_hierarchy: config.unified_cgroup_hierarchy,
                    cgroup_no_v1_all: config.cgroup_no_v1_all,
                    ..Config::default()
                };
                warnings = replaced_agent_options(cmdline, warnings);
                warnings.extend(apply_table(&mut from_file, &table));
                config = from_file;
                config_file = Some(path);
            }
        }
        (None, None) => {}
    }

    warnings.extend(config.apply_env(env));
    Loaded {
        config,
        config_file,
        warnings,
    }
}

/// Read and parse the file, or record why not.
fn read_table<R>(path: &Path, read_file: &mut R, warnings: &mut Vec<ConfigWarning>) -> Option<Table>
where
    R: FnMut(&Path) -> io::Result<String>,
{
    let result = read_file(path)
        .map_err(|e| WarningKind::FileUnreadable(e.to_string()))
        .and_then(|text| parse_table(&text));
    result
        .map_err(|kind| {
            warnings.push(ConfigWarning::new(
                WarningSource::ConfigFile,
                path.display().to_string(),
                kind,
            ));
        })
        .ok()
}

/// When `agent.config_file=` is honoured, the other `agent.*` parameters have no effect: drop
/// the warnings about their values and say instead that each was ignored.
fn replaced_agent_options(cmdline: &str, warnings: Vec<ConfigWarning>) -> Vec<ConfigWarning> {
    let replaced = |p: &Param<'_>| p.name.starts_with("agent.") && p.name != CONFIG_FILE_OPTION;
    let mut kept: Vec<ConfigWarning> = warnings
        .into_iter()
        .filter(|w| !replaced(&Param::new(&w.token)))
        .collect();
    kept.extend(params(cmdline).iter().filter(|p| replaced(p)).map(|p| {
        ConfigWarning::new(
            WarningSource::Cmdline,
            p.raw,
            WarningKind::Ignored(REPLACED_BY_FILE_NOTE),
        )
    }));
    kept
}
