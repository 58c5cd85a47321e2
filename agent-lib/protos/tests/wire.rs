//! Field numbers and wire types, checked on encoded bytes: a wrong number is a wire break.

use agent_protos::protobuf::{CodedInputStream, Message, MessageField};
use agent_protos::{agent, csi, health, oci, types};

/// Wire types of the protobuf encoding.
const VARINT: u32 = 0;
const LEN: u32 = 2;

/// The `(field number, wire type)` of every top-level field in `bytes`, in order.
fn tags(bytes: &[u8]) -> Vec<(u32, u32)> {
    let mut input = CodedInputStream::from_bytes(bytes);
    let mut out = Vec::new();
    while let Some(tag) = input.read_raw_tag_or_eof().unwrap() {
        let (number, wire_type) = (tag >> 3, tag & 7);
        out.push((number, wire_type));
        match wire_type {
            VARINT => {
                input.read_raw_varint64().unwrap();
            }
            LEN => {
                let len = input.read_raw_varint32().unwrap();
                input.skip_raw_bytes(len).unwrap();
            }
            other => panic!("unexpected wire type {other} for field {number}"),
        }
    }
    out
}

fn encode(m: &impl Message) -> Vec<u8> {
    m.write_to_bytes().unwrap()
}

fn s(v: &str) -> String {
    v.to_owned()
}

#[test]
fn create_container_request_oci_is_field_6() {
    let mut spec = oci::Spec::new();
    spec.Version = s("1.0.2");
    let mut req = agent::CreateContainerRequest::new();
    req.OCI = MessageField::some(spec);
    // 0x32 = field 6, length-delimited; inside, 0x0a = Spec.Version (1).
    assert_eq!(encode(&req), b"\x32\x07\x0a\x051.0.2");
}

#[test]
fn create_container_request_all_fields() {
    let req = agent::CreateContainerRequest {
        container_id: s("c"),
        exec_id: s("e"),
        string_user: MessageField::some(agent::StringUser::new()),
        devices: vec![agent::Device::new()],
        storages: vec![agent::Storage::new()],
        OCI: MessageField::some(oci::Spec::new()),
        sandbox_pidns: true,
        shared_mounts: vec![agent::SharedMount::new()],
        stdin_port: 1,
        stdout_port: 2,
        stderr_port: 3,
        ..Default::default()
    };
    assert_eq!(
        tags(&encode(&req)),
        [
            (1, LEN),
            (2, LEN),
            (3, LEN),
            (4, LEN),
            (5, LEN),
            (6, LEN),
            (7, VARINT),
            (8, LEN),
            (9, VARINT),
            (10, VARINT),
            (11, VARINT),
        ]
    );
}

#[test]
fn exec_process_request_process_is_field_4() {
    let mut process = oci::Process::new();
    process.Terminal = true;
    let mut req = agent::ExecProcessRequest::new();
    req.process = MessageField::some(process);
    // 0x22 = field 4, length-delimited; inside, 0x08 0x01 = Process.Terminal (1) = true.
    assert_eq!(encode(&req), b"\x22\x02\x08\x01");

    req.container_id = s("c");
    req.exec_id = s("e");
    req.string_user = MessageField::some(agent::StringUser::new());
    req.stdin_port = 1;
    req.stdout_port = 1;
    req.stderr_port = 1;
    assert_eq!(
        tags(&encode(&req)),
        [
            (1, LEN),
            (2, LEN),
            (3, LEN),
            (4, LEN),
            (5, VARINT),
            (6, VARINT),
            (7, VARINT)
        ]
    );
}

