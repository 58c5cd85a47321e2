//! The OCI spec on the wire (`grpc.Spec`, Kata's oci.proto) to `oci_spec::runtime::Spec`.
//!
//! proto3 cannot tell an unset scalar from its zero value, so, as Kata's `trans.rs`, zero
//! numbers and empty strings and lists mean "not set". Unlike Kata, a value that does not parse
//! (an unknown namespace type, capability, rlimit, seccomp action...) is an error naming the
//! field rather than a panic or a silent default, and a few Kata slips are not copied: poststop
//! hooks are the poststop ones, `Pids` is converted when present, and negative memory and CPU
//! quota values (`-1`, unlimited) are kept.

use std::collections::HashSet;
use std::path::PathBuf;

use agent_protos::oci as pb;
use oci_spec::runtime::{
    BoxBuilder, Capability, Hook, Hooks, Linux, LinuxBlockIo, LinuxCapabilities, LinuxCpu,
    LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxHugepageLimit, LinuxIdMapping,
    LinuxIdMappingBuilder, LinuxIntelRdt, LinuxInterfacePriority, LinuxMemory, LinuxNamespace,
    LinuxNamespaceType, LinuxNetwork, LinuxPids, LinuxResources, LinuxSeccomp,
    LinuxSeccompArgBuilder, LinuxSyscall, LinuxThrottleDevice, LinuxThrottleDeviceBuilder,
    LinuxWeightDeviceBuilder, Mount, PosixRlimit, PosixRlimitBuilder, Process, Root, Spec, User,
};
use serde::de::DeserializeOwned;

/// A spec value that cannot be converted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid OCI spec field {field}: {reason}")]
pub struct OciError {
    /// Where (`Linux.Namespaces[2].Type`).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

type Result<T> = std::result::Result<T, OciError>;

fn error(field: impl Into<String>, reason: impl Into<String>) -> OciError {
    OciError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Parses a string as the serde name of an oci-spec enum (`SCMP_ACT_ERRNO`, `RLIMIT_NOFILE`).
fn named<T: DeserializeOwned>(field: &str, value: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map_err(|_| error(field, format!("unknown value {value:?}")))
}

/// A builder's result (the builders here have defaults for every field, so they do not fail).
fn built<T>(field: &str, result: std::result::Result<T, oci_spec::OciSpecError>) -> Result<T> {
    result.map_err(|e| error(field, e.to_string()))
}

fn some_if<T>(cond: bool, value: T) -> Option<T> {
    cond.then_some(value)
}

fn non_empty(s: &str) -> Option<String> {
    some_if(!s.is_empty(), s.to_owned())
}

fn non_empty_vec<T: Clone>(v: &[T]) -> Option<Vec<T>> {
    some_if(!v.is_empty(), v.to_vec())
}

fn list<F, T>(items: &[F], field: &str, f: impl Fn(&F, &str) -> Result<T>) -> Result<Vec<T>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| f(item, &format!("{field}[{i}]")))
        .collect()
}

fn opt_list<F, T>(
    items: &[F],
    field: &str,
    f: impl Fn(&F, &str) -> Result<T>,
) -> Result<Option<Vec<T>>> {
    Ok(some_if(!items.is_empty(), list(items, field, f)?))
}

/// Converts a wire spec.
pub fn spec_from_proto(from: &pb::Spec) -> Result<Spec> {
    let mut spec = Spec::default();
    spec.set_version(from.Version.clone());
    spec.set_root(from.Root.as_ref().map(root));
    spec.set_mounts(opt_list(&from.Mounts, "Mounts", |m, _| Ok(mount(m)))?);
    spec.set_process(
        from.Process
            .as_ref()
            .map(|p| process_from_proto(p, "Process"))
            .transpose()?,
    );
    spec.set_hostname(non_empty(&from.Hostname));
    spec.set_hooks(from.Hooks.as_ref().map(hooks));
    spec.set_annotations(some_if(
        !from.Annotations.is_empty(),
        from.Annotations.clone(),
    ));
    spec.set_linux(from.Linux.as_ref().map(linux).transpose()?);
    Ok(spec)
}

