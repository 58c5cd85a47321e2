//! Kata issue #13452: a stuck StatsContainer must not block SignalProcess (or anything else).

use std::time::Duration;

use agent_testing::pod::Pod;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_stats_read_does_not_block_signals() {
    let pod = Pod::with_sandbox().await;
    pod.run("c1", &["sleep"]).await;
    pod.exec("c1", "e1", &["sleep"], false).await.unwrap();
    let hold = pod.fake.cgroups.hold_stats();
    let client = pod.client.clone();
    let stats = tokio::spawn(async move { client.stats_container("c1").await });
    tokio::time::timeout(Duration::from_secs(10), async {
        while hold.waiting() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("StatsContainer never reached the cgroup read");

    // With the stats read stuck, the container is still fully usable.
    tokio::time::timeout(Duration::from_secs(10), async {
        pod.signal("c1", "e1", libc::SIGKILL).await.unwrap();
        assert_eq!(pod.wait("c1", "e1").await.unwrap(), 137);
        pod.exec("c1", "e2", &["hello"], false).await.unwrap();
        assert_eq!(pod.read_all("c1", "e2").await, b"hello\n");
    })
    .await
    .expect("SignalProcess was blocked by StatsContainer");
    assert!(!stats.is_finished());
    drop(hold);
    stats.await.unwrap().unwrap();
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}
