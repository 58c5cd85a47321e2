//! CreateContainer's device handlers (spec rewriting, VFIO) and CPU/memory hotplug, on the
//! fakes with paused tokio time.

use std::time::Duration;

use agent_testing::devices::Rig;
use agent_testing::pod::Pod;
use kata_agent::device::{self, CpusetTarget, DeviceError, DeviceRequest};
use kata_agent::host::{Cgroups, NodeKind};
use oci_spec::runtime::Spec;
use tokio::time::Instant;

const BLK_PCI: &str = "/devices/pci0000:00/0000:00:02.0/0000:01:00.0";

fn spec() -> Spec {
    serde_json::from_value(serde_json::json!({
        "ociVersion": "1.1.0",
        "process": {
            "cwd": "/",
            "user": {"uid": 0, "gid": 0},
            "env": [
                "PATH=/bin",
                "PCIDEVICE_INTEL_COM_SRIOV=0000:3b:00.1,0000:3b:00.2",
                "PCIDEVICE_INTEL_COM_SRIOV_INFO={\"0000:3b:00.1\":{},\"0000:3b:00.2\":{}}",
                "PCIDEVICE_OTHER=0000:99:00.0"
            ]
        },
        "linux": {
            "devices": [
                {"path": "/dev/disk0", "type": "b", "major": 8, "minor": 0},
                {"path": "/dev/vfio/55", "type": "c", "major": 241, "minor": 7}
            ],
            "resources": {
                "devices": [
                    {"allow": false, "access": "rwm"},
                    {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "rw"},
                    {"allow": true, "type": "c", "major": 241, "minor": 7, "access": "rw"}
                ]
            }
        }
    }))
    .unwrap()
}

fn request(kind: &str, id: &str, container_path: &str, options: &[&str]) -> DeviceRequest {
    DeviceRequest {
        id: id.into(),
        kind: kind.into(),
        vm_path: String::new(),
        container_path: container_path.into(),
        options: options.iter().map(|o| o.to_string()).collect(),
    }
}

/// Two guest VFs on bus 02 and 03 (root ports 03 and 04), bound to a guest driver, in the
/// IOMMU groups given; the VFIO group node appears once both are bound to vfio-pci.
fn vfio_guest(r: &Rig, groups: [u32; 2]) {
    let sysfs = &r.fake.sysfs;
    for (bdf, parent, group) in [
        ("0000:02:00.0", "0000:00:03.0", groups[0]),
        ("0000:03:00.0", "0000:00:04.0", groups[1]),
    ] {
        let dir = format!("/sys/devices/pci0000:00/{parent}/{bdf}");
        sysfs.mkdir_p(&dir).unwrap();
        sysfs
            .write_file(format!("{dir}/driver_override"), "(null)")
            .unwrap();
        sysfs
            .symlink(
                format!("{dir}/iommu_group"),
                format!("../../../../kernel/iommu_groups/{group}"),
            )
            .unwrap();
        sysfs
            .symlink(
                format!("{dir}/driver"),
                "../../../../bus/pci/drivers/mlx5_core",
            )
            .unwrap();
        sysfs
            .symlink(
                format!("/sys/bus/pci/devices/{bdf}"),
                format!("../../..{}", &dir[4..]),
            )
            .unwrap();
    }
    sysfs
        .write_file("/sys/bus/pci/drivers/mlx5_core/unbind", "")
        .unwrap();
    sysfs.write_file("/sys/bus/pci/drivers_probe", "").unwrap();
    let uevents = r.fake.uevents.clone();
    let group = groups[0];
    sysfs.on_write("/sys/bus/pci/drivers_probe", move |sysfs, _, data| {
        if data == b"0000:03:00.0" {
            sysfs.mkdir_p(format!("/sys/devices/virtual/vfio/{group}"))?;
            sysfs.mknod(format!("/dev/vfio/{group}"), NodeKind::CharDevice, 243, 1)?;
            uevents.emit(
                "add",
                &format!("/devices/virtual/vfio/{group}"),
                &[("SUBSYSTEM", "vfio"), ("DEVNAME", &format!("vfio/{group}"))],
            );
        }
        Ok(())
    });
}

