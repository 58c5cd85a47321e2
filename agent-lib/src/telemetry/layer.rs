//! [`SpanLayer`]: a `tracing` layer that turns the agent's spans into [`SpanRecord`]s for the
//! exporter. A span's name is its `otel.name` field (else its `tracing` name); a span with a
//! `trace_parent` field (the RPC span, from the request's `traceparent`) continues the host's
//! trace; any other span continues its parent's, or starts a trace.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Subscriber, span};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::context::{IdSource, TraceParent};
use super::span::{AttrValue, SpanRecord};

/// The field naming the exported span.
pub const NAME_FIELD: &str = "otel.name";
/// The field carrying the host's `traceparent`.
pub const PARENT_FIELD: &str = "trace_parent";
/// The field carrying the error a span ended with.
pub const ERROR_FIELD: &str = "error";

/// Collects finished spans into a channel; never blocks (a full channel drops the span).
#[derive(Debug)]
pub struct SpanLayer {
    ids: Arc<IdSource>,
    sink: mpsc::Sender<SpanRecord>,
}

impl SpanLayer {
    /// A layer sending finished spans to `sink`.
    pub fn new(sink: mpsc::Sender<SpanRecord>) -> Self {
        SpanLayer {
            ids: Arc::default(),
            sink,
        }
    }
}

/// The record of a span still open, in its extensions.
struct Open(SpanRecord);

/// Field values of interest, and the rest as attributes.
#[derive(Default)]
struct Fields {
    name: Option<String>,
    parent: Option<String>,
    error: Option<String>,
    attributes: Vec<(String, AttrValue)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            NAME_FIELD => self.name = Some(value.to_owned()),
            PARENT_FIELD => self.parent = Some(value.to_owned()),
            ERROR_FIELD => self.error = Some(value.to_owned()),
            name => self
                .attributes
                .push((name.to_owned(), AttrValue::String(value.to_owned()))),
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes
            .push((field.name().to_owned(), AttrValue::I64(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        let v = i64::try_from(value).map_or(AttrValue::String(value.to_string()), AttrValue::I64);
        self.attributes.push((field.name().to_owned(), v));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes
            .push((field.name().to_owned(), AttrValue::Bool(value)));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attributes
            .push((field.name().to_owned(), AttrValue::F64(value)));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

impl Fields {
    fn apply(self, record: &mut SpanRecord) {
        if let Some(name) = self.name {
            record.name = name;
        }
        if let Some(error) = self.error {
            record.error = Some(error);
        }
        for (k, v) in self.attributes {
            record.set(&k, v);
        }
    }
}

impl<S> Layer<S> for SpanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let host_parent = fields.parent.as_deref().and_then(TraceParent::parse);
        let local_parent = span.parent().and_then(|p| {
            p.extensions()
                .get::<Open>()
                .map(|o| (o.0.trace_id, o.0.span_id))
        });
        let (trace_id, parent_span_id, remote_parent) = match (host_parent, local_parent) {
            (Some(tp), _) => (tp.trace_id, tp.parent_id, true),
            (None, Some((trace, parent))) => (trace, parent, false),
            (None, None) => (self.ids.trace_id(), 0, false),
        };
        let mut record = SpanRecord {
            trace_id,
            span_id: self.ids.span_id(),
            parent_span_id,
            remote_parent,
            name: attrs.metadata().name().to_owned(),
            start: SystemTime::now(),
            end: SystemTime::now(),
            attributes: Vec::new(),
            error: None,
        };
        fields.apply(&mut record);
        span.extensions_mut().insert(Open(record));
    }

    fn on_record(&self, id: &span::Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(open) = span.extensions_mut().get_mut::<Open>() {
            fields.apply(&mut open.0);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(Open(mut record)) = span.extensions_mut().remove::<Open>() else {
            return;
        };
        record.end = SystemTime::now();
        // A full channel means the exporter is behind: the span is dropped, the RPC is not
        // slowed.
        let _ = self.sink.try_send(record);
    }
}
