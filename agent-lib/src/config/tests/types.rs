use std::path::PathBuf;
use std::str::FromStr;

use tracing::level_filters::LevelFilter;

use super::super::{
    Config, GuestComponentsProcs, GuestComponentsRestApi, LogLevel, ServerAddr, ServerAddrError,
};

#[test]
fn log_levels_take_logrus_names() {
    let cases: &[(&str, LogLevel)] = &[
        ("trace", LogLevel::Trace),
        ("debug", LogLevel::Debug),
        ("info", LogLevel::Info),
        ("warn", LogLevel::Warning),
        ("warning", LogLevel::Warning),
        ("error", LogLevel::Error),
        ("critical", LogLevel::Critical),
        ("fatal", LogLevel::Critical),
        ("panic", LogLevel::Critical),
        ("DEBUG", LogLevel::Debug),
        ("Warning", LogLevel::Warning),
    ];
    for &(text, want) in cases {
        assert_eq!(text.parse::<LogLevel>(), Ok(want), "{text}");
    }
    for text in [
        "",
        "foo",
        "debugging",
        "xdebug",
        " info",
        "info ",
        "=",
        "crit",
    ] {
        assert!(text.parse::<LogLevel>().is_err(), "{text}");
    }
}

#[test]
fn log_levels_map_to_tracing_filters_and_round_trip() {
    let cases = [
        (LogLevel::Critical, LevelFilter::ERROR),
        (LogLevel::Error, LevelFilter::ERROR),
        (LogLevel::Warning, LevelFilter::WARN),
        (LogLevel::Info, LevelFilter::INFO),
        (LogLevel::Debug, LevelFilter::DEBUG),
        (LogLevel::Trace, LevelFilter::TRACE),
    ];
    for (level, filter) in cases {
        assert_eq!(level.level_filter(), filter, "{level}");
    }
    for level in LogLevel::ALL {
        assert_eq!(level.to_string().parse::<LogLevel>(), Ok(level));
    }
    assert_eq!(LogLevel::default(), LogLevel::Info);
}

#[test]
fn server_addrs_parse() {
    let cases: Vec<(&str, ServerAddr)> = vec![
        ("vsock://-1:1024", ServerAddr::default()),
        ("vsock://-1:1024", ServerAddr::vsock_any(1024)),
        ("vsock://3:2048", ServerAddr::Vsock { cid: 3, port: 2048 }),
        ("vsock://8:2048", ServerAddr::Vsock { cid: 8, port: 2048 }),
        (
            "vsock://4294967295:1",
            ServerAddr::Vsock {
                cid: ServerAddr::VSOCK_CID_ANY,
                port: 1,
            },
        ),
        (
            "unix:///tmp/foo.socket",
            ServerAddr::Unix(PathBuf::from("/tmp/foo.socket")),
        ),
        (
            "unix://relative.sock",
            ServerAddr::Unix("relative.sock".into()),
        ),
        (
            "unix://@/tmp/foo.socket",
            ServerAddr::UnixAbstract("/tmp/foo.socket".into()),
        ),
        ("unix://@agent", ServerAddr::UnixAbstract("agent".into())),
    ];
    for (text, want) in cases {
        assert_eq!(text.parse::<ServerAddr>(), Ok(want), "{text}");
    }
}

fn error_kind(e: &ServerAddrError) -> &'static str {
    match e {
        ServerAddrError::Scheme(_) => "scheme",
        ServerAddrError::Vsock(_) => "vsock",
        ServerAddrError::Unix(_) => "unix",
    }
}

#[test]
fn bad_server_addrs_are_errors() {
    let long = format!("unix:///{}", "a".repeat(107));
    let long_abstract = format!("unix://@{}", "a".repeat(108));
    let cases: Vec<(&str, &str)> = vec![
        ("", "scheme"),
        ("foo", "scheme"),
        ("=", "scheme"),
        ("tcp://127.0.0.1:80", "scheme"),
        ("hvsock:///run/x.sock:1024", "scheme"),
        ("VSOCK://-1:1024", "scheme"),
        ("vsock://", "vsock"),
        ("vsock://1024", "vsock"),
        ("vsock://-1", "vsock"),
        ("vsock://-1:", "vsock"),
        ("vsock://:1024", "vsock"),
        ("vsock://-2:1024", "vsock"),
        ("vsock://x:1024", "vsock"),
        ("vsock://3:-1", "vsock"),
        ("vsock://+3:1024", "vsock"),
        ("vsock://3: 1024", "vsock"),
        ("vsock://3:4294967296", "vsock"),
        ("vsock://1:2:3", "vsock"),
        ("unix://", "unix"),
        ("unix://@", "unix"),
        ("unix:///a\0b", "unix"),
        (&long, "unix"),
        (&long_abstract, "unix"),
    ];
    for (text, want) in cases {
        match ServerAddr::from_str(text) {
            Err(e) => assert_eq!(error_kind(&e), want, "{text}: {e:?}"),
            Ok(a) => panic!("{text} parsed as {a:?}"),
        }
    }
    // The longest accepted names.
    assert!(
        format!("unix:///{}", "a".repeat(106))
            .parse::<ServerAddr>()
            .is_ok()
    );
    assert!(
        format!("unix://@{}", "a".repeat(107))
            .parse::<ServerAddr>()
            .is_ok()
    );
}

