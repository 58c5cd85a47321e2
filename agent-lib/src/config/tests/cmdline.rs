use std::path::PathBuf;
use std::time::Duration;

use super::super::cmdline::{VALUE_OPTIONS, params};
use super::super::mem_agent::Knob;
use super::super::{
    Config, GuestComponentsProcs as Procs, GuestComponentsRestApi as RestApi, LogLevel,
    MemAgentConfig, ServerAddr, WarningKind, WarningSource, parse_cmdline,
};
use super::{assert_one_warning, ignored, invalid};

type Edit = fn(&mut Config);

/// Parse `line` and check it yields `Config::default()` changed by `edit`, without warnings.
#[track_caller]
fn check_valid(line: &str, edit: Edit) {
    let mut want = Config::default();
    edit(&mut want);
    let (got, warnings) = Config::from_cmdline(line);
    assert!(warnings.is_empty(), "{line}: {warnings:#?}");
    assert_eq!(got, want, "{line}");
}

#[test]
fn each_option_sets_its_field() {
    let cases: &[(&str, Edit)] = &[
        ("", |_| {}),
        ("   ", |_| {}),
        ("console=ttyS0 root=/dev/vda1 rw quiet", |_| {}),
        ("foo agent bar trace .trace debug_console devmode", |_| {}),
        ("agent.debug_console", |c| c.debug_console = true),
        ("   agent.debug_console ", |c| c.debug_console = true),
        ("foo agent.debug_console bar", |c| c.debug_console = true),
        ("agent.devmode", |c| c.dev_mode = true),
        ("agent.devmode agent.debug_console", |c| {
            c.dev_mode = true;
            c.debug_console = true
        }),
        ("agent.trace", |c| c.tracing = true),
        ("agent.trace=true", |c| c.tracing = true),
        ("agent.trace=1", |c| c.tracing = true),
        ("agent.trace=isolated", |c| c.tracing = true),
        ("agent.trace=collated", |c| c.tracing = true),
        ("agent.trace=false", |_| {}),
        ("agent.trace=0", |_| {}),
        ("agent.trace agent.trace=false", |_| {}),
        ("agent.log=trace", |c| c.log_level = LogLevel::Trace),
        ("agent.log=debug", |c| c.log_level = LogLevel::Debug),
        ("agent.log=info", |c| c.log_level = LogLevel::Info),
        ("agent.log=warn", |c| c.log_level = LogLevel::Warning),
        ("agent.log=warning", |c| c.log_level = LogLevel::Warning),
        ("agent.log=error", |c| c.log_level = LogLevel::Error),
        ("agent.log=critical", |c| c.log_level = LogLevel::Critical),
        ("agent.log=fatal", |c| c.log_level = LogLevel::Critical),
        ("agent.log=panic", |c| c.log_level = LogLevel::Critical),
        ("agent.log=DEBUG", |c| c.log_level = LogLevel::Debug),
        ("agent.log=debug agent.log=error", |c| {
            c.log_level = LogLevel::Error
        }),
        ("agent.server_addr=vsock://-1:1024", |_| {}),
        ("agent.server_addr=vsock://3:2048", |c| {
            c.server_addr = ServerAddr::Vsock { cid: 3, port: 2048 }
        }),
        (" agent.server_addr=unix:///tmp/foo.socket a", |c| {
            c.server_addr = ServerAddr::Unix("/tmp/foo.socket".into())
        }),
        ("agent.server_addr=unix://@/tmp/foo.socket", |c| {
            c.server_addr = ServerAddr::UnixAbstract("/tmp/foo.socket".into())
        }),
        ("agent.debug_console_vport=1026", |c| {
            c.debug_console_vport = Some(1026)
        }),
        (
            "agent.debug_console_vport=1026 agent.debug_console_vport=0",
            |_| {},
        ),
        ("agent.log_vport=1025", |c| c.log_vport = Some(1025)),
        ("agent.log_vport=4294967295", |c| {
            c.log_vport = Some(u32::MAX)
        }),
        ("agent.log_vport=0", |_| {}),
        ("agent.passfd_listener_port=1027", |c| {
            c.passfd_listener_port = Some(1027)
        }),
        ("agent.container_pipe_size=2097152", |c| {
            c.container_pipe_size = Some(2_097_152)
        }),
        ("agent.container_pipe_size=1", |c| {
            c.container_pipe_size = Some(1)
        }),
        ("agent.container_pipe_size=2147483647", |c| {
            c.container_pipe_size = Some(i32::MAX as u32)
        }),
        ("agent.container_pipe_size=0", |_| {}),
        ("agent.visible_cdi_devices=true", |c| {
            c.visible_cdi_devices = true
        }),
        ("agent.visible_cdi_devices=1", |c| {
            c.visible_cdi_devices = true
        }),
        ("agent.visible_cdi_devices=T", |c| {
            c.visible_cdi_devices = true
        }),
        ("agent.visible_cdi_devices=False", |_| {}),
        ("agent.https_proxy=http://proxy.url.com:81/", |c| {
            c.https_proxy = Some("http://proxy.url.com:81/".into())
        }),
        ("agent.https_proxy=http://192.168.1.100:81", |c| {
            c.https_proxy = Some("http://192.168.1.100:81".into())
        }),
        ("agent.no_proxy=*.internal.url.com", |c| {
            c.no_proxy = Some("*.internal.url.com".into())
        }),
        ("agent.no_proxy=192.168.1.0/24,172.16.0.0/12", |c| {
            c.no_proxy = Some("192.168.1.0/24,172.16.0.0/12".into())
        }),
        ("agent.no_proxy=a=b", |c| c.no_proxy = Some("a=b".into())),
        ("agent.no_proxy=\"a b,c\"", |c| {
            c.no_proxy = Some("a b,c".into())
        }),
        ("\"agent.no_proxy=a b\"", |c| {
            c.no_proxy = Some("a b".into())
        }),
        ("agent.guest_components_rest_api=all", |c| {
            c.guest_components_rest_api = RestApi::All
        }),
        ("agent.guest_components_rest_api=attestation", |c| {
            c.guest_components_rest_api = RestApi::Attestation
        }),
        ("agent.guest_components_rest_api=resource", |_| {}),
        ("agent.guest_components_procs=none", |c| {
            c.guest_components_procs = Procs::None
        }),
        ("agent.guest_components_procs=attestation-agent", |c| {
            c.guest_components_procs = Procs::AttestationAgent
        }),
        ("agent.guest_components_procs=confidential-data-hub", |c| {
            c.guest_components_procs = Procs::ConfidentialDataHub
        }),
        ("agent.guest_components_procs=api-server-rest", |_| {}),
        ("agent.secure_storage_integrity=true", |_| {}),
        ("agent.secure_storage_integrity=false", |c| {
            c.secure_storage_integrity = false
        }),
        ("agent.secure_storage_integrity=0", |c| {
            c.secure_storage_integrity = false
        }),
        ("systemd.unified_cgroup_hierarchy=1", |c| {
            c.unified_cgroup_hierarchy = true
        }),
        ("systemd.unified_cgroup_hierarchy=11", |c| {
            c.unified_cgroup_hierarchy = true
        }),
        ("systemd.unified_cgroup_hierarchy=true", |c| {
            c.unified_cgroup_hierarchy = true
        }),
        ("systemd.unified_cgroup_hierarchy", |c| {
            c.unified_cgroup_hierarchy = true
        }),
        ("systemd.unified_cgroup_hierarchy=0", |_| {}),
        ("systemd.unified_cgroup_hierarchy=false", |_| {}),
        ("agent.unified_cgroup_hierarchy=true", |c| {
            c.unified_cgroup_hierarchy = true
        }),
        (
            "agent.unified_cgroup_hierarchy=1 systemd.unified_cgroup_hierarchy=0",
            |c| c.unified_cgroup_hierarchy = true,
        ),
        (
            "systemd.unified_cgroup_hierarchy=1 agent.unified_cgroup_hierarchy=0",
            |c| c.unified_cgroup_hierarchy = true,
        ),
        ("cgroup_no_v1=all", |c| c.cgroup_no_v1_all = true),
        ("cgroup_no_v1=memory,all", |c| c.cgroup_no_v1_all = true),
        ("cgroup_no_v1=1", |_| {}),
        ("cgroup_no_v1=memory", |_| {}),
        ("cgroup_no_v1", |_| {}),
        ("cgroup_no_v1=0 systemd.unified_cgroup_hierarchy=1", |c| {
            c.unified_cgroup_hierarchy = true
        }),
        ("agent.mem_agent_enable=1", |c| {
            c.mem_agent = Some(MemAgentConfig::default())
        }),
        (
            "agent.mem_agent_enable=true agent.mem_agent_enable=false",
            |_| {},
        ),
        (
            "agent.devmode agent.debug_console agent.hotplug_timeout=100 \
             agent.container_pipe_size=100 systemd.unified_cgroup_hierarchy=true",
            |c| {
                c.dev_mode = true;
                c.debug_console = true;
                c.hotplug_timeout = Duration::from_secs(100);
                c.container_pipe_size = Some(100);
                c.unified_cgroup_hierarchy = true
            },
        ),
    ];
    for &(line, edit) in cases {
        check_valid(line, edit);
    }
}