#[tokio::test(start_paused = true)]
async fn add_devices_rewrites_the_spec_for_the_guest() {
    let r = Pod::devices("").await;
    r.plug_virtio_blk(BLK_PCI, 0, "vda", 0);
    vfio_guest(&r, [12, 12]);
    let mut spec = spec();
    let additions = device::add_devices(
        &r.ctx,
        &[
            request("blk", "02/00", "/dev/disk0", &[]),
            request(
                "vfio-pci",
                "vfio0",
                "/dev/vfio/55",
                &["0000:3b:00.1=03/00", "0000:3b:00.2=04/00"],
            ),
        ],
        &mut spec,
    )
    .await
    .unwrap();

    let linux = spec.linux().as_ref().unwrap();
    let devices: Vec<_> = linux
        .devices()
        .as_ref()
        .unwrap()
        .iter()
        .map(|d| (d.path().display().to_string(), d.major(), d.minor()))
        .collect();
    assert_eq!(
        devices,
        [
            ("/dev/disk0".into(), 254, 0),
            ("/dev/vfio/12".into(), 243, 1)
        ]
    );
    let rules: Vec<_> = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap()
        .iter()
        .map(|d| {
            let typ = d.typ().map(|t| t.as_str().to_owned()).unwrap_or_default();
            (
                d.allow(),
                typ,
                d.major(),
                d.minor(),
                d.access().clone().unwrap_or_default(),
            )
        })
        .collect();
    let rule = |allow, t: &str, ma, mi, acc: &str| (allow, t.to_owned(), ma, mi, acc.to_owned());
    assert_eq!(
        rules,
        [
            rule(false, "", None, None, "rwm"),
            rule(true, "b", Some(254), Some(0), "rw"),
            rule(true, "c", Some(243), Some(1), "rw"),
            rule(true, "b", Some(254), Some(0), "rwm"),
            rule(true, "c", Some(243), Some(1), "rwm"),
        ]
    );
    let env = spec.process().as_ref().unwrap().env().clone().unwrap();
    assert_eq!(
        env[1],
        "PCIDEVICE_INTEL_COM_SRIOV=0000:02:00.0,0000:03:00.0"
    );
    assert_eq!(
        env[2],
        "PCIDEVICE_INTEL_COM_SRIOV_INFO={\"0000:02:00.0\":{},\"0000:03:00.0\":{}}"
    );
    assert_eq!(env[3], "PCIDEVICE_OTHER=0000:99:00.0");
    assert_eq!(additions.pci_map.len(), 2);
    assert_eq!(additions.devices.len(), 2);

    // The rebind went through driver_override, unbind, drivers_probe.
    let writes: Vec<_> = r
        .fake
        .sysfs
        .writes()
        .into_iter()
        .map(|(p, d)| format!("{} <- {}", p.display(), String::from_utf8_lossy(&d)))
        .collect();
    assert_eq!(
        writes[..3],
        [
            "/sys/bus/pci/devices/0000:02:00.0/driver_override <- vfio-pci",
            "/sys/bus/pci/devices/0000:02:00.0/driver/unbind <- 0000:02:00.0",
            "/sys/bus/pci/drivers_probe <- 0000:02:00.0",
        ]
    );
    assert_eq!(writes.len(), 6);
}

