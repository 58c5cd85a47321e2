use std::path::PathBuf;

use super::super::{
    Config, LOG_LEVEL_ENV, LogLevel, POLICY_FILE_ENV, SERVER_ADDR_ENV, ServerAddr, TRACING_ENV,
    WarningSource,
};
use super::{assert_one_warning, env_of, invalid, no_env};

type Edit = fn(&mut Config);

#[test]
fn each_variable_overrides_its_field() {
    let cases: &[(&str, &str, Edit)] = &[
        (SERVER_ADDR_ENV, "unix:///tmp/foo.socket", |c| {
            c.server_addr = ServerAddr::Unix("/tmp/foo.socket".into())
        }),
        (SERVER_ADDR_ENV, "unix://@/tmp/foo.socket", |c| {
            c.server_addr = ServerAddr::UnixAbstract("/tmp/foo.socket".into())
        }),
        (SERVER_ADDR_ENV, "vsock://3:1024", |c| {
            c.server_addr = ServerAddr::Vsock { cid: 3, port: 1024 }
        }),
        (LOG_LEVEL_ENV, "debug", |c| c.log_level = LogLevel::Debug),
        (LOG_LEVEL_ENV, "trace", |c| c.log_level = LogLevel::Trace),
        (LOG_LEVEL_ENV, "fatal", |c| c.log_level = LogLevel::Critical),
        (TRACING_ENV, "1", |c| c.tracing = true),
        (TRACING_ENV, "true", |c| c.tracing = true),
        (TRACING_ENV, "0", |_| {}),
        (TRACING_ENV, "false", |_| {}),
        (POLICY_FILE_ENV, "/etc/policy.rego", |c| {
            c.policy_file = Some(PathBuf::from("/etc/policy.rego"))
        }),
        // Empty means unset.
        (SERVER_ADDR_ENV, "", |_| {}),
        (LOG_LEVEL_ENV, "", |_| {}),
        (TRACING_ENV, "", |_| {}),
        (POLICY_FILE_ENV, "", |_| {}),
        // Other variables are not read.
        ("KATA_AGENT_FOO", "bar", |_| {}),
        ("KATA_AGENT_SERVER_ADDRESS", "unix:///x", |_| {}),
    ];
    for &(name, value, edit) in cases {
        let mut want = Config::default();
        edit(&mut want);
        let mut got = Config::default();
        let warnings = got.apply_env(env_of(&[(name, value)]));
        assert!(warnings.is_empty(), "{name}={value}: {warnings:?}");
        assert_eq!(got, want, "{name}={value}");
    }
}

#[test]
fn invalid_values_warn_and_keep_the_previous_value() {
    let cases = [
        (SERVER_ADDR_ENV, "foo"),
        (SERVER_ADDR_ENV, "="),
        (SERVER_ADDR_ENV, "=foo"),
        (SERVER_ADDR_ENV, "foo=bar=baz="),
        (SERVER_ADDR_ENV, "vsock://1024"),
        (LOG_LEVEL_ENV, "invalid"),
        (LOG_LEVEL_ENV, "debugger"),
        (TRACING_ENV, "''"),
        (TRACING_ENV, "."),
        (TRACING_ENV, ","),
        (TRACING_ENV, "foo"),
    ];
    for (name, value) in cases {
        let mut got = Config {
            tracing: true,
            log_level: LogLevel::Debug,
            ..Config::default()
        };
        let before = got.clone();
        let warnings = got.apply_env(env_of(&[(name, value)]));
        let token = format!("{name}={value}");
        assert_one_warning(&warnings, WarningSource::Env, &token, &invalid());
        assert_eq!(got, before, "{token}");
    }
}

#[test]
fn all_variables_apply_together() {
    let mut got = Config::default();
    let warnings = got.apply_env(env_of(&[
        (SERVER_ADDR_ENV, "unix:///run/a.sock"),
        (LOG_LEVEL_ENV, "nope"),
        (TRACING_ENV, "1"),
    ]));
    assert_eq!(warnings.len(), 1);
    assert_eq!(got.server_addr.to_string(), "unix:///run/a.sock");
    assert_eq!(got.log_level, LogLevel::Info);
    assert!(got.tracing);
}

#[test]
fn no_environment_changes_nothing() {
    let mut got = Config::default();
    assert!(got.apply_env(no_env).is_empty());
    assert_eq!(got, Config::default());
}
