//! The task that feeds the kernel's uevents into the [`DeviceWatcher`].
//!
//! # Receive errors
//!
//! Device waits depend on this loop, so it outlives every error a working source can return:
//! a failed receive (`ENOBUFS`, `EAGAIN`, `EINTR`, `ENOMEM`, `EIO`...) is logged and the loop
//! receives again, at once the first time, then after a delay that doubles from 10 ms up to
//! 1 s (tokio time) while failures follow one another; a receive that succeeds ends the streak.
//! Only a source that is broken for good (a closed stream, or `EBADF`, `ENOTSOCK`, `EINVAL`,
//! `EFAULT`, `EOPNOTSUPP`: the socket itself is unusable) ends the loop, with an error log.
//!
//! # Lost events (`ENOBUFS`)
//!
//! `ENOBUFS` means the kernel dropped uevents because the socket's receive buffer was full
//! (the real source asks for 16 MiB, so it takes a large burst). The agent cannot know which
//! events were lost; what it does about them:
//!
//! - Lookups (storage, CreateContainer devices) check the watcher, then sysfs, then wait (see
//!   `device/lookup.rs`). A device that appeared while its `add` was lost is in sysfs, so any
//!   lookup that starts after the overflow still finds it, as a cold-plugged device.
//! - A wait already pending when its device's `add` was lost is not woken: it times out with a
//!   clear error (`DEADLINE_EXCEEDED`) unless a later event of the device matches, and a retried
//!   request then finds the device in sysfs. No rescan of PCI, block or SCSI devices is done.
//! - Hot-added memory blocks whose `add` was lost would stay offline: after an overflow the
//!   loop onlines every offline memory block, as those events would have (OnlineCPUMem does the
//!   same when the runtime sends it after a memory hotplug).
//! - A lost `remove` leaves the watcher believing in the device until an `add` at the same
//!   devpath replaces it; a lookup of it may then return a stale answer, as it would have if the
//!   device were unplugged just after the lookup.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::hotplug::online_offline_memory;
use super::uevent::Uevent;
use super::watcher::DeviceWatcher;
use crate::host::{Sysfs, UeventSource};

/// The delay before the second receive of a failure streak...
const BACKOFF_FIRST: Duration = Duration::from_millis(10);
/// ...doubled for each further failure, up to this.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Reads uevents until the source is broken for good (see the module docs): parses each, drops
/// malformed ones with a warning, onlines hot-added memory blocks, and hands the rest to
/// `watcher`. Returns the error that ended it.
pub async fn watch_uevents(
    source: Arc<dyn UeventSource>,
    watcher: Arc<DeviceWatcher>,
    sysfs: Arc<dyn Sysfs>,
) -> io::Error {
    let mut streak = Streak::default();
    loop {
        let raw = match source.recv().await {
            Ok(raw) => {
                streak.succeeded();
                raw
            }
            Err(e) if is_permanent(&e) => {
                tracing::error!(
                    error = %e,
                    "uevent source broken: the uevent loop ends, waits for hot-plugged devices \
                     will time out"
                );
                return e;
            }
            Err(e) => {
                if e.raw_os_error() == Some(libc::ENOBUFS) {
                    after_overflow(&*sysfs);
                }
                let delay = streak.failed(&e);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                continue;
            }
        };
        let event = match Uevent::parse(&raw) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, len = raw.len(), "dropping malformed uevent");
                continue;
            }
        };
        tracing::debug!(
            action = %event.action,
            devpath = %event.devpath,
            subsystem = %event.subsystem,
            devname = %event.devname,
            seqnum = event.seqnum,
            "uevent"
        );
        if event.is_add() && event.subsystem == "memory" {
            online_memory_block(&*sysfs, &event);
        }
        watcher.handle(event);
    }
}

/// Whether a receive error means the source can never deliver again.
fn is_permanent(e: &io::Error) -> bool {
    if let Some(errno) = e.raw_os_error() {
        return matches!(
            errno,
            libc::EBADF | libc::ENOTSOCK | libc::EINVAL | libc::EFAULT | libc::EOPNOTSUPP
        );
    }
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof | io::ErrorKind::NotConnected
    )
}

/// Consecutive failed receives: logging and backoff.
#[derive(Debug, Default)]
struct Streak {
    failures: u32,
}

impl Streak {
    /// Counts a failed receive, logs it (the first three of a streak, then the 4th, 8th, 16th...
    /// so a stuck source does not flood the log) and says how long to wait before the next.
    fn failed(&mut self, e: &io::Error) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let n = self.failures;
        if e.kind() == io::ErrorKind::Interrupted {
            tracing::debug!(failures = n, "uevent receive interrupted; retrying");
        } else if n <= 3 || n.is_power_of_two() {
            tracing::warn!(error = %e, failures = n, "uevent receive failed; retrying");
        }
        backoff(n)
    }

    /// A receive succeeded: the streak ends.
    fn succeeded(&mut self) {
        if self.failures > 1 {
            tracing::info!(failures = self.failures, "uevent source recovered");
        }
        self.failures = 0;
    }
}

/// The wait before the next receive after `failures` consecutive failures: none after one,
/// then 10 ms, 20 ms, 40 ms... up to 1 s.
fn backoff(failures: u32) -> Duration {
    if failures < 2 {
        return Duration::ZERO;
    }
    let doublings = (failures - 2).min(16);
    BACKOFF_FIRST
        .saturating_mul(1u32 << doublings)
        .min(BACKOFF_MAX)
}

/// The kernel dropped uevents: brings up memory blocks whose `add` may have been lost.
fn after_overflow(sysfs: &dyn Sysfs) {
    tracing::warn!(
        "uevent socket overflowed (ENOBUFS): events were lost; later device lookups fall back \
         to sysfs, offline memory blocks are onlined now"
    );
    match online_offline_memory(sysfs) {
        Ok(0) => {}
        Ok(onlined) => tracing::info!(onlined, "memory blocks onlined after the overflow"),
        Err(e) => tracing::warn!(error = %e, "cannot look for offline memory blocks"),
    }
}

/// Hot-added memory arrives offline; the agent onlines each block as it appears (Kata does
/// the same). Failures are logged: the block stays offline, nothing else is affected.
fn online_memory_block(sysfs: &dyn Sysfs, event: &Uevent) {
    let online = format!("/sys{}/online", event.devpath);
    if !online.starts_with("/sys/devices/system/memory/") {
        return;
    }
    match sysfs.read_string(Path::new(&online)) {
        Ok(state) if state == "1" => {}
        Ok(_) => {
            if let Err(e) = sysfs.write(Path::new(&online), b"1") {
                tracing::warn!(error = %e, block = %event.devpath, "cannot online memory block");
            } else {
                tracing::info!(block = %event.devpath, "memory block onlined");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, block = %event.devpath, "cannot read memory block state")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_second() {
        let delays: Vec<u128> = (0..12).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(
            delays,
            [0, 0, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]
        );
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn only_a_broken_socket_or_a_closed_stream_is_permanent() {
        let os = io::Error::from_raw_os_error;
        for transient in [
            libc::ENOBUFS,
            libc::EAGAIN,
            libc::EINTR,
            libc::ENOMEM,
            libc::EIO,
        ] {
            assert!(!is_permanent(&os(transient)), "{transient}");
        }
        for permanent in [libc::EBADF, libc::ENOTSOCK, libc::EINVAL] {
            assert!(is_permanent(&os(permanent)), "{permanent}");
        }
        assert!(is_permanent(&io::Error::new(
            io::ErrorKind::BrokenPipe,
            "closed"
        )));
        assert!(!is_permanent(&io::Error::other("odd")));
    }
}