#[test]
fn every_timeout_takes_seconds_and_go_durations() {
    type Field = fn(&mut Config) -> &mut Duration;
    let options: &[(&str, Field)] = &[
        ("agent.hotplug_timeout", |c| &mut c.hotplug_timeout),
        ("agent.cdh_api_timeout", |c| &mut c.cdh_api_timeout),
        ("agent.image_pull_timeout", |c| &mut c.image_pull_timeout),
        ("agent.cdi_timeout", |c| &mut c.cdi_timeout),
        ("agent.launch_process_timeout", |c| {
            &mut c.launch_process_timeout
        }),
    ];
    let values: &[(&str, Duration)] = &[
        ("10", Duration::from_secs(10)),
        ("3600", Duration::from_secs(3600)),
        ("10s", Duration::from_secs(10)),
        ("1m30s", Duration::from_secs(90)),
        ("500ms", Duration::from_millis(500)),
        ("1.5h", Duration::from_secs(5400)),
        ("300us", Duration::from_micros(300)),
        ("300µs", Duration::from_micros(300)),
        ("2h45m", Duration::from_secs(9900)),
    ];
    for &(option, field) in options {
        for &(value, want) in values {
            let line = format!("{option}={value}");
            let (mut got, warnings) = Config::from_cmdline(&line);
            assert!(warnings.is_empty(), "{line}: {warnings:?}");
            assert_eq!(*field(&mut got), want, "{line}");
            *field(&mut got) = *field(&mut Config::default());
            assert_eq!(got, Config::default(), "{line} changed another field");
        }
        for bad in ["0", "-1", "0s", "-5s"] {
            let line = format!("{option}=20 {option}={bad}");
            let (mut got, warnings) = Config::from_cmdline(&line);
            let token = format!("{option}={bad}");
            let kind = WarningKind::NotPositive;
            assert_one_warning(&warnings, WarningSource::Cmdline, &token, &kind);
            assert_eq!(
                *field(&mut got),
                Duration::from_secs(20),
                "{line}: keeps 20s"
            );
        }
    }
}

