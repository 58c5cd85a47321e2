//! Block storage drivers over the device lookups, on paused time: hot-plugged and cold-plugged
//! disks, `/dev` sources, timeouts, and AddSwap.

use std::path::Path;
use std::time::Duration;

use agent_testing::pod::Pod;
use kata_agent::host::NodeKind;
use kata_agent::storage::{self, StorageContext, StorageError, StorageRequest};

const BLK_PCI: &str = "/devices/pci0000:00/0000:00:02.0/0000:01:00.0";

#[tokio::test(start_paused = true)]
async fn blk_waits_for_the_pci_disk_and_mounts_it() {
    let r = Pod::devices("").await;
    let storages = r.agent.storages().clone();
    let req = StorageRequest::new("blk", "02/00", "ext4", "/run/kata-containers/sandbox/vol")
        .options(["ro", "noatime"]);
    let add = tokio::spawn(async move {
        storages
            .add(&StorageContext::container("c"), &[req], "c")
            .await
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!add.is_finished());
    r.plug_virtio_blk(BLK_PCI, 0, "vda", 0);
    add.await.unwrap().unwrap();
    let m = r
        .fake
        .mounter
        .top(Path::new("/run/kata-containers/sandbox/vol"))
        .unwrap();
    assert_eq!((m.source.as_str(), m.fstype.as_str()), ("/dev/vda", "ext4"));
    assert!(m.is_readonly());
    r.agent.storages().release("c").unwrap();
    assert!(
        r.fake
            .mounter
            .top(Path::new("/run/kata-containers/sandbox/vol"))
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn blk_dev_sources_must_be_block_devices_and_missing_disks_time_out() {
    let r = Pod::devices("agent.hotplug_timeout=2s").await;
    let s = r.agent.storages();
    r.fake
        .sysfs
        .mknod("/dev/vdz", NodeKind::BlockDevice, 254, 32)
        .unwrap();
    r.fake
        .sysfs
        .mknod("/dev/ttyS0", NodeKind::CharDevice, 4, 64)
        .unwrap();
    let ok = StorageRequest::new(
        "blk",
        "/dev/vdz",
        "bind",
        "/run/kata-containers/sandbox/raw",
    )
    .options(["bind"]);
    s.add(&StorageContext::sandbox(), &[ok], "s").await.unwrap();
    let m = r
        .fake
        .mounter
        .top(Path::new("/run/kata-containers/sandbox/raw"))
        .unwrap();
    assert_eq!(m.source, "/dev/vdz");
    assert_eq!(
        r.fake.sysfs.kind("/run/kata-containers/sandbox/raw"),
        Some(NodeKind::File),
        "file mount point"
    );

    let tty = StorageRequest::new(
        "blk",
        "/dev/ttyS0",
        "ext4",
        "/run/kata-containers/sandbox/t",
    );
    let err = s
        .add(&StorageContext::sandbox(), &[tty], "s")
        .await
        .unwrap_err();
    assert!(err.is_invalid_input(), "{err}");

    let start = tokio::time::Instant::now();
    let never = StorageRequest::new("blk", "03/00", "ext4", "/run/kata-containers/sandbox/n");
    let err = s
        .add(&StorageContext::sandbox(), &[never], "s")
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(
        r.fake
            .mounter
            .top(Path::new("/run/kata-containers/sandbox/n"))
            .is_none()
    );

    let bad = StorageRequest::new("blk", "zz/qq", "ext4", "/run/kata-containers/sandbox/q");
    assert!(
        s.add(&StorageContext::sandbox(), &[bad], "s")
            .await
            .unwrap_err()
            .is_invalid_input()
    );
    let mkfs = StorageRequest::new("blk", "/dev/vdz", "ext4", "/run/kata-containers/sandbox/m")
        .driver_options(["create_filesystem"]);
    let err = s
        .add(&StorageContext::sandbox(), &[mkfs], "s")
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Unsupported(_)), "{err}");
}

#[tokio::test(start_paused = true)]
async fn mmioblk_scsi_and_nvdimm_find_their_cold_plugged_disks() {
    let r = Pod::devices("").await;
    r.block_sysfs(
        "/devices/platform/a003e00.virtio_mmio/virtio1/block/vdb",
        "vdb",
        254,
        16,
    );
    let pmem =
        "/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0012:00/ndbus0/region0/namespace0.0/block/pmem0";
    r.block_sysfs(pmem, "pmem0", 259, 0);
    let lun = "/devices/pci0000:00/0000:00:04.0/0000:03:00.0/virtio2/host0/target0:0:1/0:0:1:2";
    r.block_sysfs(&format!("{lun}/block/sda"), "sda", 8, 0);
    r.fake
        .sysfs
        .symlink("/sys/bus/scsi/devices/0:0:1:2", format!("../../..{lun}"))
        .unwrap();
    let reqs = [
        StorageRequest::new(
            "mmioblk",
            "/dev/vdb",
            "ext4",
            "/run/kata-containers/sandbox/m",
        ),
        StorageRequest::new("scsi", "1:2", "xfs", "/run/kata-containers/sandbox/s"),
        StorageRequest::new(
            "nvdimm",
            "/dev/pmem0",
            "ext4",
            "/run/kata-containers/sandbox/p",
        )
        .options(["dax"]),
    ];
    r.agent
        .storages()
        .add(&StorageContext::sandbox(), &reqs, "s")
        .await
        .unwrap();
    let top = |p: &str| r.fake.mounter.top(Path::new(p)).unwrap();
    assert_eq!(top("/run/kata-containers/sandbox/m").source, "/dev/vdb");
    assert_eq!(
        (
            top("/run/kata-containers/sandbox/s").source.as_str(),
            top("/run/kata-containers/sandbox/s").fstype.as_str()
        ),
        ("/dev/sda", "xfs")
    );
    assert_eq!(
        top("/run/kata-containers/sandbox/p").data.as_deref(),
        Some("dax")
    );
    r.agent.storages().release_all().unwrap();
    assert!(r.fake.mounter.table().is_empty());
}

#[tokio::test(start_paused = true)]
async fn swap_goes_on_the_pci_disk_or_the_path() {
    let r = Pod::devices("").await;
    r.plug_virtio_blk(BLK_PCI, 0, "vdc", 32);
    r.settle().await;
    let s = r.agent.storages();
    storage::add_swap_pci(s.host(), s.devices(), &"02/00".parse().unwrap())
        .await
        .unwrap();
    storage::add_swap_path(s.host(), Path::new("/run/swapfile")).unwrap();
    assert_eq!(
        r.fake.system.swaps(),
        [
            Path::new("/dev/vdc").to_owned(),
            Path::new("/run/swapfile").to_owned()
        ]
    );
    let err = storage::add_swap_path(s.host(), Path::new("/run/swapfile")).unwrap_err();
    assert!(err.to_string().contains("swapon /run/swapfile"), "{err}");
    assert!(
        storage::add_swap_path(s.host(), Path::new("rel"))
            .unwrap_err()
            .is_invalid_input()
    );
}
