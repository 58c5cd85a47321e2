//! Steps on the agent's other ports: the debug console, the log port, the trace collector.

use serde::Deserialize;
use serde_yaml::Value;

/// `connect: 1026` `as: name`: the host connects to the agent's vsock port.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectStep {
    /// The agent's port.
    pub connect: u32,
    /// The connection's name.
    #[serde(rename = "as")]
    pub name: String,
}

/// `send: name` `data: "..."`: the host writes to a connection.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendStep {
    /// The connection.
    pub send: String,
    /// What to write.
    pub data: String,
}

/// `receive: name`: reads until the text contains `until` (or, without it, until the agent
/// closes the connection); `lines` must then appear in it, in this order.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveStep {
    /// The connection.
    pub receive: String,
    /// Read until this text; absent: until closed.
    #[serde(default)]
    pub until: Option<String>,
    /// Substrings the text read must hold, in order.
    #[serde(default)]
    pub lines: Vec<String>,
}

/// `listen: 10240` `as: name`: the host listens on its vsock port (CID 2).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenStep {
    /// The host's port.
    pub listen: u32,
    /// The listener's name.
    #[serde(rename = "as")]
    pub name: String,
}

/// `spans: name` `expect: [...]`: spans the agent sends to listener `name`, each a subset of
/// `{name, trace_id, parent_span_id}` (ids in hex), seen in this order.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpansStep {
    /// The listener.
    pub spans: String,
    /// The spans expected.
    pub expect: Vec<Value>,
}

/// Whether `text` holds each of `lines` in order; the first missing one otherwise.
pub fn in_order<'a>(text: &str, lines: &'a [String]) -> Result<(), &'a str> {
    let mut rest = text;
    for line in lines {
        match rest.find(line.as_str()) {
            Some(at) => rest = &rest[at + line.len()..],
            None => return Err(line),
        }
    }
    Ok(())
}
