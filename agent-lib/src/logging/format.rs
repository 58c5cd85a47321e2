//! Log lines in Kata's JSON shape, for the binary's `tracing` subscriber.
//!
//! Each event becomes one JSON object with Kata's field names: `msg`, `level` (slog's short
//! names: `INFO`, `DEBG`, ...), `ts` (RFC 3339), `pid`, `subsystem`, `source` (`agent`), `name`
//! (`kata-agent`), `version`, plus the event's own fields and those of its spans. Libraries only
//! emit events; the binary installs [`KataJsonFormat`].

use std::fmt;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats events as Kata agent JSON log lines.
#[derive(Debug, Clone)]
pub struct KataJsonFormat {
    pid: String,
    version: &'static str,
}

impl KataJsonFormat {
    /// A formatter stamping lines with this process's pid and `version`.
    pub fn new(version: &'static str) -> Self {
        KataJsonFormat {
            pid: std::process::id().to_string(),
            version,
        }
    }
}

/// slog's short level names, which Kata's log parsers expect.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERRO",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBG",
        Level::TRACE => "TRCE",
    }
}

/// The subsystem of an event: its `subsystem` field, else the agent module it came from.
fn subsystem_of(target: &str) -> String {
    let mut parts = target.split("::");
    match (parts.next(), parts.next()) {
        (Some("kata_agent"), Some(module)) => module.to_owned(),
        (Some("kata_agent") | Some("kata_agent_bin"), None) => "root".to_owned(),
        (Some(krate), _) => krate.to_owned(),
        _ => "root".to_owned(),
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(key(field), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(key(field), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(key(field), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(key(field), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(key(field), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(key(field), Value::from(format!("{value:?}")));
    }
}

fn key(field: &Field) -> String {
    match field.name() {
        "message" => "msg".to_owned(),
        name => name.to_owned(),
    }
}

impl<S, N> FormatEvent<S, N> for KataJsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut map = Map::new();
        map.insert("msg".into(), Value::from(""));
        map.insert("level".into(), Value::from(level_name(meta.level())));
        map.insert(
            "ts".into(),
            Value::from(humantime::format_rfc3339_nanos(SystemTime::now()).to_string()),
        );
        map.insert("pid".into(), Value::from(self.pid.as_str()));
        map.insert("subsystem".into(), Value::from(subsystem_of(meta.target())));
        map.insert("source".into(), Value::from("agent"));
        map.insert("name".into(), Value::from("kata-agent"));
        map.insert("version".into(), Value::from(self.version));
        // Span fields first, so the event's own fields win on a clash.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(fields)
                {
                    map.extend(obj);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut map));
        let line = serde_json::to_string(&Value::Object(map)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

/// Span fields recorded as a JSON object, so [`KataJsonFormat`] can merge them into lines.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonFields;

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut map = Map::new();
        fields.record(&mut JsonVisitor(&mut map));
        let text = serde_json::to_string(&Value::Object(map)).map_err(|_| fmt::Error)?;
        write!(writer, "{text}")
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buf {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn lines_carry_kata_field_names() {
        let buf = Buf::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(KataJsonFormat::new("9.9.9"))
            .fmt_fields(JsonFields)
            .with_writer(buf.clone())
            .with_max_level(Level::DEBUG)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("rpc", method = "Check");
            let _entered = span.enter();
            tracing::debug!(container_id = "abc", count = 3, "hello");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["msg"], "hello");
        assert_eq!(line["level"], "DEBG");
        assert_eq!(line["pid"], std::process::id().to_string());
        assert_eq!(line["subsystem"], "logging");
        assert_eq!(line["source"], "agent");
        assert_eq!(line["name"], "kata-agent");
        assert_eq!(line["version"], "9.9.9");
        assert_eq!(line["container_id"], "abc");
        assert_eq!(line["count"], 3);
        assert_eq!(line["method"], "Check");
        assert!(humantime::parse_rfc3339(line["ts"].as_str().unwrap()).is_ok());
    }

    #[test]
    fn subsystem_comes_from_the_module() {
        assert_eq!(subsystem_of("kata_agent::device::watcher"), "device");
        assert_eq!(subsystem_of("kata_agent"), "root");
        assert_eq!(subsystem_of("ttrpc::asynchronous::server"), "ttrpc");
    }
}
