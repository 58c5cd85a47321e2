//! The OOM event queue GetOOMEvent long-polls: container ids, oldest first.

use std::sync::{Mutex, PoisonError};

use tokio::sync::mpsc;

use crate::host::OomEvents;

/// How many OOM events wait for GetOOMEvent before forwarding waits (Kata: 100).
pub const OOM_QUEUE_CAPACITY: usize = 100;

/// The queue between the cgroup OOM watchers and GetOOMEvent.
#[derive(Debug)]
pub struct OomQueue {
    tx: Mutex<Option<mpsc::Sender<String>>>,
    rx: tokio::sync::Mutex<mpsc::Receiver<String>>,
}

impl Default for OomQueue {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(OOM_QUEUE_CAPACITY);
        OomQueue {
            tx: Mutex::new(Some(tx)),
            rx: tokio::sync::Mutex::new(rx),
        }
    }
}

impl OomQueue {
    fn sender(&self) -> Option<mpsc::Sender<String>> {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forwards each OOM kill of `events` as `container_id` until the cgroup goes away or the
    /// queue is closed.
    pub(crate) fn forward(
        self: &std::sync::Arc<Self>,
        container_id: String,
        mut events: OomEvents,
    ) {
        let queue = self.clone();
        tokio::spawn(async move {
            while events.recv().await.is_some() {
                tracing::info!(container = %container_id, "OOM kill");
                let Some(tx) = queue.sender() else { break };
                if tx.send(container_id.clone()).await.is_err() {
                    break;
                }
            }
        });
    }

    /// The next container that had an OOM kill; `None` once the queue is closed and empty.
    pub async fn next(&self) -> Option<String> {
        self.rx.lock().await.recv().await
    }

    /// Closes the queue (DestroySandbox): pending and later [`OomQueue::next`] calls end.
    pub fn close(&self) {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}
