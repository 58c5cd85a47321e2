//! Table tests of the wire-spec conversion.

use agent_protos::oci as pb;
use oci_spec::runtime::{
    Arch, Capability, LinuxDeviceType, LinuxNamespaceType, LinuxSeccompAction,
    LinuxSeccompOperator, PosixRlimitType,
};
use protobuf::MessageField;

use super::*;

fn full_spec() -> pb::Spec {
    let mut spec = pb::Spec::new();
    spec.Version = "1.1.0".into();
    spec.Hostname = "pod".into();
    spec.Annotations
        .insert("io.kubernetes.cri.container-type".into(), "sandbox".into());
    let mut root = pb::Root::new();
    root.Path = "/run/kata-containers/shared/containers/c1/rootfs".into();
    root.Readonly = true;
    spec.Root = MessageField::some(root);
    let mut m = pb::Mount::new();
    m.destination = "/proc".into();
    m.type_ = "proc".into();
    m.source = "proc".into();
    m.options = vec!["nosuid".into()];
    spec.Mounts.push(m);

    let mut p = pb::Process::new();
    p.Terminal = true;
    let mut size = pb::Box::new();
    size.Height = 24;
    size.Width = 80;
    p.ConsoleSize = MessageField::some(size);
    let mut user = pb::User::new();
    user.UID = 1000;
    user.GID = 100;
    user.AdditionalGids = vec![10, 20];
    user.Username = "app".into();
    p.User = MessageField::some(user);
    p.Args = vec!["sh".into(), "-c".into(), "true".into()];
    p.Env = vec!["PATH=/bin".into()];
    p.Cwd = "/work".into();
    let mut caps = pb::LinuxCapabilities::new();
    caps.Bounding = vec!["CAP_CHOWN".into(), "NET_ADMIN".into()];
    caps.Effective = vec!["\"CAP_KILL\"".into()];
    p.Capabilities = MessageField::some(caps);
    let mut rl = pb::POSIXRlimit::new();
    rl.Type = "RLIMIT_NOFILE".into();
    rl.Hard = 1024;
    rl.Soft = 512;
    p.Rlimits.push(rl);
    p.NoNewPrivileges = true;
    p.OOMScoreAdj = -500;
    p.SelinuxLabel = "label".into();
    p.ApparmorProfile = "profile".into();
    spec.Process = MessageField::some(p);

    let mut hooks = pb::Hooks::new();
    let mut h = pb::Hook::new();
    h.Path = "/bin/hook".into();
    h.Args = vec!["hook".into(), "x".into()];
    h.Timeout = 5;
    hooks.Prestart.push(h.clone());
    h.Path = "/bin/stop".into();
    hooks.Poststop.push(h);
    spec.Hooks = MessageField::some(hooks);

    let mut linux = pb::Linux::new();
    let mut map = pb::LinuxIDMapping::new();
    map.HostID = 100000;
    map.ContainerID = 0;
    map.Size = 65536;
    linux.UIDMappings.push(map.clone());
    linux.GIDMappings.push(map);
    linux
        .Sysctl
        .insert("net.ipv4.ip_forward".into(), "1".into());
    linux.CgroupsPath = "/kubepods/pod1/c1".into();
    for (t, path) in [
        ("ipc", ""),
        ("uts", ""),
        ("mount", ""),
        ("network", "/var/run/netns/x"),
    ] {
        let mut ns = pb::LinuxNamespace::new();
        ns.Type = t.into();
        ns.Path = path.into();
        linux.Namespaces.push(ns);
    }
    let mut dev = pb::LinuxDevice::new();
    dev.Path = "/dev/fuse".into();
    dev.Type = "c".into();
    dev.Major = 10;
    dev.Minor = 229;
    dev.FileMode = 0o666;
    linux.Devices.push(dev);
    let mut res = pb::LinuxResources::new();
    let mut mem = pb::LinuxMemory::new();
    mem.Limit = 64 << 20;
    mem.Swap = -1;
    res.Memory = MessageField::some(mem);
    let mut cpu = pb::LinuxCPU::new();
    cpu.Shares = 512;
    cpu.Quota = -1;
    cpu.Cpus = "0-1".into();
    res.CPU = MessageField::some(cpu);
    let mut pids = pb::LinuxPids::new();
    pids.Limit = 100;
    res.Pids = MessageField::some(pids);
    let mut rule = pb::LinuxDeviceCgroup::new();
    rule.Allow = false;
    rule.Access = "rwm".into();
    res.Devices.push(rule);
    let mut hp = pb::LinuxHugepageLimit::new();
    hp.Pagesize = "2MB".into();
    hp.Limit = 4 << 20;
    res.HugepageLimits.push(hp);
    let mut blkio = pb::LinuxBlockIO::new();
    blkio.Weight = 500;
    let mut td = pb::LinuxThrottleDevice::new();
    td.Major = 8;
    td.Rate = 1000;
    blkio.ThrottleReadBpsDevice.push(td);
    res.BlockIO = MessageField::some(blkio);
    linux.Resources = MessageField::some(res);
    let mut sc = pb::LinuxSeccomp::new();
    sc.DefaultAction = "SCMP_ACT_ERRNO".into();
    sc.Architectures = vec!["SCMP_ARCH_X86_64".into()];
    sc.Flags = vec!["SECCOMP_FILTER_FLAG_LOG".into()];
    let mut sys = pb::LinuxSyscall::new();
    sys.Names = vec!["read".into()];
    sys.Action = "SCMP_ACT_ALLOW".into();
    sys.ErrnoRet = Some(pb::linux_syscall::ErrnoRet::Errnoret(1));
    let mut arg = pb::LinuxSeccompArg::new();
    arg.Index = 1;
    arg.Value = 2;
    arg.Op = "SCMP_CMP_EQ".into();
    sys.Args.push(arg);
    sc.Syscalls.push(sys);
    linux.Seccomp = MessageField::some(sc);
    linux.MaskedPaths = vec!["/proc/kcore".into()];
    linux.ReadonlyPaths = vec!["/proc/sys".into()];
    linux.MountLabel = "mlabel".into();
    linux.RootfsPropagation = "rslave".into();
    spec.Linux = MessageField::some(linux);
    spec
}