#[test]
fn invalid_tokens_warn_and_keep_the_default() {
    let unknown = WarningKind::UnknownOption;
    let missing = WarningKind::MissingValue;
    let flag = WarningKind::FlagWithValue;
    let positive = WarningKind::NotPositive;
    let cases: &[(&str, WarningKind)] = &[
        ("agent.debug_consolex", unknown.clone()),
        ("agent.devmodex", unknown.clone()),
        ("agent.logx=debug", unknown.clone()),
        ("agent.tracer", unknown.clone()),
        ("agent.trac", unknown.clone()),
        (
            "agent.server_address=unix:///tmp/foo.socket",
            unknown.clone(),
        ),
        ("agent.hotplug_timeot=1", unknown.clone()),
        ("agent.container_pip_siz=100", unknown.clone()),
        ("agent.foo=bar", unknown.clone()),
        ("agent.", unknown.clone()),
        ("agent.=x", unknown.clone()),
        ("agent.image_registry_auth=x", unknown.clone()),
        ("agent.mem_agent_bogus=1", unknown.clone()),
        ("agent.debug_console=1", flag.clone()),
        ("agent.debug_console=0", flag.clone()),
        ("agent.devmode=true", flag.clone()),
        ("agent.log", missing.clone()),
        ("agent.log=", missing.clone()),
        ("agent.trace=", missing.clone()),
        ("agent.server_addr=", missing.clone()),
        ("agent.hotplug_timeout", missing.clone()),
        ("agent.hotplug_timeout=", missing.clone()),
        ("agent.no_proxy=", missing.clone()),
        ("agent.https_proxy", missing.clone()),
        ("agent.config_file=", missing.clone()),
        ("agent.mem_agent_enable", missing.clone()),
        ("agent.mem_agent_memcg_swap", missing.clone()),
        ("agent.unified_cgroup_hierarchy", missing.clone()),
        ("systemd.unified_cgroup_hierarchy=", missing.clone()),
        ("agent.log=foo", invalid()),
        ("agent.log=debugging", invalid()),
        ("agent.log=debug=x", invalid()),
        ("agent.trace=foo", invalid()),
        ("agent.trace=.", invalid()),
        ("agent.trace=,", invalid()),
        ("agent.trace=a", invalid()),
        ("agent.server_addr=foo", invalid()),
        ("agent.server_addr=vsock://1024", invalid()),
        ("agent.server_addr=vsock://-2:1024", invalid()),
        ("agent.server_addr=tcp://1.2.3.4:80", invalid()),
        ("agent.server_addr=unix://", invalid()),
        ("agent.hotplug_timeout=0", positive.clone()),
        ("agent.hotplug_timeout=-1", positive.clone()),
        ("agent.hotplug_timeout=0s", positive.clone()),
        ("agent.hotplug_timeout=foo", invalid()),
        ("agent.hotplug_timeout=j", invalid()),
        ("agent.hotplug_timeout=4jbsdja", invalid()),
        ("agent.hotplug_timeout=1.5", invalid()),
        ("agent.hotplug_timeout=10x", invalid()),
        ("agent.hotplug_timeout=1h-5m", invalid()),
        ("agent.hotplug_timeout=3000000h", invalid()),
        ("agent.hotplug_timeout=99999999999999999999", invalid()),
        ("agent.cdh_api_timeout=x", invalid()),
        ("agent.image_pull_timeout=-3", positive.clone()),
        ("agent.cdi_timeout=1d", invalid()),
        ("agent.launch_process_timeout=0", positive.clone()),
        ("agent.debug_console_vport=-1", invalid()),
        ("agent.debug_console_vport=foo", invalid()),
        ("agent.log_vport=4294967296", invalid()),
        ("agent.log_vport=1025x", invalid()),
        ("agent.passfd_listener_port=-5", invalid()),
        ("agent.container_pipe_size=-1", invalid()),
        ("agent.container_pipe_size=foobar", invalid()),
        ("agent.container_pipe_size=j", invalid()),
        ("agent.container_pipe_size=4jbsdja", invalid()),
        ("agent.container_pipe_size=2147483648", invalid()),
        ("agent.container_pipe_size=4294967296", invalid()),
        ("agent.visible_cdi_devices=yes", invalid()),
        ("agent.visible_cdi_devices=-1", invalid()),
        ("agent.secure_storage_integrity=garbage", invalid()),
        ("agent.unified_cgroup_hierarchy=maybe", invalid()),
        ("systemd.unified_cgroup_hierarchy=a", invalid()),
        ("agent.https_proxy=proxy.url.com:81", invalid()),
        ("agent.https_proxy=://x", invalid()),
        ("agent.https_proxy=1http://x", invalid()),
        ("agent.https_proxy=http://", invalid()),
        ("agent.guest_components_rest_api=x", invalid()),
        ("agent.guest_components_rest_api==", invalid()),
        ("agent.guest_components_procs=x", invalid()),
        ("agent.guest_components_procs=api_server_rest", invalid()),
        ("agent.mem_agent_enable=maybe", invalid()),
        ("agent.use_vsock=true", ignored()),
        ("agent.use_vsock=false", ignored()),
        ("agent.use_vsock", ignored()),
        ("agent.use_vsock=garbage", invalid()),
        ("agent.mem_agent_memcg_period_secs=300", ignored()),
        ("agent.mem_agent_compact_disable=true", ignored()),
    ];
    for (line, kind) in cases {
        let (got, warnings) = Config::from_cmdline(line);
        assert_one_warning(&warnings, WarningSource::Cmdline, line.trim(), kind);
        assert_eq!(got, Config::default(), "{line} changed the config");
    }
}

