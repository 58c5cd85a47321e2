//! The host's side of the agent's other ports: connections to the debug console and the log
//! port, and the trace collector the agent connects out to. Scenario steps `connect`, `send`,
//! `receive`, `listen` and `spans` drive them; reads wait on virtual time, up to [`WAIT`].

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use kata_agent::host::{Connection, Incoming, ServerAddr, Transport};
use kata_agent::telemetry::HOST_CID;
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::ScenarioError;
use super::vm::GuestVm;

/// How long a read waits for what it expects.
pub const WAIT: Duration = Duration::from_secs(10);

/// Runs `fut` (a read fed by the real kernel: a pty's echo is processed on a kernel worker)
/// with virtual time held still, for up to [`WAIT`] of real time: a blocking task in flight
/// stops paused time from jumping ahead while the runtime merely waits for the kernel.
async fn in_real_time<T>(fut: impl std::future::Future<Output = T>) -> Option<T> {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let hold = tokio::task::spawn_blocking(move || {
        let _ = wait.recv_timeout(WAIT);
    });
    let result = tokio::select! {
        value = fut => Some(value),
        _ = hold => None,
    };
    drop(done);
    result
}

/// Named connections and listeners of one scenario.
#[derive(Default)]
pub struct Ports {
    conns: BTreeMap<String, Box<dyn Connection>>,
    /// Bytes read from a connection and not yet consumed.
    unread: BTreeMap<String, Vec<u8>>,
    listeners: BTreeMap<String, Incoming>,
}