fn root(from: &pb::Root) -> Root {
    let mut root = Root::default();
    root.set_path(PathBuf::from(&from.Path));
    root.set_readonly(Some(from.Readonly));
    root
}

fn mount(from: &pb::Mount) -> Mount {
    let mut mount = Mount::default();
    mount.set_destination(PathBuf::from(&from.destination));
    mount.set_typ(non_empty(&from.type_));
    mount.set_source(non_empty(&from.source).map(PathBuf::from));
    mount.set_options(non_empty_vec(&from.options));
    mount
}

fn hook(from: &pb::Hook) -> Hook {
    let mut hook = Hook::default();
    hook.set_path(PathBuf::from(&from.Path));
    hook.set_args(non_empty_vec(&from.Args));
    hook.set_env(non_empty_vec(&from.Env));
    hook.set_timeout(some_if(from.Timeout > 0, from.Timeout));
    hook
}

fn hooks(from: &pb::Hooks) -> Hooks {
    let kind = |hooks: &[pb::Hook]| some_if(!hooks.is_empty(), hooks.iter().map(hook).collect());
    let mut out = Hooks::default();
    out.set_prestart(kind(&from.Prestart));
    out.set_create_runtime(kind(&from.CreateRuntime));
    out.set_create_container(kind(&from.CreateContainer));
    out.set_start_container(kind(&from.StartContainer));
    out.set_poststart(kind(&from.Poststart));
    out.set_poststop(kind(&from.Poststop));
    out
}

/// Converts a wire process (CreateContainer's `OCI.Process`, ExecProcess's `process`).
/// `field` names it in errors.
pub fn process_from_proto(from: &pb::Process, field: &str) -> Result<Process> {
    let mut process = Process::default();
    process.set_terminal(Some(from.Terminal));
    process.set_console_size(
        from.ConsoleSize
            .as_ref()
            .map(|b| {
                built(
                    &format!("{field}.ConsoleSize"),
                    BoxBuilder::default()
                        .height(u64::from(b.Height))
                        .width(u64::from(b.Width))
                        .build(),
                )
            })
            .transpose()?,
    );
    let mut user = User::default();
    if let Some(u) = from.User.as_ref() {
        user.set_uid(u.UID);
        user.set_gid(u.GID);
        user.set_additional_gids(non_empty_vec(&u.AdditionalGids));
        user.set_username(non_empty(&u.Username));
    }
    process.set_user(user);
    process.set_args(non_empty_vec(&from.Args));
    process.set_env(non_empty_vec(&from.Env));
    process.set_cwd(PathBuf::from(&from.Cwd));
    process.set_capabilities(
        from.Capabilities
            .as_ref()
            .map(|c| capabilities(c, &format!("{field}.Capabilities")))
            .transpose()?,
    );
    process.set_rlimits(opt_list(
        &from.Rlimits,
        &format!("{field}.Rlimits"),
        rlimit,
    )?);
    process.set_no_new_privileges(Some(from.NoNewPrivileges));
    process.set_apparmor_profile(non_empty(&from.ApparmorProfile));
    let oom = i32::try_from(from.OOMScoreAdj)
        .map_err(|_| error(format!("{field}.OOMScoreAdj"), "out of range"))?;
    process.set_oom_score_adj(some_if(oom != 0, oom));
    process.set_selinux_label(non_empty(&from.SelinuxLabel));
    Ok(process)
}

fn capability_set(names: &[String], field: &str) -> Result<HashSet<Capability>> {
    names
        .iter()
        .map(|name| {
            // Some runtimes send the names JSON-quoted.
            let bare = name.trim_matches('"');
            named::<Capability>(field, bare)
        })
        .collect()
}

