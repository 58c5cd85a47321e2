//! OOM-kill notification for one memory cgroup, as Kata's notifier does it:
//!
//! - **v1**: an eventfd registered through `cgroup.event_control` on `memory.oom_control`. The
//!   kernel signals it on every OOM of the cgroup (and when the cgroup is removed); each wake-up
//!   re-reads the `oom_kill` counter of `memory.oom_control`.
//! - **v2**: inotify `IN_MODIFY` on `memory.events`; each wake-up re-reads its `oom_kill` counter.
//!
//! On v1 the kernel signals the eventfd when the cgroup *enters* OOM, before the OOM killer has
//! picked and killed a victim, so a wake-up may find `oom_kill` not raised yet: the counter is
//! then re-read for up to [`V1_KILL_GRACE`] (on v2 the kill itself modifies `memory.events`).
//!
//! One message goes out per kill, only when `oom_kill` goes up (an OOM that the kernel resolved
//! without killing, or an `oom_kill_disable`d cgroup that waits, sends nothing: Kata PR #8773).
//! The channel closes when the cgroup's files go away (the cgroup was removed) or the receiver is
//! dropped; the task then ends and its descriptors are closed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

use crate::host::{CgroupVersion, OomEvents};

/// How long a v1 wake-up that found no new kill keeps re-reading the counter.
const V1_KILL_GRACE: Duration = Duration::from_millis(500);
/// How often it re-reads it meanwhile.
const V1_KILL_POLL: Duration = Duration::from_millis(5);

/// Starts watching the memory cgroup directory `dir`. Must be called inside a tokio runtime.
pub(super) fn watch(version: CgroupVersion, dir: &Path) -> io::Result<OomEvents> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|e| io::Error::other(format!("watch_oom needs a tokio runtime: {e}")))?;
    let (counter_file, fd) = match version {
        CgroupVersion::V1 => (dir.join("memory.oom_control"), v1_eventfd(dir)?),
        CgroupVersion::V2 => (dir.join("memory.events"), v2_inotify(dir)?),
    };
    let start = read_oom_kills(&counter_file)?;
    let fd = {
        let _enter = handle.enter();
        // SAFETY: `fd` is an OwnedFd moved into the AsyncFd, open for its whole lifetime.
        unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE)? }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    tracing::debug!(cgroup = %dir.display(), ?version, start, "watching for OOM kills");
    let grace = match version {
        CgroupVersion::V1 => V1_KILL_GRACE,
        CgroupVersion::V2 => Duration::ZERO,
    };
    handle.spawn(run(fd, counter_file, start, grace, tx));
    Ok(rx)
}

async fn run(
    fd: AsyncFd<OwnedFd>,
    counter_file: PathBuf,
    mut seen: u64,
    grace: Duration,
    tx: mpsc::UnboundedSender<()>,
) {
    loop {
        tokio::select! {
            _ = tx.closed() => break,
            ready = fd.readable() => {
                let Ok(mut guard) = ready else { break };
                // Drain the eventfd counter or the inotify events; only the wake-up matters.
                let mut buf = [0u8; 4096];
                // SAFETY: read into a local buffer of the given size.
                let n = unsafe {
                    libc::read(fd.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                };
                if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock {
                    guard.clear_ready();
                    continue;
                }
                if n <= 0 {
                    break;
                }
                let Ok(now) = read_new_kills(&counter_file, seen, grace).await else {
                    // The cgroup is gone.
                    break;
                };
                for _ in seen..now {
                    if tx.send(()).is_err() {
                        break;
                    }
                }
                if now > seen {
                    tracing::debug!(file = %counter_file.display(), kills = now - seen, "OOM kill");
                }
                seen = seen.max(now);
            }
        }
    }
    tracing::debug!(file = %counter_file.display(), "OOM watch ended");
}

/// The `oom_kill` counter, re-read every [`V1_KILL_POLL`] for up to `grace` while it is still
/// `seen` (a kill in flight).
async fn read_new_kills(file: &Path, seen: u64, grace: Duration) -> io::Result<u64> {
    let deadline = tokio::time::Instant::now() + grace;
    loop {
        let now = read_oom_kills(file)?;
        if now > seen || tokio::time::Instant::now() >= deadline {
            return Ok(now);
        }
        tokio::time::sleep(V1_KILL_POLL).await;
    }
}

/// The `oom_kill` counter of `memory.oom_control` (v1) or `memory.events` (v2).
fn read_oom_kills(file: &Path) -> io::Result<u64> {
    let text = fs::read_to_string(file)?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

fn v1_eventfd(dir: &Path) -> io::Result<OwnedFd> {
    // SAFETY: eventfd returns a new descriptor we then own.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: see above.
    let efd = unsafe { OwnedFd::from_raw_fd(raw) };
    let control = File::open(dir.join("memory.oom_control"))?;
    let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
    OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.event_control"))?
        .write_all(line.as_bytes())?;
    // The kernel holds its own reference to memory.oom_control from here on.
    drop(control);
    Ok(efd)
}

fn v2_inotify(dir: &Path) -> io::Result<OwnedFd> {
    // SAFETY: inotify_init1 returns a new descriptor we then own.
    let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: see above.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let path = std::ffi::CString::new(
        dir.join("memory.events")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in cgroup path"))?;
    // SAFETY: a valid descriptor and C string.
    if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_is_read_from_either_file() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = dir.path().join("memory.oom_control");
        fs::write(&v1, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n").unwrap();
        assert_eq!(read_oom_kills(&v1).unwrap(), 3);
        let v2 = dir.path().join("memory.events");
        fs::write(
            &v2,
            "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(read_oom_kills(&v2).unwrap(), 1);
        assert!(read_oom_kills(&dir.path().join("gone")).is_err());
    }

    #[tokio::test]
    async fn a_kill_counted_just_after_the_wake_up_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("memory.oom_control");
        fs::write(&file, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n").unwrap();
        let later = file.clone();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            fs::write(&later, "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n").unwrap();
        });
        assert_eq!(read_new_kills(&file, 0, V1_KILL_GRACE).await.unwrap(), 1);
        writer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_kill_the_grace_ends_and_v2_does_not_wait() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("memory.events");
        fs::write(&file, "oom 1\noom_kill 2\n").unwrap();
        let start = tokio::time::Instant::now();
        assert_eq!(read_new_kills(&file, 2, V1_KILL_GRACE).await.unwrap(), 2);
        assert!(start.elapsed() >= V1_KILL_GRACE);
        let start = tokio::time::Instant::now();
        assert_eq!(read_new_kills(&file, 2, Duration::ZERO).await.unwrap(), 2);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
