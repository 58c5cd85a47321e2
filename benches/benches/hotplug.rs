//! Hotplug latency on the fakes: CreateContainer with a `blk` storage on PCI path 02/00 waits
//! for the disk; the fake VMM then plugs a virtio-blk device, and the time is taken from the
//! plug (the guest model emitting its PCI, virtio and block uevents) to the CreateContainer
//! reply (disk found, storage mounted, container created). Floor: a Check on the same
//! connection.
//!
//! Where the time goes (measured 2026-12-06): nothing on the path waits for a timer. Under
//! `strace -f` every `epoll_wait` of the run has a timeout of 0 or -1 and there is no sleep; the
//! syscalls are the container's stdio pipes (`pipe2`, `fcntl`, `epoll_ctl`, `close`), as in
//! create alone. The bench's client, the agent, its uevent loop and the fake VMM's guest model
//! all run as tasks of one current-thread runtime, so the reply comes after the CPU work of
//! every step in turn: the guest model's sysfs nodes and PCI, virtio and block uevents, their
//! parse and match, the device watcher waking CreateContainer, the storage mount on the fakes,
//! the create itself, and each task hand-off between them. In the same gate runs it was
//! 494–742 µs against 135–248 µs for CreateContainer+StartContainer alone (2–3x, not the 6x
//! seen when create alone was 84 µs).

use std::time::{Duration, Instant};

use agent_benches::{FakePod, calls};
use criterion::{Criterion, criterion_group, criterion_main};

fn hotplug(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut pod = rt.block_on(FakePod::boot()).expect("fake pod");
    let mut group = c.benchmark_group("hotplug_fake");
    group.bench_function("floor_check", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let began = Instant::now();
                for _ in 0..iters {
                    calls::check(&pod.vm.client).await.expect("Check");
                }
                began.elapsed()
            })
        })
    });
    group.bench_function("virtio_blk_to_create_container", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let cid = pod.id("h");
                    total += pod.hotplug_blk(&cid).await.expect("hotplug");
                }
                total
            })
        })
    });
    group.finish();
    rt.block_on(pod.vm.shutdown());
}

criterion_group!(benches, hotplug);
criterion_main!(benches);