fn capabilities(from: &pb::LinuxCapabilities, field: &str) -> Result<LinuxCapabilities> {
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(capability_set(
        &from.Bounding,
        &format!("{field}.Bounding"),
    )?));
    caps.set_effective(Some(capability_set(
        &from.Effective,
        &format!("{field}.Effective"),
    )?));
    caps.set_inheritable(Some(capability_set(
        &from.Inheritable,
        &format!("{field}.Inheritable"),
    )?));
    caps.set_permitted(Some(capability_set(
        &from.Permitted,
        &format!("{field}.Permitted"),
    )?));
    caps.set_ambient(Some(capability_set(
        &from.Ambient,
        &format!("{field}.Ambient"),
    )?));
    Ok(caps)
}

fn rlimit(from: &pb::POSIXRlimit, field: &str) -> Result<PosixRlimit> {
    let typ: oci_spec::runtime::PosixRlimitType = named(&format!("{field}.Type"), &from.Type)?;
    built(
        field,
        PosixRlimitBuilder::default()
            .typ(typ)
            .hard(from.Hard)
            .soft(from.Soft)
            .build(),
    )
}

fn linux(from: &pb::Linux) -> Result<Linux> {
    let mut linux = Linux::default();
    let mapping = |m: &pb::LinuxIDMapping, f: &str| -> Result<LinuxIdMapping> {
        built(
            f,
            LinuxIdMappingBuilder::default()
                .host_id(m.HostID)
                .container_id(m.ContainerID)
                .size(m.Size)
                .build(),
        )
    };
    linux.set_uid_mappings(opt_list(&from.UIDMappings, "Linux.UIDMappings", mapping)?);
    linux.set_gid_mappings(opt_list(&from.GIDMappings, "Linux.GIDMappings", mapping)?);
    linux.set_sysctl(some_if(!from.Sysctl.is_empty(), from.Sysctl.clone()));
    linux.set_resources(
        from.Resources
            .as_ref()
            .map(|r| resources_from_proto(r, "Linux.Resources"))
            .transpose()?,
    );
    linux.set_cgroups_path(non_empty(&from.CgroupsPath).map(PathBuf::from));
    linux.set_namespaces(opt_list(&from.Namespaces, "Linux.Namespaces", namespace)?);
    linux.set_devices(opt_list(&from.Devices, "Linux.Devices", device)?);
    linux.set_seccomp(
        from.Seccomp
            .as_ref()
            .map(|s| seccomp(s, "Linux.Seccomp"))
            .transpose()?,
    );
    linux.set_rootfs_propagation(non_empty(&from.RootfsPropagation));
    linux.set_masked_paths(non_empty_vec(&from.MaskedPaths));
    linux.set_readonly_paths(non_empty_vec(&from.ReadonlyPaths));
    linux.set_mount_label(non_empty(&from.MountLabel));
    linux.set_intel_rdt(from.IntelRdt.as_ref().map(|r| {
        let mut rdt = LinuxIntelRdt::default();
        rdt.set_l3_cache_schema(non_empty(&r.L3CacheSchema));
        rdt
    }));
    Ok(linux)
}

fn namespace(from: &pb::LinuxNamespace, field: &str) -> Result<LinuxNamespace> {
    let typ = LinuxNamespaceType::try_from(from.Type.as_str()).map_err(|_| {
        error(
            format!("{field}.Type"),
            format!("unknown namespace type {:?}", from.Type),
        )
    })?;
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns.set_path(non_empty(&from.Path).map(PathBuf::from));
    Ok(ns)
}

fn device_type(value: &str, field: &str) -> Result<LinuxDeviceType> {
    value
        .parse()
        .map_err(|_| error(field, format!("unknown device type {value:?}")))
}

fn device(from: &pb::LinuxDevice, field: &str) -> Result<LinuxDevice> {
    let mut device = LinuxDevice::default();
    device.set_path(PathBuf::from(&from.Path));
    device.set_typ(device_type(&from.Type, &format!("{field}.Type"))?);
    device.set_major(from.Major);
    device.set_minor(from.Minor);
    device.set_file_mode(some_if(from.FileMode != 0, from.FileMode));
    device.set_uid(Some(from.UID));
    device.set_gid(Some(from.GID));
    Ok(device)
}