#[test]
fn a_full_spec_converts_field_by_field() {
    let spec = spec_from_proto(&full_spec()).unwrap();
    assert_eq!(spec.version(), "1.1.0");
    assert_eq!(spec.hostname().as_deref(), Some("pod"));
    let root = spec.root().as_ref().unwrap();
    assert_eq!(root.readonly(), Some(true));
    let mounts = spec.mounts().as_ref().unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].typ().as_deref(), Some("proc"));

    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.terminal(), Some(true));
    assert_eq!(p.console_size().unwrap().width(), 80);
    assert_eq!(p.user().uid(), 1000);
    assert_eq!(p.user().additional_gids().as_deref(), Some(&[10, 20][..]));
    assert_eq!(p.user().username().as_deref(), Some("app"));
    assert_eq!(p.args().as_ref().unwrap().len(), 3);
    assert_eq!(p.cwd().to_str(), Some("/work"));
    let caps = p.capabilities().as_ref().unwrap();
    assert!(
        caps.bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::Chown)
    );
    assert!(
        caps.bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::NetAdmin)
    );
    assert!(
        caps.effective()
            .as_ref()
            .unwrap()
            .contains(&Capability::Kill)
    );
    let rl = &p.rlimits().as_ref().unwrap()[0];
    assert_eq!(
        (rl.typ(), rl.hard(), rl.soft()),
        (PosixRlimitType::RlimitNofile, 1024, 512)
    );
    assert_eq!(p.no_new_privileges(), Some(true));
    assert_eq!(p.oom_score_adj(), Some(-500));

    let hooks = spec.hooks().as_ref().unwrap();
    assert_eq!(hooks.prestart().as_ref().unwrap()[0].timeout(), Some(5));
    assert_eq!(
        hooks.poststop().as_ref().unwrap()[0].path().to_str(),
        Some("/bin/stop"),
        "poststop hooks are the poststop ones (Kata copies poststart)"
    );
    assert!(hooks.poststart().is_none());

    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(linux.uid_mappings().as_ref().unwrap()[0].size(), 65536);
    assert_eq!(
        linux.cgroups_path().as_ref().unwrap().to_str(),
        Some("/kubepods/pod1/c1")
    );
    let ns = linux.namespaces().as_ref().unwrap();
    let types: Vec<_> = ns.iter().map(|n| n.typ()).collect();
    assert_eq!(
        types,
        [
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network
        ]
    );
    assert_eq!(
        ns[3].path().as_ref().unwrap().to_str(),
        Some("/var/run/netns/x")
    );
    assert!(ns[0].path().is_none());
    let dev = &linux.devices().as_ref().unwrap()[0];
    assert_eq!(
        (dev.typ(), dev.major(), dev.minor()),
        (LinuxDeviceType::C, 10, 229)
    );
    let res = linux.resources().as_ref().unwrap();
    let mem = res.memory().as_ref().unwrap();
    assert_eq!(mem.limit(), Some(64 << 20));
    assert_eq!(mem.swap(), Some(-1));
    assert_eq!(mem.reservation(), None);
    let cpu = res.cpu().as_ref().unwrap();
    assert_eq!(
        (cpu.shares(), cpu.quota(), cpu.period()),
        (Some(512), Some(-1), None)
    );
    assert_eq!(cpu.cpus().as_deref(), Some("0-1"));
    assert_eq!(res.pids().as_ref().unwrap().limit(), 100);
    let rule = &res.devices().as_ref().unwrap()[0];
    assert_eq!(
        (rule.allow(), rule.typ(), rule.major()),
        (false, None, None)
    );
    assert_eq!(res.hugepage_limits().as_ref().unwrap()[0].limit(), 4 << 20);
    let blkio = res.block_io().as_ref().unwrap();
    assert_eq!(blkio.weight(), Some(500));
    assert_eq!(
        blkio.throttle_read_bps_device().as_ref().unwrap()[0].rate(),
        1000
    );
    let sc = linux.seccomp().as_ref().unwrap();
    assert_eq!(sc.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(
        sc.architectures().as_ref().unwrap(),
        &[Arch::ScmpArchX86_64]
    );
    let sys = &sc.syscalls().as_ref().unwrap()[0];
    assert_eq!(sys.errno_ret(), Some(1));
    assert_eq!(
        sys.args().as_ref().unwrap()[0].op(),
        LinuxSeccompOperator::ScmpCmpEq
    );
    assert_eq!(
        linux.masked_paths().as_deref(),
        Some(&["/proc/kcore".to_owned()][..])
    );
    assert_eq!(linux.mount_label().as_deref(), Some("mlabel"));
    assert_eq!(linux.rootfs_propagation().as_deref(), Some("rslave"));
}

