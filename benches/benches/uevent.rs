//! Uevent handling cost: parse one raw kernel datagram and hand it to the device watcher, which
//! already knows 1,000 unrelated devices and has a request waiting, with the agent's own
//! virtio-blk PCI matcher, for a disk that is not this one (every event is checked against
//! pending waits). The gate also counts its instructions under callgrind (`uevent-cost`).

use agent_benches::uevents::{Watching, block_add};
use criterion::{Criterion, criterion_group, criterion_main};
use kata_agent::device::Uevent;

fn parse_and_match(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let watching = rt.block_on(Watching::start());
    let watcher = watching.watcher.clone();
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
