//! The guest-service RPCs: decode, call [`crate::guest`], encode.

use agent_protos::agent;
use agent_protos::empty::Empty;
use protobuf::MessageField;

use super::error::status;
use super::health::AGENT_VERSION;
use crate::Agent;
use crate::device::DEVICE_HANDLERS;
use crate::guest::mem_agent::{CompactUpdate, MemcgUpdate};
use crate::guest::{self, CopyFileRequest, DetailsRequest, EXTRA_FEATURES, LogType};

/// GetGuestDetails. The device handlers listed are the types CreateContainer handles (Kata
/// always sends an empty list); the storage handlers are the driver registry's names.
pub(crate) fn get_guest_details(
    agent: &Agent,
    req: agent::GuestDetailsRequest,
) -> ttrpc::Result<agent::GuestDetailsResponse> {
    let host = agent.host();
    let (block_size, probe) = guest::memory_details(
        &*host.sysfs,
        DetailsRequest {
            mem_block_size: req.mem_block_size,
            mem_hotplug_probe: req.mem_hotplug_probe,
        },
    )?;
    let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
    let details = agent::AgentDetails {
        version: AGENT_VERSION.to_owned(),
        init_daemon: guest::is_init_daemon(&*host.system),
        device_handlers: strings(&DEVICE_HANDLERS),
        storage_handlers: strings(&agent.storages().registry().names()),
        supports_seccomp: true,
        extra_features: strings(&EXTRA_FEATURES),
        ..Default::default()
    };
    Ok(agent::GuestDetailsResponse {
        mem_block_size_bytes: block_size,
        support_mem_hotplug_probe: probe,
        agent_details: MessageField::some(details),
        ..Default::default()
    })
}

/// SetGuestDateTime.
pub(crate) fn set_guest_date_time(
    agent: &Agent,
    req: agent::SetGuestDateTimeRequest,
) -> ttrpc::Result<Empty> {
    guest::set_date_time(&*agent.host().system, req.Sec, req.Usec)?;
    Ok(Empty::new())
}

/// ReseedRandomDev.
pub(crate) fn reseed_random_dev(
    agent: &Agent,
    req: agent::ReseedRandomDevRequest,
) -> ttrpc::Result<Empty> {
    guest::reseed(&*agent.host().system, &req.data)?;
    Ok(Empty::new())
}

/// CopyFile.
pub(crate) fn copy_file(agent: &Agent, req: agent::CopyFileRequest) -> ttrpc::Result<Empty> {
    let request = CopyFileRequest {
        path: req.path,
        file_size: req.file_size,
        file_mode: req.file_mode,
        dir_mode: req.dir_mode,
        uid: req.uid,
        gid: req.gid,
        offset: req.offset,
        data: req.data,
    };
    let outcome = guest::copy_file(&*agent.host().files, &request)?;
    tracing::debug!(path = %request.path, offset = request.offset, ?outcome, "CopyFile");
    Ok(Empty::new())
}

/// GetDiagnosticData: `termination_log` only; an unknown container is `NOT_FOUND`.
pub(crate) fn get_diagnostic_data(
    agent: &Agent,
    req: agent::GetDiagnosticDataRequest,
) -> ttrpc::Result<agent::GetDiagnosticDataResponse> {
    match LogType::parse(&req.log_type)? {
        LogType::TerminationLog => {}
    }
    let container = agent.containers().get(&req.container_id)?;
    let data = guest::termination_log(
        &*agent.host().files,
        &req.container_id,
        &container.setup().spec,
    )?;
    Ok(agent::GetDiagnosticDataResponse {
        data,
        ..Default::default()
    })
}

/// GetMetrics.
pub(crate) fn get_metrics(agent: &Agent) -> ttrpc::Result<agent::Metrics> {
    let metrics = agent.guest().metrics().scrape(agent.host())?;
    Ok(agent::Metrics {
        metrics,
        ..Default::default()
    })
}

/// SetPolicy, answered as a Kata agent built without the `agent-policy` feature answers it:
/// that build does not implement the method, so ttrpc's generated default replies
/// `NOT_FOUND "/grpc.AgentService/SetPolicy is not supported"`. The runtime only calls it
/// when a policy is configured, and then fails the sandbox as it would with such a Kata.
pub(crate) fn set_policy() -> ttrpc::Error {
    status(
        ttrpc::Code::NOT_FOUND,
        "/grpc.AgentService/SetPolicy is not supported",
    )
}

/// MemAgentMemcgSet: `INTERNAL "mem-agent is disabled"` unless enabled at boot, as Kata.
pub(crate) fn mem_agent_memcg_set(
    agent: &Agent,
    req: agent::MemAgentMemcgConfig,
) -> ttrpc::Result<Empty> {
    let update = MemcgUpdate {
        disabled: req.disabled,
        swap: req.swap,
        swappiness_max: req.swappiness_max,
        period_secs: req.period_secs,
        period_psi_percent_limit: req.period_psi_percent_limit,
        eviction_psi_percent_limit: req.eviction_psi_percent_limit,
        eviction_run_aging_count_min: req.eviction_run_aging_count_min,
    };
    agent
        .guest()
        .mem_agent()
        .and_then(|m| m.set_memcg(&update))?;
    Ok(Empty::new())
}

/// MemAgentCompactSet: `INTERNAL "mem-agent is disabled"` unless enabled at boot, as Kata.
pub(crate) fn mem_agent_compact_set(
    agent: &Agent,
    req: agent::MemAgentCompactConfig,
) -> ttrpc::Result<Empty> {
    let update = CompactUpdate {
        disabled: req.disabled,
        period_secs: req.period_secs,
        period_psi_percent_limit: req.period_psi_percent_limit,
        compact_psi_percent_limit: req.compact_psi_percent_limit,
        compact_sec_max: req.compact_sec_max,
        compact_order: req.compact_order,
        compact_threshold: req.compact_threshold,
        compact_force_times: req.compact_force_times,
    };
    agent
        .guest()
        .mem_agent()
        .and_then(|m| m.set_compact(&update))?;
    Ok(Empty::new())
}
