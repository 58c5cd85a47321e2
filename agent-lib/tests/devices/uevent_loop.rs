//! The uevent loop under receive faults, on the fakes and paused tokio time: transient errors
//! are retried (with a backoff while they repeat), an overflow brings offline memory blocks up,
//! and only a source broken for good ends the loop.

use std::sync::Arc;
use std::time::Duration;

use agent_fakes::{FakeHost, Op};
use agent_testing::pod::Pod;
use kata_agent::device::{self, DeviceWatcher, PciPath, watch_uevents};
use nix::errno::Errno;
use tokio::time::Instant;

const BLK_PCI: &str = "/devices/pci0000:00/0000:00:02.0/0000:01:00.0";
const MEMORY: &str = "/sys/devices/system/memory";

fn online(fake: &FakeHost, block: &str) -> String {
    let bytes = fake
        .sysfs
        .contents(format!("{MEMORY}/{block}/online"))
        .expect("online file");
    String::from_utf8_lossy(&bytes).trim().to_owned()
}

#[tokio::test(start_paused = true)]
async fn transient_receive_errors_do_not_stop_the_loop() {
    for errno in [
        Errno::ENOBUFS,
        Errno::EAGAIN,
        Errno::EINTR,
        Errno::ENOMEM,
        Errno::EIO,
    ] {
        let r = Pod::devices("").await;
        r.fake.faults.fail_next(Op::UeventRecv, errno);
        r.plug_virtio_blk(BLK_PCI, 0, "vda", 0);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(r.fake.faults.pending(), 0, "{errno}: fault never fired");
        // Later events still arrive: a wait for the disk ends with it at once.
        let started = Instant::now();
        let path: PciPath = "02/00".parse().unwrap();
        let disk = device::virtio_blk_pci(&r.ctx, &path).await.unwrap();
        assert_eq!(disk.devname, "vda", "{errno}");
        assert_eq!(started.elapsed(), Duration::ZERO, "{errno}");
        r.block_event("add", "/devices/virtual/block/loop7", "loop7", 7, 7);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(r.fake.uevents.queued(), 0, "{errno}: the loop stopped");
    }
}

#[tokio::test(start_paused = true)]
async fn repeated_failures_back_off_on_tokio_time() {
    let r = Pod::devices("").await;
    for nth in 1..=5 {
        r.fake.faults.fail_nth(Op::UeventRecv, nth, Errno::ENOMEM);
    }
    r.block_event("add", "/devices/virtual/block/loop7", "loop7", 7, 7);
    // Retried at once, then 10, 20, 40 and 80 ms apart: the event is taken at 150 ms.
    tokio::time::sleep(Duration::from_millis(149)).await;
    assert_eq!(r.fake.faults.calls(Op::UeventRecv), 5);
    assert_eq!(r.agent.devices().known(), 0);
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(r.agent.devices().known(), 1);
    assert_eq!(r.fake.faults.pending(), 0);
    // The streak ended: the next failure is retried at once again.
    r.fake.faults.fail_next(Op::UeventRecv, Errno::EIO);
    r.block_event("add", "/devices/virtual/block/loop8", "loop8", 7, 8);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(r.agent.devices().known(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_overflow_onlines_memory_blocks_whose_add_was_lost() {
    let r = Pod::devices("").await;
    r.fake
        .sysfs
        .write_file(format!("{MEMORY}/memory0/online"), "1\n")
        .unwrap();
    // Hot-added; its `add` uevent was among the events the kernel dropped.
    r.fake
        .sysfs
        .write_file(format!("{MEMORY}/memory32/online"), "0\n")
        .unwrap();
    r.fake.faults.fail_next(Op::UeventRecv, Errno::ENOBUFS);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(online(&r.fake, "memory32"), "1");
    assert_eq!(online(&r.fake, "memory0"), "1");
    assert_eq!(r.fake.faults.calls(Op::SysfsWrite), 1);
}

#[tokio::test(start_paused = true)]
async fn other_failures_rescan_nothing() {
    let r = Pod::devices("").await;
    r.fake
        .sysfs
        .write_file(format!("{MEMORY}/memory32/online"), "0\n")
        .unwrap();
    r.fake.faults.fail_next(Op::UeventRecv, Errno::EIO);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(r.fake.faults.pending(), 0);
    assert_eq!(online(&r.fake, "memory32"), "0");
    assert_eq!(r.fake.faults.calls(Op::SysfsReadDir), 0);
}

#[tokio::test(start_paused = true)]
async fn a_disk_whose_add_was_lost_is_found_in_sysfs_by_a_later_lookup() {
    let r = Pod::devices("").await;
    // The disk is in sysfs and /dev; its uevents were dropped with the overflow.
    r.block_sysfs(&format!("{BLK_PCI}/virtio0/block/vda"), "vda", 254, 0);
    r.fake.faults.fail_next(Op::UeventRecv, Errno::ENOBUFS);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(r.agent.devices().known(), 0);
    let path: PciPath = "02/00".parse().unwrap();
    let disk = device::virtio_blk_pci(&r.ctx, &path).await.unwrap();
    assert_eq!((disk.devname.as_str(), disk.major), ("vda", 254));
}

#[tokio::test(start_paused = true)]
async fn only_a_broken_source_ends_the_loop() {
    for errno in [Errno::EBADF, Errno::ENOTSOCK, Errno::EINVAL] {
        let fake = FakeHost::new();
        fake.faults.fail_nth(Op::UeventRecv, 1, Errno::EIO);
        fake.faults.fail_nth(Op::UeventRecv, 2, errno);
        let started = Instant::now();
        let err = watch_uevents(
            fake.uevents.clone(),
            Arc::new(DeviceWatcher::new()),
            fake.sysfs.clone(),
        )
        .await;
        assert_eq!(err.raw_os_error(), Some(errno as i32));
        assert_eq!(started.elapsed(), Duration::ZERO, "{errno}");
        assert_eq!(fake.faults.calls(Op::UeventRecv), 2);
    }
}

#[tokio::test(start_paused = true)]
async fn a_stuck_source_is_retried_at_most_once_a_second() {
    let r = Pod::devices("").await;
    for nth in 1..=100 {
        r.fake.faults.fail_nth(Op::UeventRecv, nth, Errno::EIO);
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    // 0 + 10 + ... + 640 ms (1270 ms) for the first 9, then one a second.
    let calls = r.fake.faults.calls(Op::UeventRecv);
    assert!((60..=70).contains(&calls), "{calls} receives in a minute");
    r.fake.faults.clear();
    r.block_event("add", "/devices/virtual/block/loop7", "loop7", 7, 7);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(r.agent.devices().known(), 1);
}
