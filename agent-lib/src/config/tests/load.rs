use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::{
    Config, ConfigWarning, LOG_LEVEL_ENV, Loaded, LogLevel, SERVER_ADDR_ENV, ServerAddr,
    WarningKind, WarningSource, load,
};
use super::{env_of, ignored, no_env, same_kind};

/// An in-memory filesystem that records which paths were read.
#[derive(Default)]
struct Files {
    files: HashMap<PathBuf, String>,
    reads: RefCell<Vec<PathBuf>>,
}

impl Files {
    fn with(entries: &[(&str, &str)]) -> Self {
        Files {
            files: entries
                .iter()
                .map(|(p, t)| (PathBuf::from(p), t.to_string()))
                .collect(),
            reads: RefCell::default(),
        }
    }

    fn reader(&self) -> impl FnMut(&Path) -> io::Result<String> + '_ {
        move |path| {
            self.reads.borrow_mut().push(path.to_owned());
            self.files
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }
    }

    fn reads(&self) -> Vec<PathBuf> {
        self.reads.borrow().clone()
    }
}

fn kinds(loaded: &Loaded) -> Vec<(WarningSource, &str, &WarningKind)> {
    loaded
        .warnings
        .iter()
        .map(|w| (w.source, w.token.as_str(), &w.kind))
        .collect()
}

#[test]
fn server_addr_precedence_is_defaults_cmdline_file_env() {
    // (cmdline sets it, --config file sets it, env sets it) -> winner
    let cases = [
        (false, false, false, "vsock://-1:1024"),
        (true, false, false, "unix:///cmdline"),
        (false, true, false, "unix:///file"),
        (false, false, true, "unix:///env"),
        (true, true, false, "unix:///file"),
        (true, false, true, "unix:///env"),
        (false, true, true, "unix:///env"),
        (true, true, true, "unix:///env"),
    ];
    for (on_cmdline, in_file, in_env, want) in cases {
        let cmdline = if on_cmdline {
            "agent.server_addr=unix:///cmdline"
        } else {
            ""
        };
        let file = if in_file {
            "server_addr = \"unix:///file\""
        } else {
            "dev_mode = true"
        };
        let env: &[(&str, &str)] = if in_env {
            &[(SERVER_ADDR_ENV, "unix:///env")]
        } else {
            &[]
        };
        let files = Files::with(&[("/agent.toml", file)]);
        let loaded = load(
            cmdline,
            Some(Path::new("/agent.toml")),
            env_of(env),
            files.reader(),
        );
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(loaded.config.server_addr.to_string(), want);
        assert_eq!(
            loaded.config_file.as_deref(),
            Some(Path::new("/agent.toml"))
        );
    }
}

#[test]
fn cli_config_layers_over_the_cmdline() {
    let files = Files::with(&[("/agent.toml", "hotplug_timeout = \"20s\"\ndev_mode = true")]);
    let loaded = load(
        "agent.log=debug agent.hotplug_timeout=10 agent.debug_console",
        Some(Path::new("/agent.toml")),
        env_of(&[(LOG_LEVEL_ENV, "trace")]),
        files.reader(),
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = &loaded.config;
    assert_eq!(c.log_level, LogLevel::Trace, "env beats cmdline");
    assert_eq!(
        c.hotplug_timeout,
        Duration::from_secs(20),
        "file beats cmdline"
    );
    assert!(c.dev_mode, "file key");
    assert!(c.debug_console, "cmdline option the file does not set");
    assert_eq!(files.reads(), [PathBuf::from("/agent.toml")]);
}

#[test]
fn kata_env_overrides_the_cli_config_file() {
    // Kata's test_from_cmdline_with_args_overwrites.
    let files = Files::with(&[(
        "/c.toml",
        "dev_mode = true\nserver_addr = 'unix:///tmp/ignored.socket'",
    )]);
    let loaded = load(
        "",
        Some(Path::new("/c.toml")),
        env_of(&[(SERVER_ADDR_ENV, "unix:///tmp/overwrite.socket")]),
        files.reader(),
    );
    let want = Config {
        dev_mode: true,
        server_addr: ServerAddr::Unix("/tmp/overwrite.socket".into()),
        ..Config::default()
    };
    assert_eq!(loaded.config, want);
}

#[test]
fn cli_config_wins_over_the_cmdline_config_file() {
    let files = Files::with(&[
        ("/cli.toml", "dev_mode = true"),
        ("/cmd.toml", "tracing = true"),
    ]);
    let loaded = load(
        "agent.config_file=/cmd.toml agent.log=debug",
        Some(Path::new("/cli.toml")),
        no_env,
        files.reader(),
    );
    assert_eq!(files.reads(), [PathBuf::from("/cli.toml")]);
    assert!(loaded.config.dev_mode && !loaded.config.tracing);
    assert_eq!(loaded.config.log_level, LogLevel::Debug);
    let got = kinds(&loaded);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, WarningSource::Cmdline);
    assert_eq!(got[0].1, "agent.config_file=/cmd.toml");
    assert!(same_kind(got[0].2, &ignored()));
}

