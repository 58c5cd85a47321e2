//! The exporter: sends each finished span to the host's trace collector as Kata's agent
//! does — connecting out (vsock CID 2, port 10240 in a guest), each span a JSON payload after
//! its length as an 8-byte big-endian number. When nobody listens it warns once, drops spans,
//! and tries again at most every [`RETRY`].

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::span::SpanRecord;
use crate::host::{Connection, ServerAddr, Transport};

/// The host's trace collector port.
pub const TRACE_PORT: u32 = 10240;
/// The host's vsock CID.
pub const HOST_CID: u32 = 2;
/// The least time between two connection attempts.
pub const RETRY: Duration = Duration::from_secs(5);
/// How long one connection attempt may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(1);

/// Where spans go for an agent serving on `server`: the host's CID on vsock; outside a VM,
/// the server socket's `_10240` neighbour.
pub fn collector_addr(server: &ServerAddr) -> ServerAddr {
    match server {
        ServerAddr::Vsock { .. } => ServerAddr::Vsock {
            cid: HOST_CID,
            port: TRACE_PORT,
        },
        other => other.port_addr(TRACE_PORT),
    }
}

/// One span's frame: its JSON length (8 bytes, big-endian), then the JSON.
pub fn frame(span: &SpanRecord, service: &str) -> Vec<u8> {
    let payload = span.to_json(service).into_bytes();
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Sends the spans of `spans` to `addr` until the channel closes.
pub async fn export(
    mut spans: mpsc::Receiver<SpanRecord>,
    transport: Arc<dyn Transport>,
    addr: ServerAddr,
    service: &'static str,
) {
    let mut conn: Option<Box<dyn Connection>> = None;
    let mut next_try = Instant::now();
    let mut warned = false;
    let mut dropped = 0u64;
    while let Some(span) = spans.recv().await {
        if conn.is_none() && Instant::now() >= next_try {
            match tokio::time::timeout(DIAL_TIMEOUT, transport.dial(&addr)).await {
                Ok(Ok(c)) => {
                    tracing::info!(%addr, dropped, "trace collector connected");
                    conn = Some(c);
                    warned = false;
                }
                Ok(Err(e)) => {
                    if !warned {
                        tracing::warn!(%addr, error = %e, "no trace collector: spans dropped");
                        warned = true;
                    }
                    next_try = Instant::now() + RETRY;
                }
                Err(_) => next_try = Instant::now() + RETRY,
            }
        }
        let Some(c) = conn.as_mut() else {
            dropped += 1;
            continue;
        };
        if let Err(e) = c.write_all(&frame(&span, service)).await {
            tracing::warn!(%addr, error = %e, "trace collector went away: spans dropped");
            warned = true;
            conn = None;
            next_try = Instant::now() + RETRY;
            dropped += 1;
        }
    }
}
