//! Private namespaces for real-kernel tests: a dedicated thread unshares them, so nothing the
//! test mounts or configures reaches the host or the other tests.

use std::future::Future;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

/// Runs `f` on a dedicated thread in new namespaces `flags`; a new mount namespace is made
/// rprivate first. A panic in `f` is the caller's.
pub fn on_thread_in<T: Send + 'static>(
    flags: CloneFlags,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let thread = std::thread::spawn(move || {
        unshare(flags).unwrap_or_else(|e| panic!("unshare({flags:?}): {e}"));
        if flags.contains(CloneFlags::CLONE_NEWNS) {
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .expect("make / rprivate");
        }
        f()
    });
    match thread.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs the future `f` makes on a current-thread runtime (IO and time enabled) on a dedicated
/// thread in new namespaces `flags` (sockets bind to the namespaces of their thread).
pub fn block_on_in<F, Fut, T>(flags: CloneFlags, f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    on_thread_in(flags, move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(f())
    })
}
