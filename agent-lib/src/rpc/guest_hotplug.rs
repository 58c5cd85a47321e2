//! OnlineCPUMem and MemHotplugByProbe: decode, call [`crate::device`], encode.

use agent_protos::agent;
use agent_protos::empty::Empty;

use crate::Agent;
use crate::device::{self, CpusetTarget};

/// OnlineCPUMem. `wait` is ignored, as Kata's agent does.
pub(crate) async fn online_cpu_mem(
    agent: &Agent,
    req: agent::OnlineCPUMemRequest,
) -> ttrpc::Result<Empty> {
    let host = agent.host();
    let containers = cpuset_targets(agent);
    device::online_cpu_mem(
        &*host.sysfs,
        &*host.cgroups,
        req.nb_cpus,
        req.cpu_only,
        &containers,
    )
    .await?;
    Ok(Empty::new())
}

/// The containers whose cpusets follow the online CPUs: each one's cgroup and the CPUs its
/// spec asks for (`linux.resources.cpu.cpus`). A container removed meanwhile is skipped.
fn cpuset_targets(agent: &Agent) -> Vec<CpusetTarget> {
    let containers = agent.containers();
    containers
        .ids()
        .iter()
        .filter_map(|cid| containers.get(cid).ok())
        .map(|container| CpusetTarget {
            cgroup_path: container.cgroup().to_owned(),
            cpus: container
                .setup()
                .spec
                .linux()
                .as_ref()
                .and_then(|linux| linux.resources().as_ref())
                .and_then(|resources| resources.cpu().as_ref())
                .and_then(|cpu| cpu.cpus().clone()),
        })
        .collect()
}

/// MemHotplugByProbe.
pub(crate) async fn mem_hotplug_by_probe(
    agent: &Agent,
    req: agent::MemHotplugByProbeRequest,
) -> ttrpc::Result<Empty> {
    device::mem_hotplug_by_probe(&*agent.host().sysfs, &req.memHotplugProbeAddr)?;
    Ok(Empty::new())
}
