//! [`SpanRecord`]: one finished span, and its JSON in the shape Kata's agent exports
//! (opentelemetry-sdk 0.17's serde form of `SpanData`), which Kata's trace forwarder reads.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value, json};

/// The attribute limit of opentelemetry-sdk 0.17 (reported as `max_len`).
const MAX_LEN: u32 = 128;

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// Text.
    String(String),
    /// A signed integer.
    I64(i64),
    /// A boolean.
    Bool(bool),
    /// A float.
    F64(f64),
}

/// A finished span.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRecord {
    /// Its trace.
    pub trace_id: u128,
    /// Its own id.
    pub span_id: u64,
    /// The parent's id; 0 for a root.
    pub parent_span_id: u64,
    /// Whether the parent is the host's (from `traceparent`).
    pub remote_parent: bool,
    /// Its name (`create_container`).
    pub name: String,
    /// When it started.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Its attributes, in the order recorded (a later value of a key replaces it).
    pub attributes: Vec<(String, AttrValue)>,
    /// The error it ended with, if any.
    pub error: Option<String>,
}

/// `SystemTime` as serde writes it.
#[derive(Serialize)]
struct Time {
    secs_since_epoch: u64,
    nanos_since_epoch: u32,
}

fn time(t: SystemTime) -> Time {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Time {
        secs_since_epoch: d.as_secs(),
        nanos_since_epoch: d.subsec_nanos(),
    }
}

fn value(v: &AttrValue) -> Value {
    match v {
        AttrValue::String(s) => json!({ "String": s }),
        AttrValue::I64(i) => json!({ "I64": i }),
        AttrValue::Bool(b) => json!({ "Bool": b }),
        AttrValue::F64(f) => json!({ "F64": f }),
    }
}

#[derive(Serialize)]
struct SpanContext {
    trace_id: u128,
    span_id: u64,
    trace_flags: u8,
    is_remote: bool,
    trace_state: Option<()>,
}

#[derive(Serialize)]
struct Attributes<'a> {
    map: Map<String, Value>,
    evict_list: Vec<&'a str>,
    max_len: u32,
    dropped_count: u32,
}

#[derive(Serialize)]
struct EmptyQueue {
    queue: Option<()>,
    max_len: u32,
    dropped_count: u32,
}

/// opentelemetry-sdk 0.17's `SpanData`, as its serde derive writes it.
#[derive(Serialize)]
struct SpanData<'a> {
    span_context: SpanContext,
    parent_span_id: u64,
    span_kind: &'static str,
    name: &'a str,
    start_time: Time,
    end_time: Time,
    attributes: Attributes<'a>,
    events: EmptyQueue,
    links: EmptyQueue,
    status_code: &'static str,
    status_message: &'a str,
    resource: Value,
}

impl SpanRecord {
    /// Sets attribute `key` (replacing an earlier value).
    pub fn set(&mut self, key: &str, v: AttrValue) {
        match self.attributes.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = v,
            None => self.attributes.push((key.to_owned(), v)),
        }
    }

    /// The span as Kata's agent serialises `SpanData` (the 128-bit trace id as a plain JSON
    /// number, which is why this is text and not a `serde_json::Value`).
    pub fn to_json(&self, service: &str) -> String {
        let (status_code, status_message) = match &self.error {
            Some(message) => ("Error", message.as_str()),
            None => ("Unset", ""),
        };
        let empty = || EmptyQueue {
            queue: None,
            max_len: MAX_LEN,
            dropped_count: 0,
        };
        let data = SpanData {
            span_context: SpanContext {
                trace_id: self.trace_id,
                span_id: self.span_id,
                trace_flags: 1,
                is_remote: false,
                trace_state: None,
            },
            parent_span_id: self.parent_span_id,
            span_kind: "Internal",
            name: &self.name,
            start_time: time(self.start),
            end_time: time(self.end),
            attributes: Attributes {
                map: self
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), value(v)))
                    .collect(),
                evict_list: self.attributes.iter().map(|(k, _)| k.as_str()).collect(),
                max_len: MAX_LEN,
                dropped_count: 0,
            },
            events: empty(),
            links: empty(),
            status_code,
            status_message,
            resource: json!({"attrs": {"service.name": {"String": service}}}),
        };
        // Only strings, numbers and maps of them: serialisation cannot fail.
        serde_json::to_string(&data).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn serialises_as_kata_span_data() {
        let start = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let mut span = SpanRecord {
            trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736,
            span_id: 7,
            parent_span_id: 0x00f067aa0ba902b7,
            remote_parent: true,
            name: "create_container".into(),
            start,
            end: start + Duration::from_millis(3),
            attributes: Vec::new(),
            error: None,
        };
        span.set("container_id", AttrValue::String("c1".into()));
        span.set("count", AttrValue::I64(2));
        span.set("count", AttrValue::I64(3));
        let text = span.to_json("kata-agent");
        // The u128 trace id is a plain JSON number, as serde writes it.
        assert!(
            text.contains("\"trace_id\":100985939111033328018442752961257817910,"),
            "{text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["parent_span_id"], 0x00f067aa0ba902b7u64);
        assert_eq!(v["name"], "create_container");
        assert_eq!(v["span_kind"], "Internal");
        assert_eq!(v["start_time"]["secs_since_epoch"], 1_700_000_000u64);
        assert_eq!(v["start_time"]["nanos_since_epoch"], 5);
        assert_eq!(v["attributes"]["map"]["container_id"]["String"], "c1");
        assert_eq!(v["attributes"]["map"]["count"]["I64"], 3);
        assert_eq!(
            v["attributes"]["evict_list"],
            json!(["container_id", "count"])
        );
        assert_eq!(v["status_code"], "Unset");
        assert_eq!(v["events"]["max_len"], 128);
        span.error = Some("NOT_FOUND".into());
        let v: Value = serde_json::from_str(&span.to_json("kata-agent")).unwrap();
        assert_eq!(v["status_code"], "Error");
    }
}