#[test]
fn storage_and_fs_group_fields() {
    let mut fs_group = agent::FSGroup::new();
    fs_group.group_id = 5;
    fs_group.group_change_policy = types::FSGroupChangePolicy::OnRootMismatch.into();
    // FSGroup starts at field 2: 0x10 = group_id (2), 0x18 = group_change_policy (3).
    assert_eq!(encode(&fs_group), b"\x10\x05\x18\x01");

    let storage = agent::Storage {
        driver: s("blk"),
        driver_options: vec![s("o")],
        source: s("/dev/vda"),
        fstype: s("ext4"),
        options: vec![s("ro")],
        mount_point: s("/m"),
        fs_group: MessageField::some(fs_group),
        shared: true,
        ..Default::default()
    };
    assert_eq!(
        tags(&encode(&storage)),
        [
            (1, LEN),
            (2, LEN),
            (3, LEN),
            (4, LEN),
            (5, LEN),
            (6, LEN),
            (7, LEN),
            (8, VARINT),
        ]
    );
    let bytes = encode(&storage);
    assert_eq!(&bytes[..5], b"\x0a\x03blk");
    assert_eq!(&bytes[bytes.len() - 2..], b"\x40\x01");
}

#[test]
fn device_and_string_user_fields() {
    let dev = agent::Device {
        id: s("0/1"),
        type_: s("blk"),
        vm_path: s("/dev/vdb"),
        container_path: s("/dev/x"),
        options: vec![s("o")],
        ..Default::default()
    };
    assert_eq!(
        tags(&encode(&dev)),
        [(1, LEN), (2, LEN), (3, LEN), (4, LEN), (5, LEN)]
    );
    let user = agent::StringUser {
        uid: s("0"),
        gid: s("0"),
        additionalGids: vec![s("1")],
        ..Default::default()
    };
    assert_eq!(tags(&encode(&user)), [(1, LEN), (2, LEN), (3, LEN)]);
}

#[test]
fn oci_spec_fields() {
    let mut spec = oci::Spec::new();
    spec.Version = s("1");
    spec.Process = MessageField::some(oci::Process::new());
    spec.Root = MessageField::some(oci::Root::new());
    spec.Hostname = s("h");
    spec.Mounts = vec![oci::Mount::new()];
    spec.Hooks = MessageField::some(oci::Hooks::new());
    spec.Annotations.insert(s("k"), s("v"));
    spec.Linux = MessageField::some(oci::Linux::new());
    spec.Solaris = MessageField::some(oci::Solaris::new());
    spec.Windows = MessageField::some(oci::Windows::new());
    assert_eq!(
        tags(&encode(&spec)),
        (1..=10).map(|n| (n, LEN)).collect::<Vec<_>>()
    );

    let mut linux = oci::Linux::new();
    linux.CgroupsPath = s("/kata");
    linux.IntelRdt = MessageField::some(oci::LinuxIntelRdt::new());
    // 0x2a = CgroupsPath (5), 0x6a = IntelRdt (13).
    assert_eq!(encode(&linux), b"\x2a\x05/kata\x6a\x00");

    let mut process = oci::Process::new();
    process.OOMScoreAdj = -1000;
    process.SelinuxLabel = s("l");
    let bytes = encode(&process);
    // 0x58 = OOMScoreAdj (11, varint; int64 so negative is 10 bytes), 0x62 = SelinuxLabel (12).
    assert_eq!(tags(&bytes), [(11, VARINT), (12, LEN)]);
    assert_eq!(bytes[0], 0x58);
    assert_eq!(bytes.len(), 1 + 10 + 3);
}

#[test]
fn oci_resources_fields() {
    let mut res = oci::LinuxResources::new();
    res.Devices = vec![oci::LinuxDeviceCgroup::new()];
    res.Memory = MessageField::some(oci::LinuxMemory::new());
    res.CPU = MessageField::some(oci::LinuxCPU::new());
    res.Pids = MessageField::some(oci::LinuxPids::new());
    res.BlockIO = MessageField::some(oci::LinuxBlockIO::new());
    res.HugepageLimits = vec![oci::LinuxHugepageLimit::new()];
    res.Network = MessageField::some(oci::LinuxNetwork::new());
    assert_eq!(
        tags(&encode(&res)),
        (1..=7).map(|n| (n, LEN)).collect::<Vec<_>>()
    );

    let mut mem = oci::LinuxMemory::new();
    mem.Limit = 1;
    mem.Swappiness = 2;
    mem.DisableOOMKiller = true;
    assert_eq!(encode(&mem), b"\x08\x01\x30\x02\x38\x01");

    let mut cpu = oci::LinuxCPU::new();
    cpu.Shares = 1024;
    cpu.Cpus = s("0-1");
    cpu.Mems = s("0");
    assert_eq!(tags(&encode(&cpu)), [(1, VARINT), (6, LEN), (7, LEN)]);
}

