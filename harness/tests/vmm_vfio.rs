//! The fake VMM's reaction to the VFIO rebinding writes an agent makes (driver_override,
//! unbind, drivers_probe), through the Sysfs seam exactly as the agent calls it.

use std::path::Path;
use std::time::Duration;

use agent_fakes::FakeHost;
use agent_harness::FakeVmm;
use agent_harness::vmm::config::{DeviceKind, Hotplug, VmConfig};
use kata_agent::host::{NodeKind, Sysfs};

fn vfio(id: &str, bus: &str, driver: Option<&str>) -> Hotplug {
    let yaml = format!("hotplug: vfio\nid: {id}\nbus: {bus}\niommu_group: 4\n");
    let mut h: Hotplug = serde_yaml::from_str(&yaml).unwrap();
    h.driver = driver.map(str::to_owned);
    assert_eq!(h.kind, DeviceKind::Vfio);
    h
}

async fn settle(fake: &FakeHost) {
    tokio::time::sleep(Duration::from_millis(1)).await;
    // Drain what the agent would read.
    while fake.uevents.queued() > 0 {
        use kata_agent::host::UeventSource;
        fake.uevents.recv().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn rebinding_to_vfio_pci_creates_the_group_node_once_per_group() {
    let fake = FakeHost::new();
    let vmm = FakeVmm::boot(&VmConfig::default(), &fake).unwrap();
    vmm.hotplug(&vfio("a", "rp1", Some("nvidia"))).unwrap();
    vmm.hotplug(&vfio("b", "rp2", None)).unwrap();
    settle(&fake).await;
    let sysfs: &dyn Sysfs = &*fake.sysfs;
    let dev = "/sys/bus/pci/devices/0000:01:00.0";

    // Kata's sequence: driver_override, unbind from the current driver, drivers_probe.
    sysfs
        .write(Path::new(&format!("{dev}/driver_override")), b"vfio-pci")
        .unwrap();
    sysfs
        .write(Path::new(&format!("{dev}/driver/unbind")), b"0000:01:00.0")
        .unwrap();
    assert!(fake.sysfs.kind(format!("{dev}/driver")).is_none());
    sysfs
        .write(Path::new("/sys/bus/pci/drivers_probe"), b"0000:01:00.0")
        .unwrap();
    assert_eq!(
        sysfs
            .read_link(Path::new(&format!("{dev}/driver")))
            .unwrap(),
        Path::new("../../../../bus/pci/drivers/vfio-pci")
    );
    let node = sysfs.stat(Path::new("/dev/vfio/4")).unwrap();
    assert_eq!(
        (node.kind, node.major, node.minor),
        (NodeKind::CharDevice, 243, 4)
    );

    // The second device of the group binds without a new node.
    let dev2 = "/sys/bus/pci/devices/0000:02:00.0";
    sysfs
        .write(Path::new(&format!("{dev2}/driver_override")), b"vfio-pci")
        .unwrap();
    sysfs
        .write(Path::new("/sys/bus/pci/drivers_probe"), b"0000:02:00.0")
        .unwrap();
    settle(&fake).await;
    let log: Vec<String> = vmm
        .uevent_log()
        .iter()
        .map(|d| d.event.to_string())
        .filter(|e| !e.starts_with("add@") || e.contains("vfio"))
        .collect();
    assert_eq!(
        log,
        [
            "bind@/devices/pci0000:00/0000:00:02.0/0000:01:00.0",
            "unbind@/devices/pci0000:00/0000:00:02.0/0000:01:00.0",
            "add@/devices/virtual/vfio/4",
            "bind@/devices/pci0000:00/0000:00:02.0/0000:01:00.0",
            "bind@/devices/pci0000:00/0000:00:03.0/0000:02:00.0",
        ]
    );

    // Unbinding the one device leaves the node; the group's last one takes it away.
    sysfs
        .write(Path::new(&format!("{dev}/driver/unbind")), b"0000:01:00.0")
        .unwrap();
    assert!(fake.sysfs.kind("/dev/vfio/4").is_some());
    sysfs
        .write(Path::new(&format!("{dev2}/driver/unbind")), b"0000:02:00.0")
        .unwrap();
    assert!(fake.sysfs.kind("/dev/vfio/4").is_none());
    // Unbinding from a driver the device is not bound to is refused.
    assert!(
        sysfs
            .write(
                Path::new("/sys/bus/pci/drivers/vfio-pci/unbind"),
                b"0000:02:00.0"
            )
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn memory_and_cpu_online_writes_follow_the_kernel() {
    let fake = FakeHost::new();
    let vmm = FakeVmm::boot(&VmConfig::default(), &fake).unwrap();
    let cpu: Hotplug = serde_yaml::from_str("hotplug: cpu\ncount: 2").unwrap();
    vmm.hotplug(&cpu).unwrap();
    settle(&fake).await;
    let sysfs: &dyn Sysfs = &*fake.sysfs;
    sysfs
        .write(Path::new("/sys/devices/system/cpu/cpu2/online"), b"1")
        .unwrap();
    assert_eq!(
        sysfs
            .read_string(Path::new("/sys/devices/system/cpu/online"))
            .unwrap(),
        "0,2"
    );
    assert!(
        sysfs
            .write(Path::new("/sys/devices/system/cpu/cpu1/online"), b"yes")
            .is_err()
    );
    sysfs
        .write(Path::new("/sys/devices/system/cpu/cpu1/online"), b"1")
        .unwrap();
    assert_eq!(
        sysfs
            .read_string(Path::new("/sys/devices/system/cpu/online"))
            .unwrap(),
        "0-2"
    );
    sysfs
        .write(Path::new("/sys/devices/system/memory/memory1/online"), b"0")
        .unwrap();
    assert_eq!(
        sysfs
            .read_string(Path::new("/sys/devices/system/memory/memory1/state"))
            .unwrap(),
        "offline"
    );
}
