//! `FakeUevents`: an injectable uevent stream carrying kernel-shaped datagrams.

use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use kata_agent::host::UeventSource;
use tokio::sync::{Mutex as AsyncMutex, mpsc};

use crate::faults::{Faults, Op};

/// Builds a datagram as the kernel sends it:
/// `ACTION@DEVPATH\0ACTION=..\0DEVPATH=..\0KEY=VALUE\0...SEQNUM=..\0`.
///
/// `fields` follow `DEVPATH` in the given order (the kernel puts `SUBSYSTEM` first, then
/// `MAJOR`, `MINOR`, `DEVNAME`...); `SEQNUM` comes last.
pub fn uevent_datagram(
    action: &str,
    devpath: &str,
    fields: &[(&str, &str)],
    seqnum: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + 32 * fields.len());
    let mut push = |part: &str| {
        out.extend_from_slice(part.as_bytes());
        out.push(0);
    };
    push(&format!("{action}@{devpath}"));
    push(&format!("ACTION={action}"));
    push(&format!("DEVPATH={devpath}"));
    for (key, value) in fields {
        push(&format!("{key}={value}"));
    }
    push(&format!("SEQNUM={seqnum}"));
    out
}

/// A uevent stream the test or fake VMM feeds.
///
/// Datagrams queue without bound until [`UeventSource::recv`] takes them, in order. An
/// injected fault on [`Op::UeventRecv`] fails one `recv` and leaves the queue alone.
#[derive(Debug)]
pub struct FakeUevents {
    faults: Faults,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    /// An async mutex: a receiver is awaited while locked, which a std mutex must never be.
    rx: AsyncMutex<mpsc::UnboundedReceiver<Vec<u8>>>,
    /// The last SEQNUM handed out.
    seqnum: AtomicU64,
    /// Datagrams sent and not yet received.
    queued: AtomicUsize,
}

impl FakeUevents {
    /// An empty stream whose first [`FakeUevents::emit`] carries `SEQNUM=1`.
    pub fn new(faults: Faults) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        FakeUevents {
            faults,
            tx,
            rx: AsyncMutex::new(rx),
            seqnum: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
        }
    }

    /// Queues a raw datagram as is.
    pub fn send(&self, datagram: impl Into<Vec<u8>>) {
        // Counted before sending so a concurrent `recv` never sees the count below zero. The
        // receiver lives as long as `self`, so sending cannot fail.
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(datagram.into()).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Queues a kernel-shaped datagram (see [`uevent_datagram`]) with the next SEQNUM, and
    /// returns that SEQNUM.
    pub fn emit(&self, action: &str, devpath: &str, fields: &[(&str, &str)]) -> u64 {
        let seqnum = self.seqnum.fetch_add(1, Ordering::Relaxed) + 1;
        self.send(uevent_datagram(action, devpath, fields, seqnum));
        seqnum
    }

    /// The SEQNUM the next [`FakeUevents::emit`] will use.
    pub fn next_seqnum(&self) -> u64 {
        self.seqnum.load(Ordering::Relaxed) + 1
    }

    /// Datagrams queued and not yet received.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl UeventSource for FakeUevents {
    async fn recv(&self) -> io::Result<Vec<u8>> {
        self.faults.check(Op::UeventRecv)?;
        let mut rx = self.rx.lock().await;
        // `self` holds a sender, so the channel never closes.
        let datagram = rx
            .recv()
            .await
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "uevent channel closed"))?;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        Ok(datagram)
    }
}