#[test]
fn oci_seccomp_oneof_errnoret_is_field_3_with_presence() {
    let mut sc = oci::LinuxSyscall::new();
    sc.Names = vec![s("mkdir")];
    sc.Action = s("SCMP_ACT_ERRNO");
    // Set to 0: a oneof member is still encoded.
    sc.set_errnoret(0);
    sc.Args = vec![oci::LinuxSeccompArg::new()];
    // rust-protobuf writes oneof members after the plain fields; order carries no meaning.
    let mut got = tags(&encode(&sc));
    got.sort_unstable();
    assert_eq!(got, [(1, LEN), (2, LEN), (3, VARINT), (4, LEN)]);
    let back = oci::LinuxSyscall::parse_from_bytes(&encode(&sc)).unwrap();
    assert!(back.has_errnoret());
    assert_eq!(back.errnoret(), 0);

    let unset = oci::LinuxSyscall::new();
    assert!(encode(&unset).is_empty());
}

#[test]
fn types_interface_fields() {
    let mut addr = types::IPAddress::new();
    addr.family = types::IPFamily::v6.into();
    addr.address = s("fe80::1");
    addr.mask = s("64");
    assert_eq!(tags(&encode(&addr)), [(1, VARINT), (2, LEN), (3, LEN)]);
    assert_eq!(&encode(&addr)[..2], b"\x08\x01");

    let iface = types::Interface {
        device: s("eth0"),
        name: s("eth0"),
        IPAddresses: vec![addr],
        mtu: 1500,
        hwAddr: s("02:00:00:00:00:01"),
        devicePath: s("02/00"),
        type_: s("veth"),
        raw_flags: 1,
        ..Default::default()
    };
    assert_eq!(
        tags(&encode(&iface)),
        [
            (1, LEN),
            (2, LEN),
            (3, LEN),
            (4, VARINT),
            (5, LEN),
            (6, LEN),
            (7, LEN),
            (8, VARINT),
        ]
    );
}

#[test]
fn types_route_and_neighbor_fields() {
    let route = types::Route {
        dest: s("0.0.0.0/0"),
        gateway: s("192.0.2.1"),
        device: s("eth0"),
        source: s("192.0.2.2"),
        scope: 1,
        family: types::IPFamily::v6.into(),
        flags: 1,
        mtu: 1500,
        ..Default::default()
    };
    assert_eq!(
        tags(&encode(&route)),
        [
            (1, LEN),
            (2, LEN),
            (3, LEN),
            (4, LEN),
            (5, VARINT),
            (6, VARINT),
            (7, VARINT),
            (8, VARINT),
        ]
    );
    let neigh = types::ARPNeighbor {
        toIPAddress: MessageField::some(types::IPAddress::new()),
        device: s("eth0"),
        lladdr: s("02:00:00:00:00:01"),
        state: 128,
        flags: 1,
        ..Default::default()
    };
    assert_eq!(
        tags(&encode(&neigh)),
        [(1, LEN), (2, LEN), (3, LEN), (4, VARINT), (5, VARINT)]
    );
}

#[test]
fn health_messages() {
    let mut resp = health::HealthCheckResponse::new();
    resp.status = health::health_check_response::ServingStatus::SERVING.into();
    assert_eq!(encode(&resp), b"\x08\x01");
    let mut v = health::VersionCheckResponse::new();
    v.grpc_version = s("0.0.1");
    v.agent_version = s("4.1.0");
    assert_eq!(tags(&encode(&v)), [(1, LEN), (2, LEN)]);
}