#[test]
fn cmdline_config_file_replaces_agent_options() {
    let files = Files::with(&[("/etc/agent.toml", "dev_mode = true\nfoo = 1")]);
    let loaded = load(
        "console=ttyS0 agent.log=debug agent.config_file=/etc/agent.toml \
         systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all agent.hotplug_timeout=foo",
        None,
        env_of(&[(SERVER_ADDR_ENV, "unix:///env.sock")]),
        files.reader(),
    );
    let want = Config {
        dev_mode: true,
        unified_cgroup_hierarchy: true,
        cgroup_no_v1_all: true,
        server_addr: ServerAddr::Unix("/env.sock".into()),
        ..Config::default()
    };
    assert_eq!(loaded.config, want);
    assert_eq!(loaded.config_file, Some(PathBuf::from("/etc/agent.toml")));
    let got = kinds(&loaded);
    assert_eq!(got.len(), 3, "{got:?}");
    // The bad hotplug_timeout is reported as ignored, not as invalid.
    assert_eq!(
        (got[0].0, got[0].1),
        (WarningSource::Cmdline, "agent.log=debug")
    );
    assert_eq!(got[1].1, "agent.hotplug_timeout=foo");
    assert!(same_kind(got[0].2, &ignored()) && same_kind(got[1].2, &ignored()));
    assert_eq!((got[2].0, got[2].1), (WarningSource::ConfigFile, "foo"));
    assert_eq!(got[2].2, &WarningKind::UnknownKey);
}

#[test]
fn missing_or_broken_cmdline_file_falls_back_to_the_cmdline() {
    let files = Files::with(&[("/broken.toml", "dev_mode = ")]);
    for (path, unreadable) in [("/missing.toml", true), ("/broken.toml", false)] {
        let cmdline = format!("agent.log=debug agent.config_file={path}");
        let loaded = load(&cmdline, None, no_env, files.reader());
        assert_eq!(loaded.config.log_level, LogLevel::Debug, "{path}");
        assert!(!loaded.config.dev_mode);
        assert_eq!(loaded.config_file, None);
        let got = kinds(&loaded);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!((got[0].0, got[0].1), (WarningSource::ConfigFile, path));
        let unreadable_kind = matches!(got[0].2, WarningKind::FileUnreadable(_));
        let unparsable_kind = matches!(got[0].2, WarningKind::FileUnparsable(_));
        assert!(
            if unreadable {
                unreadable_kind
            } else {
                unparsable_kind
            },
            "{got:?}"
        );
    }
}

#[test]
fn missing_cli_file_keeps_cmdline_and_env() {
    let files = Files::default();
    let loaded = load(
        "agent.devmode",
        Some(Path::new("/nope.toml")),
        env_of(&[(LOG_LEVEL_ENV, "error")]),
        files.reader(),
    );
    assert!(loaded.config.dev_mode);
    assert_eq!(loaded.config.log_level, LogLevel::Error);
    assert_eq!(loaded.config_file, None);
    assert_eq!(loaded.warnings.len(), 1);
    assert!(matches!(
        loaded.warnings[0].kind,
        WarningKind::FileUnreadable(_)
    ));
}

#[test]
fn no_file_named_reads_nothing() {
    let files = Files::default();
    let loaded = load(
        "agent.server_addr=unix:///tmp/ignored.socket",
        None,
        env_of(&[(SERVER_ADDR_ENV, "unix:///tmp/foo.socket")]),
        files.reader(),
    );
    assert!(files.reads().is_empty());
    assert_eq!(
        loaded.config.server_addr.to_string(),
        "unix:///tmp/foo.socket"
    );
    assert_eq!(loaded.config_file, None);
    assert!(loaded.warnings.is_empty());
}

#[test]
fn warnings_are_ordered_by_source_and_display_their_token() {
    let files = Files::with(&[("/a.toml", "log_vport = -1")]);
    let loaded = load(
        "agent.bogus",
        Some(Path::new("/a.toml")),
        env_of(&[(LOG_LEVEL_ENV, "loud")]),
        files.reader(),
    );
    let sources: Vec<WarningSource> = loaded.warnings.iter().map(|w| w.source).collect();
    assert_eq!(
        sources,
        [
            WarningSource::Cmdline,
            WarningSource::ConfigFile,
            WarningSource::Env
        ]
    );
    let text: Vec<String> = loaded
        .warnings
        .iter()
        .map(ConfigWarning::to_string)
        .collect();
    assert_eq!(
        text[0],
        "kernel command line: `agent.bogus`: unknown option"
    );
    assert!(
        text[1].starts_with("config file: `log_vport`: invalid value: -1"),
        "{}",
        text[1]
    );
    assert!(text[2].starts_with("environment: `KATA_AGENT_LOG_LEVEL=loud`: invalid value"));
    // Logging without a subscriber is a no-op, never a panic.
    loaded.log_warnings();
}
