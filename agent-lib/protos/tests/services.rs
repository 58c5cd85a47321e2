//! The service surface: names, method sets and the dynamic lookup helpers.

use agent_protos::{
    AGENT_SERVICE, HEALTH_SERVICE, agent, find_method, health, method_names, methods,
};

/// The 42 RPCs of `grpc.AgentService` in Kata Containers 4.1, in its proto order.
const KATA_AGENT_RPCS: [&str; 42] = [
    "CreateContainer",
    "StartContainer",
    "RemoveContainer",
    "ExecProcess",
    "SignalProcess",
    "WaitProcess",
    "UpdateContainer",
    "UpdateEphemeralMounts",
    "StatsContainer",
    "PauseContainer",
    "ResumeContainer",
    "RemoveStaleVirtiofsShareMounts",
    "GetDiagnosticData",
    "WriteStdin",
    "ReadStdout",
    "ReadStderr",
    "CloseStdin",
    "TtyWinResize",
    "UpdateInterface",
    "UpdateRoutes",
    "ListInterfaces",
    "ListRoutes",
    "AddARPNeighbors",
    "GetIPTables",
    "SetIPTables",
    "GetMetrics",
    "MemAgentMemcgSet",
    "MemAgentCompactSet",
    "CreateSandbox",
    "DestroySandbox",
    "OnlineCPUMem",
    "ReseedRandomDev",
    "GetGuestDetails",
    "MemHotplugByProbe",
    "SetGuestDateTime",
    "CopyFile",
    "GetOOMEvent",
    "AddSwap",
    "AddSwapPath",
    "GetVolumeStats",
    "ResizeVolume",
    "SetPolicy",
];

fn service_method_names(service: &str) -> Vec<&'static str> {
    method_names()
        .filter(|(s, _)| *s == service)
        .map(|(_, m)| m)
        .collect()
}

#[test]
fn agent_service_descriptor_has_the_42_kata_rpcs_in_order() {
    let file = agent::file_descriptor();
    assert_eq!(file.package(), "grpc");
    let services: Vec<_> = file.services().collect();
    assert_eq!(services.len(), 1);
    assert_eq!(services[0].proto().name(), "AgentService");
    let names: Vec<String> = services[0]
        .methods()
        .map(|m| m.proto().name().to_owned())
        .collect();
    assert_eq!(names.len(), 42);
    assert_eq!(names, KATA_AGENT_RPCS);
}

#[test]
fn health_service_has_check_and_version() {
    let file = health::file_descriptor();
    assert_eq!(file.package(), "grpc");
    let services: Vec<_> = file.services().collect();
    assert_eq!(services.len(), 1);
    assert_eq!(services[0].proto().name(), "Health");
    let names: Vec<_> = services[0]
        .methods()
        .map(|m| m.proto().name().to_owned())
        .collect();
    assert_eq!(names, ["Check", "Version"]);
}

#[test]
fn method_names_cover_both_services_and_nothing_else() {
    assert_eq!(service_method_names(HEALTH_SERVICE), ["Check", "Version"]);
    assert_eq!(service_method_names(AGENT_SERVICE), KATA_AGENT_RPCS);
    assert_eq!(method_names().count(), 44);
    assert_eq!(methods().len(), 44);
    let first: Vec<_> = method_names().take(2).collect();
    assert_eq!(
        first,
        [(HEALTH_SERVICE, "Check"), (HEALTH_SERVICE, "Version")]
    );
}

#[test]
fn method_names_are_unique_across_services() {
    let mut names: Vec<_> = method_names().map(|(_, m)| m).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before);
}

#[test]
fn service_constants_match_the_descriptors() {
    let services: Vec<_> = [health::file_descriptor(), agent::file_descriptor()]
        .into_iter()
        .flat_map(|f| {
            f.services()
                .map(|s| format!("{}.{}", f.package(), s.proto().name()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(services, [HEALTH_SERVICE, AGENT_SERVICE]);
}

/// (method, service, request type, response type)
const LOOKUPS: &[(&str, &str, &str, &str)] = &[
    (
        "Check",
        HEALTH_SERVICE,
        "grpc.CheckRequest",
        "grpc.HealthCheckResponse",
    ),
    (
        "Version",
        HEALTH_SERVICE,
        "grpc.CheckRequest",
        "grpc.VersionCheckResponse",
    ),
    (
        "CreateContainer",
        AGENT_SERVICE,
        "grpc.CreateContainerRequest",
        "google.protobuf.Empty",
    ),
    (
        "ExecProcess",
        AGENT_SERVICE,
        "grpc.ExecProcessRequest",
        "google.protobuf.Empty",
    ),
    (
        "WaitProcess",
        AGENT_SERVICE,
        "grpc.WaitProcessRequest",
        "grpc.WaitProcessResponse",
    ),
    (
        "ReadStderr",
        AGENT_SERVICE,
        "grpc.ReadStreamRequest",
        "grpc.ReadStreamResponse",
    ),
    (
        "UpdateInterface",
        AGENT_SERVICE,
        "grpc.UpdateInterfaceRequest",
        "types.Interface",
    ),
    (
        "ListRoutes",
        AGENT_SERVICE,
        "grpc.ListRoutesRequest",
        "grpc.Routes",
    ),
    (
        "GetGuestDetails",
        AGENT_SERVICE,
        "grpc.GuestDetailsRequest",
        "grpc.GuestDetailsResponse",
    ),
    (
        "GetVolumeStats",
        AGENT_SERVICE,
        "grpc.VolumeStatsRequest",
        "grpc.VolumeStatsResponse",
    ),
    (
        "MemAgentMemcgSet",
        AGENT_SERVICE,
        "grpc.MemAgentMemcgConfig",
        "google.protobuf.Empty",
    ),
    (
        "SetPolicy",
        AGENT_SERVICE,
        "grpc.SetPolicyRequest",
        "google.protobuf.Empty",
    ),
];

#[test]
fn find_method_gives_service_and_message_types() {
    for &(name, service, request, response) in LOOKUPS {
        let m = find_method(name).unwrap_or_else(|| panic!("{name} not found"));
        assert_eq!(m.name, name);
        assert_eq!(m.service, service, "{name}");
        assert_eq!(m.request.full_name(), request, "{name}");
        assert_eq!(m.response.full_name(), response, "{name}");
    }
}

#[test]
fn find_method_descriptors_are_the_generated_types() {
    use agent_protos::protobuf::MessageFull;
    let m = find_method("CreateContainer").unwrap();
    assert_eq!(m.request, agent::CreateContainerRequest::descriptor());
    assert_eq!(m.response, agent_protos::empty::Empty::descriptor());
    let m = find_method("Check").unwrap();
    assert_eq!(m.response, health::HealthCheckResponse::descriptor());
}

#[test]
fn unknown_or_misspelled_methods_are_none() {
    for name in [
        "",
        "NoSuchMethod",
        "createContainer",
        "CREATECONTAINER",
        "grpc.Health/Check",
        "ListProcesses",
        "StartTracing",
    ] {
        assert!(find_method(name).is_none(), "{name:?}");
    }
}
