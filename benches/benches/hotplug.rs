//! Hotplug latency on the fakes: CreateContainer with a `blk` storage on PCI path 02/00 waits
//! for the disk; the fake VMM then plugs a virtio-blk device, and the time is taken from the
//! plug (the guest model emitting its PCI, virtio and block uevents) to the CreateContainer
//! reply (disk found, storage mounted, container created). Floor: a Check on the same
//! connection.

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