impl Ports {
    /// Connects to the agent's vsock port `port` as the host would, retrying every
    /// millisecond (of virtual time) while nobody listens yet, up to [`WAIT`].
    pub async fn connect(
        &mut self,
        vm: &GuestVm,
        port: u32,
        name: &str,
    ) -> Result<(), ScenarioError> {
        let addr = vm.agent.config().server_addr.port_addr(port);
        let deadline = tokio::time::Instant::now() + WAIT;
        let conn = loop {
            match vm.fake.transport.connect(&addr) {
                Ok(conn) => break conn,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(ScenarioError::Stream {
                        what: format!("connect to {addr}"),
                        source: e,
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        };
        self.conns.insert(name.to_owned(), Box::new(conn));
        self.unread.insert(name.to_owned(), Vec::new());
        Ok(())
    }

    /// Listens on the host's vsock port `port` (CID 2), where the agent connects out.
    pub fn listen(&mut self, vm: &GuestVm, port: u32, name: &str) -> Result<(), ScenarioError> {
        let addr = ServerAddr::Vsock {
            cid: HOST_CID,
            port,
        };
        let incoming = vm
            .fake
            .transport
            .listen(&addr)
            .map_err(ScenarioError::stream(format!("listen on {addr}")))?;
        self.listeners.insert(name.to_owned(), incoming);
        Ok(())
    }

    /// Writes `data` to connection `name`.
    pub async fn send(&mut self, name: &str, data: &str) -> Result<(), ScenarioError> {
        let conn = self.conn(name)?;
        conn.write_all(data.as_bytes())
            .await
            .map_err(ScenarioError::stream(format!("send to {name}")))
    }

    /// Reads from `name` until its text contains `until`, or until it closes when `until`
    /// is `None`; returns the text read.
    pub async fn receive(
        &mut self,
        name: &str,
        until: Option<&str>,
    ) -> Result<String, ScenarioError> {
        let mut buf = self.unread.remove(name).unwrap_or_default();
        let result = in_real_time(async {
            loop {
                let text = String::from_utf8_lossy(&buf);
                if let Some(needle) = until
                    && let Some(at) = text.find(needle)
                {
                    return Ok(at + needle.len());
                }
                let mut chunk = [0u8; 4096];
                let conn = self.conn(name)?;
                match conn.read(&mut chunk).await {
                    Ok(0) if until.is_none() => return Ok(buf.len()),
                    Ok(0) => {
                        return Err(ScenarioError::Mismatch(format!(
                            "{name} closed before {until:?}"
                        )));
                    }
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) => return Err(ScenarioError::stream(format!("read {name}"))(e)),
                }
            }
        })
        .await;
        let end = match result {
            Some(end) => end?,
            None => {
                let seen = String::from_utf8_lossy(&buf).into_owned();
                return Err(ScenarioError::Mismatch(format!(
                    "{name}: no {until:?} within {WAIT:?}; got {seen:?}"
                )));
            }
        };
        let rest = buf.split_off(end);
        self.unread.insert(name.to_owned(), rest);
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Reads span frames from the agent's connection to listener `name` until one matches
    /// each of `expect` in order (a subset of `{name, trace_id, parent_span_id}`, ids in hex);
    /// returns the matched names.
    pub async fn spans(
        &mut self,
        name: &str,
        expect: &[Json],
    ) -> Result<Vec<String>, ScenarioError> {
        if !self.conns.contains_key(name) {
            let listener = self
                .listeners
                .get_mut(name)
                .ok_or_else(|| ScenarioError::Invalid(format!("no listener named {name:?}")))?;
            let conn = in_real_time(listener.next())
                .await
                .ok_or_else(|| {
                    ScenarioError::Mismatch(format!("the agent never connected to {name}"))
                })?
                .ok_or_else(|| ScenarioError::Mismatch(format!("{name} closed")))?
                .map_err(ScenarioError::stream(format!("accept on {name}")))?;
            self.conns.insert(name.to_owned(), conn);
        }
        let mut matched = Vec::new();
        for want in expect {
            loop {
                let frame = in_real_time(read_frame(self.conn(name)?))
                    .await
                    .ok_or_else(|| {
                        ScenarioError::Mismatch(format!("no span like {want} within {WAIT:?}"))
                    })??;
                if let Some(span_name) = span_matches(&frame, want) {
                    matched.push(span_name);
                    break;
                }
            }
        }
        Ok(matched)
    }

    fn conn(&mut self, name: &str) -> Result<&mut Box<dyn Connection>, ScenarioError> {
        self.conns
            .get_mut(name)
            .ok_or_else(|| ScenarioError::Invalid(format!("no connection named {name:?}")))
    }
}

/// One span: its JSON text.
async fn read_frame(conn: &mut Box<dyn Connection>) -> Result<String, ScenarioError> {
    let mut len = [0u8; 8];
    conn.read_exact(&mut len)
        .await
        .map_err(ScenarioError::stream("span header"))?;
    let len = u64::from_be_bytes(len);
    if len > 1 << 20 {
        return Err(ScenarioError::Mismatch(format!("span of {len} bytes")));
    }
    let mut payload = vec![0u8; len as usize];
    conn.read_exact(&mut payload)
        .await
        .map_err(ScenarioError::stream("span payload"))?;
    String::from_utf8(payload).map_err(|e| ScenarioError::Mismatch(e.to_string()))
}

/// The digits of a JSON number field `key` in `text` (a 128-bit id does not fit a JSON value).
fn number_field(text: &str, key: &str) -> Option<u128> {
    let at = text.find(&format!("\"{key}\":"))? + key.len() + 3;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The span's name if `frame` matches `want`.
fn span_matches(frame: &str, want: &Json) -> Option<String> {
    let value: Json = serde_json::from_str(frame).ok()?;
    let name = value["name"].as_str()?.to_owned();
    let hex = |key: &str| want.get(key).and_then(Json::as_str).map(str::to_owned);
    let ok = want
        .get("name")
        .and_then(Json::as_str)
        .is_none_or(|n| n == name)
        && hex("trace_id").is_none_or(|t| {
            number_field(frame, "trace_id").is_some_and(|id| format!("{id:032x}") == t)
        })
        && hex("parent_span_id").is_none_or(|p| {
            number_field(frame, "parent_span_id").is_some_and(|id| format!("{id:016x}") == p)
        });
    ok.then_some(name)
}
