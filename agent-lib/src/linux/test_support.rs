//! Helpers for the real-kernel tests of this module: root checks and private namespaces.

use std::future::Future;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

use crate::host::Netlink;

/// Panics with a clear message unless the test runs as root.
pub(crate) fn require_root(what: &str) {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root ({what}); run `cargo test -- --include-ignored` as root");
    }
}

/// Runs `f` on a dedicated thread inside a new, private mount namespace.
pub(crate) fn in_mount_ns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    run_on_thread(move || {
        unshare(CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .expect("make / rprivate");
        f()
    })
}

/// Runs the future `f` on a current-thread runtime on a dedicated thread inside a new network
/// namespace (sockets bind to the namespace of the thread that creates them).
pub(crate) fn in_net_ns<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    run_on_thread(move || {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        current_thread_runtime().block_on(f())
    })
}

/// A current-thread tokio runtime with IO and time enabled.
pub(crate) fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn run_on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match std::thread::spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Creates a veth pair and returns the index of `name`.
pub(crate) async fn add_veth(nl: &crate::linux::RtNetlink, name: &str, peer: &str) -> u32 {
    nl.handle()
        .link()
        .add(rtnetlink::LinkVeth::new(name, peer).build())
        .execute()
        .await
        .expect("create veth pair");
    nl.link_by_name(name).await.expect("veth link").index
}
