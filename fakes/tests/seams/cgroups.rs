//! `FakeCgroups` semantics.

use agent_fakes::{FakeCgroups, Faults, Op};
use kata_agent::host::{CgroupStats, CgroupVersion, Cgroups, PidsStats};
use nix::errno::Errno;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

fn errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().expect("an errno"))
}

fn cgroups(version: CgroupVersion) -> FakeCgroups {
    FakeCgroups::new(version, Faults::new())
}

fn memory(limit: i64, swap: Option<i64>) -> LinuxResources {
    let mut mem = LinuxMemoryBuilder::default().limit(limit);
    if let Some(swap) = swap {
        mem = mem.swap(swap);
    }
    LinuxResourcesBuilder::default()
        .memory(mem.build().unwrap())
        .build()
        .unwrap()
}

#[test]
fn create_makes_parents_and_paths_normalise() {
    let c = cgroups(CgroupVersion::V2);
    c.create("kata/abc/").unwrap();
    c.create("/kata/abc").unwrap();
    assert_eq!(c.paths(), ["/kata", "/kata/abc"]);
    assert!(c.exists("/kata//abc"));
    assert_eq!(errno(c.create("/kata/../x").unwrap_err()), Errno::EINVAL);
    assert_eq!(c.version(), CgroupVersion::V2);
}

#[test]
fn set_merges_resources() {
    let c = cgroups(CgroupVersion::V2);
    c.create("/a").unwrap();
    c.set("/a", &memory(1 << 30, None)).unwrap();
    let cpu = LinuxResourcesBuilder::default()
        .cpu(LinuxCpuBuilder::default().shares(512u64).build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(100).build().unwrap())
        .build()
        .unwrap();
    c.set("/a", &cpu).unwrap();
    let mem_again = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .swappiness(10u64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    c.set("/a", &mem_again).unwrap();
    let r = c.state("/a").unwrap().resources;
    let mem = r.memory().as_ref().unwrap();
    assert_eq!(mem.limit(), Some(1 << 30));
    assert_eq!(mem.swappiness(), Some(10));
    assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(512));
    assert_eq!(r.pids().as_ref().unwrap().limit(), 100);
    assert_eq!(errno(c.set("/missing", &cpu).unwrap_err()), Errno::ENOENT);
}

#[test]
fn v1_rejects_memsw_below_memory() {
    let v1 = cgroups(CgroupVersion::V1);
    v1.create("/a").unwrap();
    v1.set("/a", &memory(2 << 20, None)).unwrap();
    let swap_only = LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().swap(1 << 20).build().unwrap())
        .build()
        .unwrap();
    assert_eq!(errno(v1.set("/a", &swap_only).unwrap_err()), Errno::EINVAL);
    assert_eq!(
        v1.state("/a")
            .unwrap()
            .resources
            .memory()
            .as_ref()
            .unwrap()
            .swap(),
        None
    );
    let v2 = cgroups(CgroupVersion::V2);
    v2.create("/a").unwrap();
    v2.set("/a", &memory(2 << 20, Some(1 << 20))).unwrap();
}

#[test]
fn processes_move_between_cgroups_and_block_destroy() {
    let c = cgroups(CgroupVersion::V2);
    c.create("/a").unwrap();
    c.create("/b").unwrap();
    c.add_process("/a", 1001).unwrap();
    c.add_process("/a", 1000).unwrap();
    assert_eq!(c.pids("/a").unwrap(), [1000, 1001]);
    c.add_process("/b", 1000).unwrap();
    assert_eq!(c.pids("/a").unwrap(), [1001]);
    assert_eq!(c.cgroup_of(1000).as_deref(), Some("/b"));
    assert_eq!(errno(c.add_process("/a", 0).unwrap_err()), Errno::EINVAL);
    assert_eq!(errno(c.add_process("/nope", 5).unwrap_err()), Errno::ENOENT);
    assert_eq!(errno(c.destroy("/a").unwrap_err()), Errno::EBUSY);
    c.process_exited(1001);
    c.destroy("/a").unwrap();
    assert_eq!(errno(c.destroy("/a").unwrap_err()), Errno::ENOENT);
}

#[test]
fn destroy_with_children_or_root_is_busy() {
    let c = cgroups(CgroupVersion::V2);
    c.create("/kata/x").unwrap();
    assert_eq!(errno(c.destroy("/kata").unwrap_err()), Errno::EBUSY);
    assert_eq!(errno(c.destroy("/").unwrap_err()), Errno::EBUSY);
    // `/kata` was made by the create of `/kata/x`: it goes with it.
    c.destroy("/kata/x").unwrap();
    assert!(c.paths().is_empty(), "{:?}", c.paths());
    // A parent that was there before stays.
    c.create("/pre").unwrap();
    c.create("/pre/y/z").unwrap();
    c.destroy("/pre/y/z").unwrap();
    assert_eq!(c.paths(), ["/pre"]);
}

#[test]
fn freeze_and_stats() {
    let c = cgroups(CgroupVersion::V2);
    c.create("/a").unwrap();
    c.freeze("/a", true).unwrap();
    assert!(c.state("/a").unwrap().frozen);
    c.freeze("/a", false).unwrap();
    assert!(!c.state("/a").unwrap().frozen);
    assert_eq!(c.stats("/a").unwrap(), CgroupStats::default());
    let stats = CgroupStats {
        pids: PidsStats {
            current: 3,
            limit: 10,
        },
        ..CgroupStats::default()
    };
    c.set_stats("/a", stats.clone()).unwrap();
    assert_eq!(c.stats("/a").unwrap(), stats);
    assert_eq!(errno(c.set_stats("/b", stats).unwrap_err()), Errno::ENOENT);
    assert_eq!(errno(c.freeze("/b", true).unwrap_err()), Errno::ENOENT);
}

#[test]
fn injected_faults_change_nothing() {
    let faults = Faults::new();
    let c = FakeCgroups::new(CgroupVersion::V2, faults.clone());
    c.create("/a").unwrap();
    let before = c.state("/a").unwrap();
    for op in [
        Op::CgroupCreate,
        Op::CgroupSet,
        Op::CgroupAddProcess,
        Op::CgroupFreeze,
        Op::CgroupDestroy,
    ] {
        faults.fail_next(op, Errno::EIO);
    }
    assert_eq!(errno(c.create("/b").unwrap_err()), Errno::EIO);
    assert_eq!(
        errno(c.set("/a", &memory(1 << 20, None)).unwrap_err()),
        Errno::EIO
    );
    assert_eq!(errno(c.add_process("/a", 7).unwrap_err()), Errno::EIO);
    assert_eq!(errno(c.freeze("/a", true).unwrap_err()), Errno::EIO);
    assert_eq!(errno(c.destroy("/a").unwrap_err()), Errno::EIO);
    assert_eq!(c.paths(), ["/a"]);
    assert_eq!(c.state("/a").unwrap(), before);
    assert_eq!(faults.pending(), 0);
}