#[test]
fn server_addrs_display_round_trips() {
    let texts = [
        "vsock://-1:1024",
        "vsock://3:2048",
        "vsock://0:0",
        "unix:///tmp/foo.socket",
        "unix://relative.sock",
        "unix://@/tmp/foo.socket",
        "unix://@agent",
    ];
    for text in texts {
        let addr: ServerAddr = text.parse().unwrap();
        assert_eq!(addr.to_string(), text);
        assert_eq!(addr.to_string().parse::<ServerAddr>(), Ok(addr));
    }
    // Another spelling of CID_ANY displays as -1 and parses back to the same value.
    let any: ServerAddr = "vsock://4294967295:7".parse().unwrap();
    assert_eq!(any.to_string(), "vsock://-1:7");
    assert_eq!(any.to_string().parse::<ServerAddr>(), Ok(any));
}

#[test]
fn guest_components_names_round_trip() {
    let apis = [
        ("all", GuestComponentsRestApi::All),
        ("attestation", GuestComponentsRestApi::Attestation),
        ("resource", GuestComponentsRestApi::Resource),
    ];
    for (text, want) in apis {
        assert_eq!(text.parse(), Ok(want));
        assert_eq!(want.to_string(), text);
    }
    let procs = [
        ("none", GuestComponentsProcs::None),
        ("attestation-agent", GuestComponentsProcs::AttestationAgent),
        (
            "confidential-data-hub",
            GuestComponentsProcs::ConfidentialDataHub,
        ),
        ("api-server-rest", GuestComponentsProcs::ApiServerRest),
    ];
    for (text, want) in procs {
        assert_eq!(text.parse(), Ok(want));
        assert_eq!(want.to_string(), text);
    }
    for bad in ["", "x", "=", "All", "api_server_rest"] {
        assert!(bad.parse::<GuestComponentsRestApi>().is_err(), "{bad}");
        assert!(bad.parse::<GuestComponentsProcs>().is_err(), "{bad}");
    }
}

#[test]
fn defaults_match_kata() {
    let c = Config::default();
    assert!(!c.debug_console && !c.dev_mode && !c.tracing && !c.visible_cdi_devices);
    assert_eq!(c.log_level, LogLevel::Info);
    assert_eq!(c.server_addr.to_string(), "vsock://-1:1024");
    assert_eq!(c.hotplug_timeout.as_secs(), 3);
    assert_eq!(c.cdh_api_timeout.as_secs(), 50);
    assert_eq!(c.image_pull_timeout.as_secs(), 1200);
    assert_eq!(c.cdi_timeout.as_secs(), 100);
    assert_eq!(c.launch_process_timeout.as_secs(), 6);
    assert_eq!(
        (c.debug_console_vport, c.log_vport, c.passfd_listener_port),
        (None, None, None)
    );
    assert_eq!(c.container_pipe_size, None);
    assert!(!c.unified_cgroup_hierarchy && !c.cgroup_no_v1_all && !c.cgroup_v2());
    assert_eq!(
        (c.https_proxy.as_deref(), c.no_proxy.as_deref()),
        (None, None)
    );
    assert_eq!(
        c.guest_components_rest_api,
        GuestComponentsRestApi::Resource
    );
    assert_eq!(
        c.guest_components_procs,
        GuestComponentsProcs::ApiServerRest
    );
    assert!(c.secure_storage_integrity);
    assert_eq!(c.policy_file, None);
    assert_eq!(c.mem_agent, None);
}

#[test]
fn mem_agent_defaults_match_kata() {
    let m = super::super::MemAgentConfig::default();
    assert_eq!(
        (m.memcg.disabled, m.memcg.swap, m.memcg.swappiness_max),
        (false, false, 50)
    );
    assert_eq!(m.memcg.period_secs, 600);
    assert_eq!(m.memcg.period_psi_percent_limit, 1);
    assert_eq!(m.memcg.eviction_psi_percent_limit, 1);
    assert_eq!(m.memcg.eviction_run_aging_count_min, 3);
    assert!(!m.compact.disabled);
    assert_eq!(m.compact.period_secs, 600);
    assert_eq!(m.compact.period_psi_percent_limit, 1);
    assert_eq!(m.compact.compact_psi_percent_limit, 5);
    assert_eq!(m.compact.compact_sec_max, 300);
    assert_eq!(m.compact.compact_order, 9);
    assert_eq!(m.compact.compact_threshold, 1024);
    assert_eq!(m.compact.compact_force_times, i64::MAX as u64);
}