#[tokio::test(start_paused = true)]
async fn vfio_devices_in_two_groups_are_refused_before_any_rebind() {
    let r = Pod::devices("").await;
    vfio_guest(&r, [12, 13]);
    let mut spec = spec();
    let before = spec.clone();
    let err = device::add_devices(
        &r.ctx,
        &[request(
            "vfio-pci",
            "vfio0",
            "/dev/vfio/55",
            &["0000:3b:00.1=03/00", "0000:3b:00.2=04/00"],
        )],
        &mut spec,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DeviceError::Iommu(_)), "{err}");
    assert!(err.to_string().contains("group 13"), "{err}");
    assert_eq!(spec, before);
    assert!(r.fake.sysfs.writes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn vfio_gk_maps_addresses_without_rebinding() {
    let r = Pod::devices("").await;
    vfio_guest(&r, [12, 13]);
    let mut spec = spec();
    let additions = device::add_devices(
        &r.ctx,
        &[request(
            "vfio-pci-gk",
            "vfio0",
            "/dev/vfio/55",
            &["0000:3b:00.1=03/00", "0000:3b:00.2="],
        )],
        &mut spec,
    )
    .await
    .unwrap();
    assert!(additions.devices.is_empty());
    assert_eq!(additions.pci_map.len(), 1);
    assert!(r.fake.sysfs.writes().is_empty());
    // Only one of the two addresses is known: the variable is left alone.
    let env = spec.process().as_ref().unwrap().env().clone().unwrap();
    assert_eq!(
        env[1],
        "PCIDEVICE_INTEL_COM_SRIOV=0000:3b:00.1,0000:3b:00.2"
    );
}

#[tokio::test(start_paused = true)]
async fn failed_requests_leave_the_spec_alone() {
    let r = Pod::devices("").await;
    r.plug_virtio_blk(BLK_PCI, 0, "vda", 0);
    let mut spec = spec();
    let before = spec.clone();
    let cases: &[(DeviceRequest, &str)] = &[
        (request("", "02/00", "/dev/disk0", &[]), "empty type"),
        (
            request("blk", "", "/dev/disk0", &[]),
            "no id and no vm_path",
        ),
        (request("blk", "02/00", "", &[]), "empty container_path"),
        (request("virtio-9p", "x", "/dev/x", &[]), "no handler"),
        (request("mmioblk", "x", "/dev/x", &[]), "needs vm_path"),
        (
            request("vfio-pci", "x", "/dev/vfio/55", &["nonsense"]),
            "VFIO option",
        ),
        (
            request("blk", "02/00", "/dev/not-in-spec", &[]),
            "missing from linux.devices",
        ),
    ];
    for (req, want) in cases {
        let err = device::add_devices(&r.ctx, std::slice::from_ref(req), &mut spec)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(want), "{want}: {err}");
        assert_eq!(spec, before, "{want}");
    }
    // A device that never comes: the timeout names it, and nothing changed.
    let start = Instant::now();
    let err = device::add_devices(
        &r.ctx,
        &[request("scsi", "0:1", "/dev/disk0", &[])],
        &mut spec,
    )
    .await;
    assert!(
        matches!(err, Err(DeviceError::Sysfs { .. })),
        "no scsi_host: {err:?}"
    );
    r.fake
        .sysfs
        .write_file("/sys/class/scsi_host/host0/scan", "")
        .unwrap();
    let err = device::add_devices(
        &r.ctx,
        &[request("scsi", "0:1", "/dev/disk0", &[])],
        &mut spec,
    )
    .await
    .unwrap_err();
    assert!(
        err.is_timeout() && err.to_string().contains("SCSI disk 0:1"),
        "{err}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(spec, before);
    assert!(r.fake.leftovers().is_empty());
}

fn cpus(r: &Rig, online: &str) {
    let sysfs = &r.fake.sysfs;
    sysfs
        .write_file("/sys/devices/system/cpu/online", online)
        .unwrap();
    sysfs.mkdir_p("/sys/devices/system/cpu/cpu0").unwrap();
}

/// cpu`n` appears (offline); writing its `online` updates the online list to `0-n`.
fn plug_cpu(r: &Rig, n: u32) {
    let dir = format!("/sys/devices/system/cpu/cpu{n}");
    r.fake
        .sysfs
        .write_file(format!("{dir}/online"), "0")
        .unwrap();
    r.fake
        .sysfs
        .on_write(format!("{dir}/online"), move |sysfs, _, data| {
            if data == b"1" {
                sysfs.write_file("/sys/devices/system/cpu/online", format!("0-{n}"))?;
            }
            Ok(())
        });
}

#[tokio::test(start_paused = true)]
async fn online_cpu_mem_retries_until_the_vcpus_exist() {
    let r = Pod::devices("").await;
    cpus(&r, "0");
    let mem = "/sys/devices/system/memory";
    r.fake
        .sysfs
        .write_file(format!("{mem}/memory0/online"), "1")
        .unwrap();
    r.fake
        .sysfs
        .write_file(format!("{mem}/memory32/online"), "0")
        .unwrap();
    r.fake
        .sysfs
        .write_file(format!("{mem}/block_size_bytes"), "8000000")
        .unwrap();
    for path in [
        "/kubepods/pod1/ctr1",
        "/kubepods/pod1/ctr2",
        "/kubepods/pod1/ctr3",
    ] {
        r.fake.cgroups.create(path).unwrap();
    }
    let targets = vec![
        CpusetTarget {
            cgroup_path: "/kubepods/pod1/ctr1".into(),
            cpus: Some("1".into()),
        },
        CpusetTarget {
            cgroup_path: "/kubepods/pod1/ctr2".into(),
            cpus: Some("0-7".into()),
        },
        CpusetTarget {
            cgroup_path: "/kubepods/pod1/ctr3".into(),
            cpus: None,
        },
    ];
    let host = r.fake.host();
    let task = tokio::spawn(async move {
        let start = Instant::now();
        let result = device::online_cpu_mem(&*host.sysfs, &*host.cgroups, 2, false, &targets).await;
        (result, start.elapsed())
    });
    // QEMU creates the vCPU lazily: it shows up 200 ms later.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!task.is_finished());
    plug_cpu(&r, 1);
    let (result, elapsed) = task.await.unwrap();
    result.unwrap();
    assert!(elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(300));
    assert_eq!(
        r.fake
            .sysfs
            .contents(format!("{mem}/memory32/online"))
            .unwrap(),
        b"1"
    );
    let cpuset = |path: &str| {
        let state = r.fake.cgroups.state(path).unwrap();
        state
            .resources
            .cpu()
            .as_ref()
            .and_then(|c| c.cpus().clone())
    };
    assert_eq!(cpuset("/kubepods").as_deref(), Some("0-1"));
    assert_eq!(cpuset("/kubepods/pod1").as_deref(), Some("0-1"));
    assert_eq!(cpuset("/kubepods/pod1/ctr1").as_deref(), Some("1"));
    // ctr2 asked for CPUs the guest lacks: it keeps the guest's set.
    assert_eq!(cpuset("/kubepods/pod1/ctr2").as_deref(), Some("0-1"));
    assert_eq!(cpuset("/kubepods/pod1/ctr3").as_deref(), Some("0-1"));
}

#[tokio::test(start_paused = true)]
async fn online_cpu_mem_gives_up_after_100_retries_and_skips_when_enough() {
    let r = Pod::devices("").await;
    cpus(&r, "0");
    let host = r.fake.host();
    let start = Instant::now();
    let err = device::online_cpu_mem(&*host.sysfs, &*host.cgroups, 2, true, &[])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to online 2 CPU(s) after 100 retries (1 online)"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(5));

    cpus(&r, "0-3");
    plug_cpu(&r, 4);
    device::online_cpu_mem(&*host.sysfs, &*host.cgroups, 2, true, &[])
        .await
        .unwrap();
    assert!(
        r.fake.sysfs.writes().is_empty(),
        "{:?}",
        r.fake.sysfs.writes()
    );
}

#[tokio::test(start_paused = true)]
async fn mem_hotplug_by_probe_writes_hex_addresses() {
    let r = Pod::devices("").await;
    r.fake
        .sysfs
        .write_file("/sys/devices/system/memory/probe", "")
        .unwrap();
    let host = r.fake.host();
    device::mem_hotplug_by_probe(&*host.sysfs, &[0x1_0000_0000, 0x1_0800_0000]).unwrap();
    let writes: Vec<_> = r.fake.sysfs.writes().into_iter().map(|(_, d)| d).collect();
    assert_eq!(writes, [b"0x100000000".to_vec(), b"0x108000000".to_vec()]);
    r.fake
        .sysfs
        .remove("/sys/devices/system/memory/probe")
        .unwrap();
    let err = device::mem_hotplug_by_probe(&*host.sysfs, &[0xABC]).unwrap_err();
    assert!(err.to_string().contains("0xABC"), "{err}");
}