#[test]
fn fields_that_do_not_start_at_one() {
    let mut reseed = agent::ReseedRandomDevRequest::new();
    reseed.data = vec![1, 2];
    assert_eq!(encode(&reseed), b"\x12\x02\x01\x02");

    let mut copy = agent::CopyFileRequest::new();
    copy.data = vec![7];
    copy.offset = 3;
    assert_eq!(encode(&copy), b"\x38\x03\x42\x01\x07");
}

#[test]
fn proto3_optional_fields_keep_presence() {
    let mut memcg = agent::MemAgentMemcgConfig::new();
    assert!(encode(&memcg).is_empty());
    memcg.disabled = Some(false);
    memcg.eviction_run_aging_count_min = Some(0);
    assert_eq!(encode(&memcg), b"\x08\x00\x38\x00");

    let mut compact = agent::MemAgentCompactConfig::new();
    compact.compact_sec_max = Some(-1);
    compact.compact_force_times = Some(0);
    assert_eq!(tags(&encode(&compact)), [(5, VARINT), (8, VARINT)]);
}

#[test]
fn csi_volume_stats() {
    let mut usage = csi::VolumeUsage::new();
    usage.available = 1;
    usage.total = 2;
    usage.used = 1;
    usage.unit = csi::volume_usage::Unit::INODES.into();
    assert_eq!(encode(&usage), b"\x08\x01\x10\x02\x18\x01\x20\x02");

    let mut resp = csi::VolumeStatsResponse::new();
    resp.usage = vec![usage];
    resp.volume_condition = MessageField::some(csi::VolumeCondition::new());
    assert_eq!(tags(&encode(&resp)), [(1, LEN), (2, LEN)]);
}

#[test]
fn stats_and_guest_details_fields() {
    let mut cg = agent::CgroupStats::new();
    cg.cpu_stats = MessageField::some(agent::CpuStats::new());
    cg.memory_stats = MessageField::some(agent::MemoryStats::new());
    cg.pids_stats = MessageField::some(agent::PidsStats::new());
    cg.blkio_stats = MessageField::some(agent::BlkioStats::new());
    cg.hugetlb_stats
        .insert(s("2MB"), agent::HugetlbStats::new());
    assert_eq!(
        tags(&encode(&cg)),
        (1..=5).map(|n| (n, LEN)).collect::<Vec<_>>()
    );

    let mut details = agent::GuestDetailsResponse::new();
    details.mem_block_size_bytes = 1 << 27;
    details.agent_details = MessageField::some(agent::AgentDetails::new());
    details.support_mem_hotplug_probe = true;
    assert_eq!(
        tags(&encode(&details)),
        [(1, VARINT), (2, LEN), (3, VARINT)]
    );
}

#[test]
fn network_wrappers_keep_kata_field_names() {
    // The JSON a dynamic caller writes uses these names, so they matter too.
    use agent_protos::protobuf::MessageFull;
    let checks: [(
        agent_protos::protobuf::reflect::MessageDescriptor,
        &str,
        i32,
    ); 8] = [
        (agent::Interfaces::descriptor(), "Interfaces", 1),
        (agent::Routes::descriptor(), "Routes", 1),
        (agent::ARPNeighbors::descriptor(), "ARPNeighbors", 1),
        (agent::UpdateInterfaceRequest::descriptor(), "interface", 1),
        (agent::CreateContainerRequest::descriptor(), "OCI", 6),
        (
            agent::MemHotplugByProbeRequest::descriptor(),
            "memHotplugProbeAddr",
            1,
        ),
        (agent::SetGuestDateTimeRequest::descriptor(), "Usec", 2),
        (agent::AddSwapRequest::descriptor(), "PCIPath", 1),
    ];
    for (desc, field, number) in checks {
        let f = desc
            .field_by_name(field)
            .unwrap_or_else(|| panic!("{}.{field}", desc.full_name()));
        assert_eq!(f.number(), number, "{}.{field}", desc.full_name());
    }
}
