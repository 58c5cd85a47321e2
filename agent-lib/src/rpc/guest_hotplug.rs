//! OnlineCPUMem and MemHotplugByProbe: decode, call [`crate::device`], encode.

use agent_protos::agent;
use agent_protos::empty::Empty;

use super::error::device_error;
use crate::Agent;
use crate::device::{self, CpusetTarget};

/// OnlineCPUMem. `wait` is ignored, as Kata's agent does.
pub(crate) async fn online_cpu_mem(
    agent: &Agent,
    req: agent::OnlineCPUMemRequest,
) -> ttrpc::Result<Empty> {
    let host = agent.host();
    // The containers whose cpusets follow the online CPUs. None until the container registry
    // exists; then one `CpusetTarget` per container (cgroup path, `linux.resources.cpu.cpus`).
    let containers: Vec<CpusetTarget> = Vec::new();
    device::online_cpu_mem(
        &*host.sysfs,
        &*host.cgroups,
        req.nb_cpus,
        req.cpu_only,
        &containers,
    )
    .await
    .map_err(|e| device_error(&e))?;
    Ok(Empty::new())
}

/// MemHotplugByProbe.
pub(crate) async fn mem_hotplug_by_probe(
    agent: &Agent,
    req: agent::MemHotplugByProbeRequest,
) -> ttrpc::Result<Empty> {
    device::mem_hotplug_by_probe(&*agent.host().sysfs, &req.memHotplugProbeAddr)
        .map_err(|e| device_error(&e))?;
    Ok(Empty::new())
}