#[test]
fn an_empty_spec_has_no_defaults_of_oci_spec() {
    let spec = spec_from_proto(&pb::Spec::new()).unwrap();
    assert!(spec.process().is_none());
    assert!(spec.root().is_none());
    assert!(spec.mounts().is_none());
    assert!(spec.linux().is_none());
    assert!(spec.hostname().is_none());

    let mut with_linux = pb::Spec::new();
    with_linux.Linux = MessageField::some(pb::Linux::new());
    let spec = spec_from_proto(&with_linux).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.namespaces().is_none());
    assert!(linux.masked_paths().is_none());
    assert!(linux.readonly_paths().is_none());
    assert!(linux.resources().is_none());
}

#[test]
fn bad_values_are_errors_naming_the_field() {
    type Edit = fn(&mut pb::Spec);
    let cases: &[(Edit, &str)] = &[
        (
            |s| s.Linux.mut_or_insert_default().Namespaces[1].Type = "bogus".into(),
            "Linux.Namespaces[1].Type",
        ),
        (
            |s| {
                s.Process
                    .mut_or_insert_default()
                    .Capabilities
                    .mut_or_insert_default()
                    .Bounding
                    .push("CAP_FLY".into())
            },
            "Process.Capabilities.Bounding",
        ),
        (
            |s| s.Process.mut_or_insert_default().Rlimits[0].Type = "RLIMIT_WISHES".into(),
            "Process.Rlimits[0].Type",
        ),
        (
            |s| s.Process.mut_or_insert_default().OOMScoreAdj = i64::MAX,
            "Process.OOMScoreAdj",
        ),
        (
            |s| s.Linux.mut_or_insert_default().Devices[0].Type = "x".into(),
            "Linux.Devices[0].Type",
        ),
        (
            |s| {
                s.Linux
                    .mut_or_insert_default()
                    .Seccomp
                    .mut_or_insert_default()
                    .DefaultAction = "KILL_ALL".into()
            },
            "Linux.Seccomp.DefaultAction",
        ),
        (
            |s| {
                s.Linux
                    .mut_or_insert_default()
                    .Seccomp
                    .mut_or_insert_default()
                    .Architectures[0] = "SCMP_ARCH_Z80".into()
            },
            "Linux.Seccomp.Architectures[0]",
        ),
        (
            |s| {
                s.Linux
                    .mut_or_insert_default()
                    .Seccomp
                    .mut_or_insert_default()
                    .Syscalls[0]
                    .Args[0]
                    .Op = "LIKE".into()
            },
            "Linux.Seccomp.Syscalls[0].Args[0].Op",
        ),
        (
            |s| {
                s.Linux
                    .mut_or_insert_default()
                    .Resources
                    .mut_or_insert_default()
                    .BlockIO
                    .mut_or_insert_default()
                    .Weight = 70000
            },
            "Linux.Resources.BlockIO.Weight",
        ),
        (
            |s| {
                s.Linux
                    .mut_or_insert_default()
                    .Resources
                    .mut_or_insert_default()
                    .HugepageLimits[0]
                    .Limit = u64::MAX
            },
            "Linux.Resources.HugepageLimits[0].Limit",
        ),
        (
            |s| {
                s.Linux
                    .mut_or_insert_default()
                    .Resources
                    .mut_or_insert_default()
                    .Devices[0]
                    .Type = "q".into()
            },
            "Linux.Resources.Devices[0].Type",
        ),
    ];
    for (edit, field) in cases {
        let mut spec = full_spec();
        edit(&mut spec);
        let err = spec_from_proto(&spec).unwrap_err();
        assert!(err.field.starts_with(field), "{field}: got {err}");
    }
}

#[test]
fn namespace_aliases_are_accepted() {
    for (name, typ) in [
        ("mnt", LinuxNamespaceType::Mount),
        ("mount", LinuxNamespaceType::Mount),
        ("net", LinuxNamespaceType::Network),
        ("network", LinuxNamespaceType::Network),
        ("pid", LinuxNamespaceType::Pid),
        ("cgroup", LinuxNamespaceType::Cgroup),
        ("user", LinuxNamespaceType::User),
        ("time", LinuxNamespaceType::Time),
    ] {
        let mut ns = pb::LinuxNamespace::new();
        ns.Type = name.into();
        assert_eq!(namespace(&ns, "ns").unwrap().typ(), typ, "{name}");
    }
}
