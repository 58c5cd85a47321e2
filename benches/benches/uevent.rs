//! Uevent handling cost: parse one raw kernel datagram and hand it to the device watcher, which
//! already knows 1,000 unrelated devices and has a request waiting for a device that is not
//! this one (every event is checked against pending waits).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use agent_fakes::uevent_datagram;
use criterion::{Criterion, criterion_group, criterion_main};
use kata_agent::device::{DeviceWatcher, Uevent, UeventMatcher};

/// Waits for `/dev/vdz`, which never comes.
struct Never;

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("block device vdz")
    }
}

impl UeventMatcher for Never {
    fn matches(&self, event: &Uevent) -> bool {
        event.subsystem == "block" && event.devname == "vdz"
    }
}

fn block_add(n: usize) -> Vec<u8> {
    let devpath = format!("/devices/pci0000:00/0000:00:02.0/0000:01:00.0/virtio{n}/block/vd{n}");
    uevent_datagram(
        "add",
        &devpath,
        &[
            ("SUBSYSTEM", "block"),
            ("MAJOR", "254"),
            ("MINOR", &n.to_string()),
            ("DEVNAME", &format!("vd{n}")),
            ("DEVTYPE", "disk"),
        ],
        n as u64,
    )
}

fn parse_and_match(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let watcher = Arc::new(DeviceWatcher::new());
    for n in 0..1000 {
        watcher.handle(Uevent::parse(&block_add(n)).expect("parse"));
    }
    let waiting = watcher.clone();
    let _wait = rt.spawn(async move {
        let _ = waiting
            .wait_for(Box::new(Never), Duration::from_secs(3600))
            .await;
    });
    rt.block_on(async {
        while watcher.pending() == 0 {
            tokio::task::yield_now().await;
        }
    });

    let raw = block_add(5000);
    c.bench_function("uevent_parse_and_match_1000_known", |b| {
        b.iter(|| watcher.handle(Uevent::parse(&raw).expect("parse")))
    });
    c.bench_function("uevent_parse_only", |b| {
        b.iter(|| Uevent::parse(&raw).expect("parse"))
    });
}

criterion_group!(benches, parse_and_match);
criterion_main!(benches);