#[test]
fn bad_tokens_do_not_disturb_good_ones() {
    let line = "agent.log=foo agent.debug_console agent.hotplug_timeout=10s bogus \
                agent.nope agent.container_pipe_size=-1 agent.log_vport=1025";
    let (got, warnings) = Config::from_cmdline(line);
    let tokens: Vec<&str> = warnings.iter().map(|w| w.token.as_str()).collect();
    assert_eq!(
        tokens,
        [
            "agent.log=foo",
            "agent.nope",
            "agent.container_pipe_size=-1"
        ]
    );
    let want = Config {
        debug_console: true,
        hotplug_timeout: Duration::from_secs(10),
        log_vport: Some(1025),
        ..Config::default()
    };
    assert_eq!(got, want);
    // A bad value keeps the earlier good one, not the default.
    let (got, _) = Config::from_cmdline("agent.log=debug agent.log=bogus");
    assert_eq!(got.log_level, LogLevel::Debug);
}

#[test]
fn debug_console_vport_does_not_enable_the_console() {
    let (got, warnings) = Config::from_cmdline("agent.debug_console_vport=1026");
    assert!(warnings.is_empty());
    assert_eq!(got.debug_console_vport, Some(1026));
    assert!(!got.debug_console);
}

#[test]
fn cgroup_v2_is_any_of_three_tokens() {
    let cases = [
        ("", false),
        ("systemd.unified_cgroup_hierarchy=1", true),
        ("agent.unified_cgroup_hierarchy=true", true),
        ("cgroup_no_v1=all", true),
        ("cgroup_no_v1=memory", false),
        ("systemd.unified_cgroup_hierarchy=0 cgroup_no_v1=all", true),
        (
            "systemd.unified_cgroup_hierarchy=0 agent.unified_cgroup_hierarchy=0",
            false,
        ),
    ];
    for (line, v2) in cases {
        assert_eq!(Config::from_cmdline(line).0.cgroup_v2(), v2, "{line}");
    }
}

