use std::path::PathBuf;
use std::time::Duration;

use super::super::{
    Config, GuestComponentsProcs, GuestComponentsRestApi, LogLevel, MemAgentConfig, ServerAddr,
    WarningKind, WarningSource,
};
use super::{assert_one_warning, ignored, invalid};

fn from_file(text: &str) -> (Config, Vec<super::super::ConfigWarning>) {
    let mut config = Config::default();
    let warnings = config.apply_file(text);
    (config, warnings)
}

#[test]
fn every_key_sets_its_field() {
    let text = r#"
        debug_console = true
        dev_mode = true
        log_level = "debug"
        hotplug_timeout = "10s"
        cdh_api_timeout = 60
        image_pull_timeout = { secs = 1800, nanos = 0 }
        cdi_timeout = "1m30s"
        launch_process_timeout = "7"
        visible_cdi_devices = true
        debug_console_vport = 1026
        log_vport = 1025
        container_pipe_size = 2097152
        server_addr = "unix:///run/agent.sock"
        passfd_listener_port = 1027
        unified_cgroup_hierarchy = true
        tracing = true
        https_proxy = "http://proxy:81/"
        no_proxy = "*.internal"
        guest_components_rest_api = "all"
        guest_components_procs = "none"
        secure_storage_integrity = false
        policy_file = "/etc/kata-opa/default-policy.rego"
        mem_agent_enable = true
        mem_agent_memcg_swap = true
        mem_agent_compact_order = 6
    "#;
    let (got, warnings) = from_file(text);
    assert!(warnings.is_empty(), "{warnings:#?}");
    let mut mem_agent = MemAgentConfig::default();
    mem_agent.memcg.swap = true;
    mem_agent.compact.compact_order = 6;
    let want = Config {
        debug_console: true,
        debug_console_vport: Some(1026),
        dev_mode: true,
        log_level: LogLevel::Debug,
        log_vport: Some(1025),
        server_addr: ServerAddr::Unix("/run/agent.sock".into()),
        passfd_listener_port: Some(1027),
        hotplug_timeout: Duration::from_secs(10),
        cdh_api_timeout: Duration::from_secs(60),
        image_pull_timeout: Duration::from_secs(1800),
        cdi_timeout: Duration::from_secs(90),
        launch_process_timeout: Duration::from_secs(7),
        container_pipe_size: Some(2_097_152),
        tracing: true,
        visible_cdi_devices: true,
        unified_cgroup_hierarchy: true,
        cgroup_no_v1_all: false,
        https_proxy: Some("http://proxy:81/".into()),
        no_proxy: Some("*.internal".into()),
        guest_components_rest_api: GuestComponentsRestApi::All,
        guest_components_procs: GuestComponentsProcs::None,
        secure_storage_integrity: false,
        policy_file: Some(PathBuf::from("/etc/kata-opa/default-policy.rego")),
        mem_agent: Some(mem_agent),
    };
    assert_eq!(got, want);
}

#[test]
fn kata_builder_example_parses() {
    // Kata's test_config_builder_from_string.
    let (got, warnings) = from_file(
        r#"
           dev_mode = true
           server_addr = 'vsock://8:2048'
           guest_components_procs = "api-server-rest"
           guest_components_rest_api = "all"
           mem_agent_enable = true
        "#,
    );
    assert!(warnings.is_empty());
    assert!(got.dev_mode);
    assert_eq!(got.server_addr, ServerAddr::Vsock { cid: 8, port: 2048 });
    assert_eq!(
        got.guest_components_procs,
        GuestComponentsProcs::ApiServerRest
    );
    assert_eq!(got.guest_components_rest_api, GuestComponentsRestApi::All);
    assert_eq!(got.hotplug_timeout, Duration::from_secs(3));
    assert_eq!(got.mem_agent, Some(MemAgentConfig::default()));
}

