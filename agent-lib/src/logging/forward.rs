//! [`LogForwarder`]: with `agent.log_vport`, the agent's log lines go to the host over that
//! port instead of stdout. Lines logged before the host connects (or while it is away) wait in
//! a bounded buffer and are sent first; lines that do not fit are counted, and the count is
//! reported in the stream, in a log line of its own, before the next line sent.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use futures::StreamExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::Config;
use crate::host::{Connection, ServerAddr, Transport};

/// How many bytes of lines wait for the host (a guest logs a few KiB at boot).
pub const LOG_BUFFER: usize = 1024 * 1024;

#[derive(Debug, Default)]
struct Queue {
    lines: VecDeque<Vec<u8>>,
    bytes: usize,
    dropped: u64,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Notify,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent (each change
        // is one push or pop), so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, line: Vec<u8>) {
        let mut queue = self.lock();
        if queue.bytes + line.len() > self.capacity {
            queue.dropped += 1;
            return;
        }
        queue.bytes += line.len();
        queue.lines.push_back(line);
        drop(queue);
        self.ready.notify_one();
    }
}

/// The log's destination when it is forwarded: a [`MakeWriter`] for the subscriber, and the
/// task that serves the host's connections ([`LogForwarder::serve`]). Clones share the buffer.
#[derive(Clone, Debug)]
pub struct LogForwarder {
    shared: Arc<Shared>,
}

impl LogForwarder {
    /// A forwarder keeping at most `capacity` bytes of lines for the host.
    pub fn new(capacity: usize) -> Self {
        LogForwarder {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                ready: Notify::new(),
                capacity,
            }),
        }
    }

    /// Bytes of lines waiting and lines dropped so far.
    pub fn pending(&self) -> (usize, u64) {
        let queue = self.shared.lock();
        (queue.bytes, queue.dropped)
    }

    /// Listens on `addr` and streams the log to each host connection in turn, until the
    /// returned future is dropped. A connection that fails loses only the line being written;
    /// the rest wait for the next one.
    pub async fn serve(self, transport: Arc<dyn Transport>, addr: ServerAddr) -> io::Result<()> {
        let mut incoming = transport.listen(&addr)?;
        tracing::info!(%addr, "forwarding the log to the host");
        while let Some(conn) = incoming.next().await {
            match conn {
                Ok(conn) => {
                    if let Err(e) = self.stream_to(conn).await {
                        tracing::debug!(error = %e, "log connection closed");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a log connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
        Ok(())
    }

    async fn stream_to(&self, mut conn: Box<dyn Connection>) -> io::Result<()> {
        loop {
            let (dropped, line) = {
                let mut queue = self.shared.lock();
                let dropped = std::mem::take(&mut queue.dropped);
                let line = queue.lines.pop_front();
                if let Some(line) = &line {
                    queue.bytes -= line.len();
                }
                (dropped, line)
            };
            if dropped > 0
                && let Err(e) = conn.write_all(&dropped_line(dropped)).await
            {
                self.shared.lock().dropped += dropped;
                self.requeue(line);
                return Err(e);
            }
            match line {
                Some(line) => {
                    if let Err(e) = conn.write_all(&line).await {
                        self.requeue(Some(line));
                        return Err(e);
                    }
                }
                None => {
                    conn.flush().await?;
                    self.shared.ready.notified().await;
                }
            }
        }
    }

    /// Puts back a line a failed connection did not take, first in line.
    fn requeue(&self, line: Option<Vec<u8>>) {
        if let Some(line) = line {
            let mut queue = self.shared.lock();
            queue.bytes += line.len();
            queue.lines.push_front(line);
        }
    }
}

/// The log port (`agent.log_vport`), if one is set and usable; an error names a port that
/// clashes with the agent's own or the debug console's (the log then stays on stdout).
pub fn log_port(config: &Config) -> Result<Option<u32>, String> {
    let Some(port) = config.log_vport else {
        return Ok(None);
    };
    let own = match &config.server_addr {
        ServerAddr::Vsock { port, .. } => *port,
        _ => ServerAddr::DEFAULT_VSOCK_PORT,
    };
    if port == own || Some(port) == config.debug_console_vport {
        return Err(format!(
            "agent.log_vport={port} is taken by the agent or the debug console: logging to stdout"
        ));
    }
    Ok(Some(port))
}

/// The log line reporting `count` lines dropped because the buffer was full.
pub fn dropped_line(count: u64) -> Vec<u8> {
    let line = json!({
        "msg": "log lines dropped: the buffer for the host was full",
        "dropped": count,
        "level": "WARN",
        "ts": humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
        "pid": std::process::id().to_string(),
        "subsystem": "logging",
        "source": "agent",
        "name": "kata-agent",
    });
    let mut bytes = line.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

/// One event's bytes, queued as a line when the subscriber is done with it.
#[derive(Debug)]
pub struct LogWriter {
    shared: Arc<Shared>,
    line: Vec<u8>,
}

impl io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.shared.push(std::mem::take(&mut self.line));
        }
    }
}

impl<'a> MakeWriter<'a> for LogForwarder {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter {
            shared: self.shared.clone(),
            line: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use tokio::io::{AsyncBufReadExt, BufReader};

    use super::*;
    use crate::host::{Incoming, Transport};

    /// A transport with one listener fed by hand.
    struct OneListener(Mutex<Option<Incoming>>);

    impl Transport for OneListener {
        fn listen(&self, _: &ServerAddr) -> io::Result<Incoming> {
            self.0
                .lock()
                .unwrap()
                .take()
                .ok_or_else(|| io::Error::from(io::ErrorKind::AddrInUse))
        }

        fn dial(
            &self,
            _: &ServerAddr,
        ) -> futures::future::BoxFuture<'static, io::Result<Box<dyn Connection>>> {
            Box::pin(async { Err(io::Error::from(io::ErrorKind::ConnectionRefused)) })
        }
    }

    fn log(forwarder: &LogForwarder, text: &str) {
        let mut w = forwarder.make_writer();
        writeln!(w, "{text}").unwrap();
    }

    #[tokio::test]
    async fn early_lines_come_first_then_live_ones_and_drops_are_reported() {
        let forwarder = LogForwarder::new(16);
        log(&forwarder, "one");
        log(&forwarder, "two");
        log(&forwarder, "three is too long to fit");
        assert_eq!(forwarder.pending(), (8, 1));
        let (tx, rx) = futures::channel::mpsc::unbounded::<io::Result<Box<dyn Connection>>>();
        let transport = Arc::new(OneListener(Mutex::new(Some(rx.boxed()))));
        let task = tokio::spawn(
            forwarder
                .clone()
                .serve(transport, ServerAddr::vsock_any(1025)),
        );
        let (agent_end, host_end) = tokio::io::duplex(4096);
        tx.unbounded_send(Ok(Box::new(agent_end))).unwrap();
        let mut lines = BufReader::new(host_end).lines();
        let first = lines.next_line().await.unwrap().unwrap();
        let report: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(report["dropped"], 1);
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "one");
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "two");
        log(&forwarder, "four");
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "four");
        assert_eq!(forwarder.pending(), (0, 0));

        // The host goes away: lines wait for the next connection.
        drop(lines);
        log(&forwarder, "five");
        log(&forwarder, "six");
        let (agent_end, host_end) = tokio::io::duplex(4096);
        tx.unbounded_send(Ok(Box::new(agent_end))).unwrap();
        let mut lines = BufReader::new(host_end).lines();
        // "five" may have been taken by the dead connection: its failed write puts it back.
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "five");
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "six");
        task.abort();
    }
}