#[test]
fn mem_agent_knobs_apply_in_any_order_once_enabled() {
    let knobs = "agent.mem_agent_memcg_disable=true agent.mem_agent_memcg_swap=1 \
                 agent.mem_agent_memcg_swappiness_max=60 agent.mem_agent_memcg_period_secs=300 \
                 agent.mem_agent_memcg_period_psi_percent_limit=2 \
                 agent.mem_agent_memcg_eviction_psi_percent_limit=3 \
                 agent.mem_agent_memcg_eviction_run_aging_count_min=4 \
                 agent.mem_agent_compact_disable=false agent.mem_agent_compact_period_secs=120 \
                 agent.mem_agent_compact_period_psi_percent_limit=6 \
                 agent.mem_agent_compact_psi_percent_limit=7 agent.mem_agent_compact_sec_max=-1 \
                 agent.mem_agent_compact_order=6 agent.mem_agent_compact_threshold=2048 \
                 agent.mem_agent_compact_force_times=18446744073709551615";
    let mut want = MemAgentConfig::default();
    want.memcg.disabled = true;
    want.memcg.swap = true;
    want.memcg.swappiness_max = 60;
    want.memcg.period_secs = 300;
    want.memcg.period_psi_percent_limit = 2;
    want.memcg.eviction_psi_percent_limit = 3;
    want.memcg.eviction_run_aging_count_min = 4;
    want.compact.period_secs = 120;
    want.compact.period_psi_percent_limit = 6;
    want.compact.compact_psi_percent_limit = 7;
    want.compact.compact_sec_max = -1;
    want.compact.compact_order = 6;
    want.compact.compact_threshold = 2048;
    want.compact.compact_force_times = u64::MAX;

    for line in [
        format!("agent.mem_agent_enable=1 {knobs}"),
        format!("{knobs} agent.mem_agent_enable=1"),
    ] {
        let (got, warnings) = Config::from_cmdline(&line);
        assert!(warnings.is_empty(), "{warnings:#?}");
        assert_eq!(got.mem_agent.as_ref(), Some(&want));
    }

    // Without the enable token every knob is reported, in command line order.
    let (got, warnings) = Config::from_cmdline(knobs);
    assert_eq!(got.mem_agent, None);
    assert_eq!(warnings.len(), Knob::ALL.len());
    assert!(
        warnings
            .iter()
            .all(|w| matches!(w.kind, WarningKind::Ignored(_))),
        "{warnings:#?}"
    );
}