#[test]
fn durations_take_three_forms() {
    let cases: &[(&str, Duration)] = &[
        (r#""10s""#, Duration::from_secs(10)),
        (r#""10""#, Duration::from_secs(10)),
        (r#""1.5h""#, Duration::from_secs(5400)),
        (r#""500ms""#, Duration::from_millis(500)),
        ("10", Duration::from_secs(10)),
        ("{ secs = 10, nanos = 0 }", Duration::from_secs(10)),
        ("{ secs = 10, nanos = 5 }", Duration::new(10, 5)),
        ("{ secs = 0, nanos = 5 }", Duration::new(0, 5)),
        ("{ secs = 10 }", Duration::from_secs(10)),
        ("{ nanos = 1, secs = 2 }", Duration::new(2, 1)),
    ];
    for &(value, want) in cases {
        let (got, warnings) = from_file(&format!("hotplug_timeout = {value}"));
        assert!(warnings.is_empty(), "{value}: {warnings:?}");
        assert_eq!(got.hotplug_timeout, want, "{value}");
    }
}

#[test]
fn invalid_values_warn_and_keep_the_previous_value() {
    let positive = WarningKind::NotPositive;
    let cases: &[(&str, &str, WarningKind)] = &[
        ("hotplug_timeout", "0", positive.clone()),
        ("hotplug_timeout", "-1", positive.clone()),
        ("hotplug_timeout", r#""0s""#, positive.clone()),
        ("hotplug_timeout", r#""-5s""#, positive.clone()),
        (
            "hotplug_timeout",
            "{ secs = 0, nanos = 0 }",
            positive.clone(),
        ),
        ("hotplug_timeout", "{ secs = 0 }", positive.clone()),
        ("hotplug_timeout", "{ secs = -1 }", invalid()),
        ("hotplug_timeout", "{ nanos = 5 }", invalid()),
        (
            "hotplug_timeout",
            "{ secs = 1, nanos = 1000000000 }",
            invalid(),
        ),
        ("hotplug_timeout", "{ secs = 1, extra = 2 }", invalid()),
        ("hotplug_timeout", "{ secs = 9223372037 }", invalid()),
        ("hotplug_timeout", r#""foo""#, invalid()),
        ("hotplug_timeout", "1.5", invalid()),
        ("hotplug_timeout", "true", invalid()),
        ("hotplug_timeout", "9223372037", invalid()),
        ("cdh_api_timeout", "[1]", invalid()),
        ("image_pull_timeout", r#""1d""#, invalid()),
        ("cdi_timeout", "0", positive.clone()),
        ("launch_process_timeout", r#""""#, invalid()),
        ("debug_console", r#""yes""#, invalid()),
        ("debug_console", "1", invalid()),
        ("dev_mode", r#""true""#, invalid()),
        ("tracing", "1", invalid()),
        ("visible_cdi_devices", "[]", invalid()),
        ("unified_cgroup_hierarchy", r#""1""#, invalid()),
        ("secure_storage_integrity", "0", invalid()),
        ("log_level", r#""foo""#, invalid()),
        ("log_level", r#""""#, invalid()),
        ("log_level", "3", invalid()),
        ("server_addr", r#""foo""#, invalid()),
        ("server_addr", r#""""#, invalid()),
        ("server_addr", "1024", invalid()),
        ("debug_console_vport", "-1", invalid()),
        ("debug_console_vport", r#""1026""#, invalid()),
        ("log_vport", "4294967296", invalid()),
        ("passfd_listener_port", "1.5", invalid()),
        ("container_pipe_size", "-1", invalid()),
        ("container_pipe_size", "2147483648", invalid()),
        ("https_proxy", r#""proxy:81""#, invalid()),
        ("https_proxy", "1", invalid()),
        ("no_proxy", "false", invalid()),
        ("policy_file", "1", invalid()),
        ("guest_components_rest_api", r#""x""#, invalid()),
        ("guest_components_procs", r#""api_server_rest""#, invalid()),
        ("mem_agent_enable", "1", invalid()),
        ("foo", "1", WarningKind::UnknownKey),
        ("agent_log", r#""debug""#, WarningKind::UnknownKey),
        ("cgroup_no_v1", r#""all""#, WarningKind::UnknownKey),
    ];
    for (key, value, kind) in cases {
        let (got, warnings) = from_file(&format!("{key} = {value}"));
        assert_one_warning(&warnings, WarningSource::ConfigFile, key, kind);
        assert_eq!(got, Config::default(), "{key} = {value}");
    }
}

#[test]
fn only_present_keys_override() {
    let mut config = Config {
        log_level: LogLevel::Trace,
        hotplug_timeout: Duration::from_secs(20),
        https_proxy: Some("http://a/".into()),
        no_proxy: Some("b".into()),
        ..Config::default()
    };
    let warnings = config.apply_file("dev_mode = true\nhotplug_timeout = 0\nno_proxy = \"\"\n");
    assert_one_warning(
        &warnings,
        WarningSource::ConfigFile,
        "hotplug_timeout",
        &WarningKind::NotPositive,
    );
    assert!(config.dev_mode);
    assert_eq!(config.log_level, LogLevel::Trace);
    assert_eq!(config.hotplug_timeout, Duration::from_secs(20));
    assert_eq!(config.https_proxy.as_deref(), Some("http://a/"));
    assert_eq!(config.no_proxy, None, "an empty string clears");
}

#[test]
fn unknown_tables_and_keys_are_reported() {
    // Kata's sample file still carries the removed [endpoints] table.
    let (got, warnings) =
        from_file("dev_mode = true\n[endpoints]\nallowed = [\"CreateContainer\"]\n");
    assert!(got.dev_mode);
    assert_one_warning(
        &warnings,
        WarningSource::ConfigFile,
        "endpoints",
        &WarningKind::UnknownKey,
    );
}

#[test]
fn broken_toml_changes_nothing() {
    for text in [
        "dev_mode = ",
        "dev_mode = true\ndev_mode = false",
        "[x",
        "= 1",
        "a = 'b",
    ] {
        let (got, warnings) = from_file(text);
        assert_eq!(got, Config::default(), "{text}");
        assert_eq!(warnings.len(), 1, "{text}: {warnings:?}");
        let WarningKind::FileUnparsable(reason) = &warnings[0].kind else {
            panic!("{text}: {warnings:?}");
        };
        assert!(reason.starts_with("line "), "{text}: {reason}");
    }
    let (_, warnings) = from_file("\n\ndev_mode = ");
    let WarningKind::FileUnparsable(reason) = &warnings[0].kind else {
        panic!("{warnings:?}");
    };
    assert!(reason.starts_with("line 3, column"), "{reason}");
}

#[test]
fn empty_file_changes_nothing() {
    for text in ["", "\n", "# only a comment\n"] {
        let (got, warnings) = from_file(text);
        assert!(warnings.is_empty());
        assert_eq!(got, Config::default());
    }
}

#[test]
fn mem_agent_knobs_need_the_agent_enabled() {
    // Knobs without the enable key are ignored...
    let (got, warnings) = from_file("mem_agent_compact_order = 6");
    assert_eq!(got.mem_agent, None);
    let kind = ignored();
    assert_one_warning(
        &warnings,
        WarningSource::ConfigFile,
        "mem_agent_compact_order",
        &kind,
    );

    // ...but layer on a mem-agent enabled by an earlier source.
    let mut earlier = MemAgentConfig::default();
    earlier.memcg.swappiness_max = 70;
    let mut config = Config {
        mem_agent: Some(earlier.clone()),
        ..Config::default()
    };
    assert!(config.apply_file("mem_agent_compact_order = 6").is_empty());
    earlier.compact.compact_order = 6;
    assert_eq!(config.mem_agent, Some(earlier));

    // `mem_agent_enable = false` turns it off, and then the knobs are ignored.
    let warnings = config.apply_file("mem_agent_enable = false\nmem_agent_memcg_swap = true");
    assert_eq!(config.mem_agent, None);
    assert_one_warning(
        &warnings,
        WarningSource::ConfigFile,
        "mem_agent_memcg_swap",
        &ignored(),
    );
}

#[test]
fn mem_agent_knobs_check_type_and_range() {
    let cases = [
        ("mem_agent_memcg_swappiness_max", "256"),
        ("mem_agent_memcg_swappiness_max", "-1"),
        ("mem_agent_memcg_swap", "1"),
        ("mem_agent_memcg_period_secs", "true"),
        ("mem_agent_compact_threshold", "-1"),
        ("mem_agent_compact_order", r#""6""#),
    ];
    for (key, value) in cases {
        let (got, warnings) = from_file(&format!("mem_agent_enable = true\n{key} = {value}"));
        assert_one_warning(&warnings, WarningSource::ConfigFile, key, &invalid());
        assert_eq!(
            got.mem_agent,
            Some(MemAgentConfig::default()),
            "{key} = {value}"
        );
    }
    // TOML integers stop at i64::MAX, Kata's "never force" value.
    let (got, warnings) =
        from_file("mem_agent_enable = true\nmem_agent_compact_force_times = 9223372036854775807");
    assert!(warnings.is_empty());
    assert_eq!(
        got.mem_agent.unwrap().compact.compact_force_times,
        i64::MAX as u64
    );
}
