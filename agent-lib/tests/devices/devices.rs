//! Device lookups on the fakes, on paused tokio time: hotplug before, during and after the
//! wait, cold plug for every device type, PCI paths through bridges, uevent bursts.

use std::time::Duration;

use agent_testing::pod::Pod;
use kata_agent::device::{
    self, DeviceError, PciPath, UeventMatcher, VirtioBlkMmioMatcher, WaitError,
};
use kata_agent::host::NodeKind;
use tokio::time::Instant;

const BLK_PCI: &str = "/devices/pci0000:00/0000:00:02.0/0000:01:00.0";

fn path(text: &str) -> PciPath {
    text.parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn blk_announced_before_the_request_is_found_at_once() {
    let r = Pod::devices("").await;
    // Only the uevent: nothing in sysfs below the port.
    r.block_event(
        "add",
        &format!("{BLK_PCI}/virtio0/block/vda"),
        "vda",
        254,
        0,
    );
    r.settle().await;
    let start = Instant::now();
    let disk = device::virtio_blk_pci(&r.ctx, &path("02/00"))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(disk.devname, "vda");
    assert_eq!(disk.path.to_str(), Some("/dev/vda"));
    assert_eq!((disk.major, disk.minor), (254, 0));
}

#[tokio::test(start_paused = true)]
async fn blk_plugged_during_the_wait_ends_it() {
    let r = Pod::devices("").await;
    let ctx = r.ctx.clone();
    let wait = tokio::spawn(async move { device::virtio_blk_pci(&ctx, &path("02/00")).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!wait.is_finished());
    assert_eq!(r.agent.devices().pending(), 1);
    r.plug_virtio_blk(BLK_PCI, 3, "vdb", 16);
    let disk = wait.await.unwrap().unwrap();
    assert_eq!(
        (disk.devname.as_str(), disk.major, disk.minor),
        ("vdb", 254, 16)
    );
    assert_eq!(r.agent.devices().pending(), 0);
}

#[tokio::test(start_paused = true)]
async fn blk_that_never_comes_times_out_clearly_and_deregisters() {
    let r = Pod::devices("").await;
    let start = Instant::now();
    let err = device::virtio_blk_pci(&r.ctx, &path("02/00"))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert!(err.is_timeout(), "{err}");
    let text = err.to_string();
    assert!(text.contains("3s"), "{text}");
    assert!(text.contains(BLK_PCI), "{text}");
    assert_eq!(r.agent.devices().pending(), 0);
    // A late arrival finds no one waiting and harms nothing.
    r.plug_virtio_blk(BLK_PCI, 0, "vda", 0);
    r.settle().await;
    assert_eq!(r.agent.devices().pending(), 0);
    assert!(r.fake.leftovers().is_empty(), "{}", r.fake.leftovers());
}

#[tokio::test(start_paused = true)]
async fn hotplug_timeout_comes_from_the_command_line() {
    let r = Pod::devices("agent.hotplug_timeout=10s").await;
    assert_eq!(r.ctx.hotplug_timeout, Duration::from_secs(10));
    let ctx = r.ctx.clone();
    let wait = tokio::spawn(async move { device::virtio_blk_pci(&ctx, &path("03/00")).await });
    tokio::time::sleep(Duration::from_millis(9_500)).await;
    assert!(!wait.is_finished(), "gave up before 10s");
    r.plug_virtio_blk(
        "/devices/pci0000:00/0000:00:03.0/0000:02:00.0",
        1,
        "vdc",
        32,
    );
    assert_eq!(wait.await.unwrap().unwrap().devname, "vdc");

    let start = Instant::now();
    let err = device::virtio_blk_mmio(&r.ctx, "/dev/vdz")
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert!(
        err.to_string().contains("10s") && err.to_string().contains("vdz"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_wanted_disk_is_picked_out_of_a_burst() {
    let r = Pod::devices("").await;
    let ctx = r.ctx.clone();
    let wait = tokio::spawn(async move { device::virtio_blk_pci(&ctx, &path("04/00")).await });
    tokio::task::yield_now().await;
    r.noise(30);
    // Another disk first, and a partition of the wanted one (not a whole disk).
    r.plug_virtio_blk(BLK_PCI, 0, "vda", 0);
    let wanted = "/devices/pci0000:00/0000:00:04.0/0000:03:00.0";
    r.block_event(
        "add",
        &format!("{wanted}/virtio2/block/vdb/vdb1"),
        "vdb1",
        254,
        17,
    );
    r.plug_virtio_blk(wanted, 2, "vdb", 16);
    r.noise(30);
    let disk = wait.await.unwrap().unwrap();
    assert_eq!((disk.devname.as_str(), disk.minor), ("vdb", 16));
}

#[tokio::test(start_paused = true)]
async fn a_removed_disk_is_waited_for_again_and_readded() {
    let r = Pod::devices("").await;
    let devpath = r.plug_virtio_blk(BLK_PCI, 0, "vda", 0);
    r.settle().await;
    r.block_event("remove", &devpath, "vda", 254, 0);
    r.fake
        .sysfs
        .remove(format!("/sys{BLK_PCI}/virtio0"))
        .unwrap();
    r.fake.sysfs.remove("/sys/class/block/vda").unwrap();
    r.fake.sysfs.remove("/dev/vda").unwrap();
    r.settle().await;
    let ctx = r.ctx.clone();
    let wait = tokio::spawn(async move { device::virtio_blk_pci(&ctx, &path("02/00")).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!wait.is_finished(), "a removed disk was still found");
    r.plug_virtio_blk(BLK_PCI, 1, "vda", 16);
    let disk = wait.await.unwrap().unwrap();
    assert_eq!(disk.minor, 16);
}

#[tokio::test(start_paused = true)]
async fn pci_paths_resolve_through_two_bridges_and_expanders() {
    let r = Pod::devices("").await;
    let sysfs = &r.fake.sysfs;
    // 02 (root port, bus 01) / 03 (switch port with pci_bus 05) / 01.
    let switch = "/sys/devices/pci0000:00/0000:00:02.0/0000:01:03.0";
    sysfs.mkdir_p(format!("{switch}/pci_bus/0000:05")).unwrap();
    let dev = device::pci::resolve(&*r.ctx.sysfs, &path("02/03/01.2")).unwrap();
    assert_eq!(
        dev.devpath,
        "/devices/pci0000:00/0000:00:02.0/0000:01:03.0/0000:05:01.2"
    );
    assert_eq!(dev.address.to_string(), "0000:05:01.2");

    // A bridge without pci_bus/: the bus of the devices below it.
    let bare = "/sys/devices/pci0000:00/0000:00:03.0/0000:02:07.0";
    sysfs.mkdir_p(format!("{bare}/0000:09:00.0")).unwrap();
    let dev = device::pci::resolve(&*r.ctx.sysfs, &path("03/07/00")).unwrap();
    assert_eq!(dev.address.to_string(), "0000:09:00.0");

    // pxb-pcie: root complex 0x20, its root port 00 leads to bus 21.
    sysfs
        .mkdir_p("/sys/devices/pci0000:20/0000:20:00.0/pci_bus/0000:21")
        .unwrap();
    let dev = device::pci::resolve(&*r.ctx.sysfs, &path("20/00/02")).unwrap();
    assert_eq!(dev.devpath, "/devices/pci0000:20/0000:20:00.0/0000:21:02.0");

    // Missing bridge, two buses.
    let err = device::pci::resolve(&*r.ctx.sysfs, &path("09/00")).unwrap_err();
    assert!(err.to_string().contains("0000:00:09.0"), "{err}");
    sysfs.mkdir_p(format!("{switch}/pci_bus/0000:06")).unwrap();
    let err = device::pci::resolve(&*r.ctx.sysfs, &path("02/03/01")).unwrap_err();
    assert!(err.to_string().contains("exactly one"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn cold_plugged_devices_are_found_in_sysfs_without_a_uevent() {
    let r = Pod::devices("").await;
    // virtio-blk PCI
    r.block_sysfs(&format!("{BLK_PCI}/virtio0/block/vda"), "vda", 254, 0);
    // virtio-blk MMIO
    r.block_sysfs(
        "/devices/platform/a003e00.virtio_mmio/virtio1/block/vdb",
        "vdb",
        254,
        16,
    );
    // pmem
    r.block_sysfs(
        "/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0012:00/ndbus0/region0/namespace0.0/block/pmem0",
        "pmem0",
        259,
        0,
    );
    // SCSI 1:2
    let lun = "/devices/pci0000:00/0000:00:04.0/0000:03:00.0/virtio2/host0/target0:0:1/0:0:1:2";
    r.block_sysfs(&format!("{lun}/block/sda"), "sda", 8, 0);
    r.fake
        .sysfs
        .symlink("/sys/bus/scsi/devices/0:0:1:2", format!("../../..{lun}"))
        .unwrap();
    // A PCI device and a VFIO group
    r.fake
        .sysfs
        .mkdir_p("/sys/devices/pci0000:00/0000:00:03.0/0000:02:00.0")
        .unwrap();
    r.fake
        .sysfs
        .mkdir_p("/sys/devices/virtual/vfio/12")
        .unwrap();
    r.fake
        .sysfs
        .mknod("/dev/vfio/12", NodeKind::CharDevice, 243, 0)
        .unwrap();

    let start = Instant::now();
    let ctx = &r.ctx;
    let blk = device::virtio_blk_pci(ctx, &path("02/00")).await.unwrap();
    assert_eq!(
        (blk.devname.as_str(), blk.major, blk.minor),
        ("vda", 254, 0)
    );
    let mmio = device::virtio_blk_mmio(ctx, "/dev/vdb").await.unwrap();
    assert_eq!((mmio.major, mmio.minor), (254, 16));
    let pmem = device::pmem(ctx, "/dev/pmem0").await.unwrap();
    assert_eq!((pmem.major, pmem.minor), (259, 0));
    let sda = device::scsi(ctx, "1:2").await.unwrap();
    assert_eq!((sda.devname.as_str(), sda.major), ("sda", 8));
    let pci = device::pci_device(ctx, &path("03/00")).await.unwrap();
    assert_eq!(pci.address.to_string(), "0000:02:00.0");
    let group = device::vfio_group(ctx, 12).await.unwrap();
    assert_eq!(
        (group.path.to_str(), group.major),
        (Some("/dev/vfio/12"), 243)
    );
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "a cold-plugged device was waited for"
    );
    // A cold-plugged SCSI disk needs no scan.
    assert!(
        r.fake.sysfs.writes().is_empty(),
        "{:?}",
        r.fake.sysfs.writes()
    );

    // pmem is only pmem under LNXSYSTM: vdb is not one.
    let err = device::pmem(ctx, "/dev/vdb").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn scsi_asks_every_host_to_scan_then_waits() {
    let r = Pod::devices("").await;
    let sysfs = &r.fake.sysfs;
    for host in ["host0", "host1"] {
        sysfs
            .write_file(format!("/sys/class/scsi_host/{host}/scan"), "")
            .unwrap();
    }
    let uevents = r.fake.uevents.clone();
    sysfs.on_write("/sys/class/scsi_host/host0/scan", move |_, _, data| {
        assert_eq!(data, b"0 3 7");
        let lun = "/devices/pci0000:00/0000:00:04.0/0000:03:00.0/virtio2/host0/target0:0:3/0:0:3:7";
        uevents.emit(
            "add",
            &format!("{lun}/block/sdb"),
            &[
                ("SUBSYSTEM", "block"),
                ("MAJOR", "8"),
                ("MINOR", "16"),
                ("DEVNAME", "sdb"),
            ],
        );
        Ok(())
    });
    let disk = device::scsi(&r.ctx, "3:7").await.unwrap();
    assert_eq!((disk.devname.as_str(), disk.minor), ("sdb", 16));
    let writes: Vec<_> = sysfs
        .writes()
        .into_iter()
        .map(|(p, d)| (p.display().to_string(), String::from_utf8(d).unwrap()))
        .collect();
    assert_eq!(
        writes,
        [
            (
                "/sys/class/scsi_host/host0/scan".to_owned(),
                "0 3 7".to_owned()
            ),
            (
                "/sys/class/scsi_host/host1/scan".to_owned(),
                "0 3 7".to_owned()
            ),
        ]
    );
    let err = device::scsi(&r.ctx, "3").await.unwrap_err();
    assert!(err.is_invalid_request(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn malformed_uevents_are_dropped_and_the_loop_goes_on() {
    let r = Pod::devices("").await;
    r.fake.uevents.send(b"".to_vec());
    r.fake.uevents.send(b"libudev\0ACTION=add\0".to_vec());
    r.fake
        .uevents
        .send(b"add@/x\0ACTION=add\0garbage\0".to_vec());
    r.fake
        .uevents
        .send(b"add@/x\0ACTION=add\0DEVPATH=/x\0SUBSYSTEM=block\0SEQNUM=zz\0".to_vec());
    r.block_event("add", "/devices/virtual/block/loop7", "loop7", 7, 7);
    r.settle().await;
    assert_eq!(r.agent.devices().known(), 1);
    let matcher = VirtioBlkMmioMatcher::new("loop7");
    let event = r.agent.devices().find(&matcher).unwrap();
    assert!(matcher.matches(&event));
    let disk = device::virtio_blk_mmio(&r.ctx, "/dev/loop7").await.unwrap();
    assert_eq!((disk.major, disk.minor), (7, 7));
}

#[tokio::test(start_paused = true)]
async fn bad_requests_are_refused_before_any_wait() {
    let r = Pod::devices("").await;
    for bad in ["vda", "/dev/", "/dev/a/b", "/dev/.."] {
        let err = device::virtio_blk_mmio(&r.ctx, bad).await.unwrap_err();
        assert!(err.is_invalid_request(), "{bad}: {err}");
    }
    let err = "02/40".parse::<PciPath>().unwrap_err();
    assert!(err.to_string().contains("02/40"), "{err}");
    assert!(matches!(
        device::virtio_blk_pci(&r.ctx, &path("0a/00")).await,
        Err(DeviceError::Pci(_))
    ));
    assert!(!matches!(
        device::vfio_group(&r.ctx, 1).await,
        Err(DeviceError::Wait(WaitError::Stopped(_)))
    ));
}