#[test]
fn mem_agent_knobs_check_type_and_range() {
    let cases = [
        "agent.mem_agent_memcg_swappiness_max=256",
        "agent.mem_agent_memcg_swappiness_max=-1",
        "agent.mem_agent_memcg_period_secs=-1",
        "agent.mem_agent_memcg_swap=2x",
        "agent.mem_agent_memcg_swap=maybe",
        "agent.mem_agent_compact_order=x",
        "agent.mem_agent_compact_sec_max=9223372036854775808",
        "agent.mem_agent_compact_force_times=18446744073709551616",
    ];
    for knob in cases {
        let line = format!("agent.mem_agent_enable=1 {knob}");
        let (got, warnings) = Config::from_cmdline(&line);
        assert_one_warning(&warnings, WarningSource::Cmdline, knob, &invalid());
        assert_eq!(got.mem_agent, Some(MemAgentConfig::default()), "{knob}");
    }
}

#[test]
fn every_option_is_recognised() {
    for option in VALUE_OPTIONS {
        let line = format!("agent.{option}");
        let (_, warnings) = Config::from_cmdline(&line);
        assert!(
            warnings
                .iter()
                .all(|w| w.kind != WarningKind::UnknownOption),
            "{line}: {warnings:?}"
        );
    }
    for knob in Knob::ALL {
        let line = format!("agent.{}=1", knob.name());
        let (_, warnings) = Config::from_cmdline(&line);
        assert!(
            warnings
                .iter()
                .all(|w| w.kind != WarningKind::UnknownOption),
            "{line}: {warnings:?}"
        );
    }
}

#[test]
fn config_file_is_recorded_not_read() {
    let parsed = parse_cmdline("agent.log=debug agent.config_file=/etc/agent.toml");
    assert_eq!(parsed.config_file, Some(PathBuf::from("/etc/agent.toml")));
    assert_eq!(parsed.config.log_level, LogLevel::Debug);
    assert!(parsed.warnings.is_empty());

    let parsed = parse_cmdline("agent.config_file=/a.toml agent.config_file=/b.toml");
    assert_eq!(parsed.config_file, Some(PathBuf::from("/a.toml")));
    let kind = ignored();
    let token = "agent.config_file=/b.toml";
    assert_one_warning(&parsed.warnings, WarningSource::Cmdline, token, &kind);
}

#[test]
fn params_split_like_the_kernel() {
    let got: Vec<(&str, &str, Option<&str>)> =
        params("a b=c  \"d=e f\" g=\"h i\" j=k=l \"m\" n= \t\no=\"p\"q")
            .iter()
            .map(|p| (p.raw, p.name, p.value))
            .collect();
    assert_eq!(
        got,
        [
            ("a", "a", None),
            ("b=c", "b", Some("c")),
            ("\"d=e f\"", "d", Some("e f")),
            ("g=\"h i\"", "g", Some("h i")),
            ("j=k=l", "j", Some("k=l")),
            ("\"m\"", "m", None),
            ("n=", "n", Some("")),
            ("o=\"p\"q", "o", Some("p\"q")),
        ]
    );
    // An unterminated quote runs to the end of the line.
    let got: Vec<&str> = params("a=\"b c d").iter().map(|p| p.raw).collect();
    assert_eq!(got, ["a=\"b c d"]);
    // Non-ASCII text is kept intact.
    let got: Vec<&str> = params("µ=é ü").iter().map(|p| p.raw).collect();
    assert_eq!(got, ["µ=é", "ü"]);
}