/// Converts wire resources (the spec's, or UpdateContainer's). `field` names them in errors.
pub fn resources_from_proto(from: &pb::LinuxResources, field: &str) -> Result<LinuxResources> {
    let mut res = LinuxResources::default();
    res.set_devices(opt_list(
        &from.Devices,
        &format!("{field}.Devices"),
        device_cgroup,
    )?);
    res.set_memory(from.Memory.as_ref().map(memory));
    res.set_cpu(from.CPU.as_ref().map(cpu));
    res.set_pids(from.Pids.as_ref().map(|p| {
        let mut pids = LinuxPids::default();
        pids.set_limit(p.Limit);
        pids
    }));
    res.set_block_io(
        from.BlockIO
            .as_ref()
            .map(|b| block_io(b, &format!("{field}.BlockIO")))
            .transpose()?,
    );
    res.set_hugepage_limits(opt_list(
        &from.HugepageLimits,
        &format!("{field}.HugepageLimits"),
        |h, f| {
            let mut limit = LinuxHugepageLimit::default();
            limit.set_page_size(h.Pagesize.clone());
            limit.set_limit(
                i64::try_from(h.Limit).map_err(|_| error(format!("{f}.Limit"), "out of range"))?,
            );
            Ok(limit)
        },
    )?);
    res.set_network(from.Network.as_ref().map(|n| {
        let mut net = LinuxNetwork::default();
        net.set_class_id(some_if(n.ClassID != 0, n.ClassID));
        net.set_priorities(some_if(
            !n.Priorities.is_empty(),
            n.Priorities
                .iter()
                .map(|p| {
                    let mut prio = LinuxInterfacePriority::default();
                    prio.set_name(p.Name.clone());
                    prio.set_priority(p.Priority);
                    prio
                })
                .collect(),
        ));
        net
    }));
    Ok(res)
}

fn device_cgroup(from: &pb::LinuxDeviceCgroup, field: &str) -> Result<LinuxDeviceCgroup> {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(from.Allow);
    rule.set_typ(match from.Type.as_str() {
        "" => None,
        t => Some(device_type(t, &format!("{field}.Type"))?),
    });
    // -1 is the wildcard on the wire; unset here means the same.
    rule.set_major(some_if(from.Major > 0, from.Major));
    rule.set_minor(some_if(from.Minor > 0, from.Minor));
    rule.set_access(non_empty(&from.Access));
    Ok(rule)
}

fn memory(from: &pb::LinuxMemory) -> LinuxMemory {
    let mut mem = LinuxMemory::default();
    mem.set_limit(some_if(from.Limit != 0, from.Limit));
    mem.set_reservation(some_if(from.Reservation != 0, from.Reservation));
    mem.set_swap(some_if(from.Swap != 0, from.Swap));
    mem.set_kernel(some_if(from.Kernel != 0, from.Kernel));
    mem.set_kernel_tcp(some_if(from.KernelTCP != 0, from.KernelTCP));
    mem.set_swappiness(some_if(from.Swappiness != 0, from.Swappiness));
    mem.set_disable_oom_killer(Some(from.DisableOOMKiller));
    mem
}

fn cpu(from: &pb::LinuxCPU) -> LinuxCpu {
    let mut cpu = LinuxCpu::default();
    cpu.set_shares(some_if(from.Shares != 0, from.Shares));
    cpu.set_quota(some_if(from.Quota != 0, from.Quota));
    cpu.set_period(some_if(from.Period != 0, from.Period));
    cpu.set_realtime_runtime(some_if(from.RealtimeRuntime != 0, from.RealtimeRuntime));
    cpu.set_realtime_period(some_if(from.RealtimePeriod != 0, from.RealtimePeriod));
    cpu.set_cpus(non_empty(&from.Cpus));
    cpu.set_mems(non_empty(&from.Mems));
    cpu
}

fn weight(value: u32, field: &str) -> Result<Option<u16>> {
    match value {
        0 => Ok(None),
        v => u16::try_from(v)
            .map(Some)
            .map_err(|_| error(field, format!("{v} is out of range"))),
    }
}

