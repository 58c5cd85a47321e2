//! `FakeUevents` semantics.

use std::time::Duration;

use agent_fakes::{FakeUevents, Faults, Op, uevent_datagram};
use kata_agent::host::UeventSource;
use nix::errno::Errno;

#[test]
fn datagrams_are_kernel_shaped() {
    let raw = uevent_datagram(
        "add",
        "/devices/virtual/misc/vsock",
        &[("SUBSYSTEM", "misc"), ("MAJOR", "10")],
        7,
    );
    assert_eq!(
        raw,
        b"add@/devices/virtual/misc/vsock\0ACTION=add\0DEVPATH=/devices/virtual/misc/vsock\0\
          SUBSYSTEM=misc\0MAJOR=10\0SEQNUM=7\0"
    );
}

#[tokio::test]
async fn events_arrive_in_order_with_increasing_seqnum() {
    let u = FakeUevents::new(Faults::new());
    assert_eq!(u.emit("add", "/bus/virtio", &[("SUBSYSTEM", "bus")]), 1);
    u.send(b"raw\0".to_vec());
    assert_eq!(u.emit("remove", "/bus/virtio", &[("SUBSYSTEM", "bus")]), 2);
    assert_eq!(u.queued(), 3);
    assert!(u.recv().await.unwrap().ends_with(b"SEQNUM=1\0"));
    assert_eq!(u.recv().await.unwrap(), b"raw\0");
    assert!(u.recv().await.unwrap().starts_with(b"remove@/bus/virtio\0"));
    assert_eq!(u.queued(), 0);
    assert_eq!(u.next_seqnum(), 3);
}

#[tokio::test(start_paused = true)]
async fn recv_waits_for_the_next_event() {
    let u = std::sync::Arc::new(FakeUevents::new(Faults::new()));
    let sender = u.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        sender.emit("add", "/devices/x", &[]);
    });
    let started = tokio::time::Instant::now();
    let raw = u.recv().await.unwrap();
    assert!(raw.starts_with(b"add@/devices/x\0"));
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

#[tokio::test]
async fn a_failed_recv_keeps_the_event() {
    let faults = Faults::new();
    let u = FakeUevents::new(faults.clone());
    u.emit("add", "/devices/x", &[]);
    faults.fail_next(Op::UeventRecv, Errno::ENOBUFS);
    let err = u.recv().await.unwrap_err();
    assert_eq!(err.raw_os_error(), Some(Errno::ENOBUFS as i32));
    assert_eq!(u.queued(), 1);
    assert!(u.recv().await.unwrap().starts_with(b"add@/devices/x\0"));
}