fn block_io(from: &pb::LinuxBlockIO, field: &str) -> Result<LinuxBlockIo> {
    let mut blkio = LinuxBlockIo::default();
    blkio.set_weight(weight(from.Weight, &format!("{field}.Weight"))?);
    blkio.set_leaf_weight(weight(from.LeafWeight, &format!("{field}.LeafWeight"))?);
    blkio.set_weight_device(opt_list(
        &from.WeightDevice,
        &format!("{field}.WeightDevice"),
        |d, f| {
            let mut dev = LinuxWeightDeviceBuilder::default()
                .major(d.Major)
                .minor(d.Minor);
            if let Some(w) = weight(d.Weight, &format!("{f}.Weight"))? {
                dev = dev.weight(w);
            }
            if let Some(w) = weight(d.LeafWeight, &format!("{f}.LeafWeight"))? {
                dev = dev.leaf_weight(w);
            }
            built(f, dev.build())
        },
    )?);
    let throttle = |devices: &[pb::LinuxThrottleDevice], name: &str| {
        opt_list(
            devices,
            &format!("{field}.{name}"),
            |d, f| -> Result<LinuxThrottleDevice> {
                built(
                    f,
                    LinuxThrottleDeviceBuilder::default()
                        .major(d.Major)
                        .minor(d.Minor)
                        .rate(d.Rate)
                        .build(),
                )
            },
        )
    };
    blkio.set_throttle_read_bps_device(throttle(
        &from.ThrottleReadBpsDevice,
        "ThrottleReadBpsDevice",
    )?);
    blkio.set_throttle_write_bps_device(throttle(
        &from.ThrottleWriteBpsDevice,
        "ThrottleWriteBpsDevice",
    )?);
    blkio.set_throttle_read_iops_device(throttle(
        &from.ThrottleReadIOPSDevice,
        "ThrottleReadIOPSDevice",
    )?);
    blkio.set_throttle_write_iops_device(throttle(
        &from.ThrottleWriteIOPSDevice,
        "ThrottleWriteIOPSDevice",
    )?);
    Ok(blkio)
}

fn seccomp(from: &pb::LinuxSeccomp, field: &str) -> Result<LinuxSeccomp> {
    let mut out = LinuxSeccomp::default();
    out.set_default_action(named(
        &format!("{field}.DefaultAction"),
        &from.DefaultAction,
    )?);
    out.set_architectures(opt_list(
        &from.Architectures,
        &format!("{field}.Architectures"),
        |a, f| named(f, a),
    )?);
    out.set_flags(opt_list(&from.Flags, &format!("{field}.Flags"), |a, f| {
        named(f, a)
    })?);
    out.set_syscalls(opt_list(
        &from.Syscalls,
        &format!("{field}.Syscalls"),
        syscall,
    )?);
    Ok(out)
}

fn syscall(from: &pb::LinuxSyscall, field: &str) -> Result<LinuxSyscall> {
    let mut out = LinuxSyscall::default();
    out.set_names(from.Names.clone());
    out.set_action(named(&format!("{field}.Action"), &from.Action)?);
    // The oneof has one variant; the generated enum is non-exhaustive.
    #[allow(unreachable_patterns)]
    out.set_errno_ret(from.ErrnoRet.as_ref().and_then(|e| match e {
        pb::linux_syscall::ErrnoRet::Errnoret(n) => Some(*n),
        _ => None,
    }));
    out.set_args(opt_list(&from.Args, &format!("{field}.Args"), |a, f| {
        let index =
            usize::try_from(a.Index).map_err(|_| error(format!("{f}.Index"), "out of range"))?;
        let op: oci_spec::runtime::LinuxSeccompOperator = named(&format!("{f}.Op"), &a.Op)?;
        let mut arg = LinuxSeccompArgBuilder::default()
            .index(index)
            .value(a.Value)
            .op(op);
        if a.ValueTwo != 0 {
            arg = arg.value_two(a.ValueTwo);
        }
        built(f, arg.build())
    })?);
    Ok(out)
}

#[cfg(test)]
#[path = "oci_tests.rs"]
mod tests;
