//! Every RPC observed in one place: each method handler of every service is wrapped so that
//! the call runs inside an `rpc` span (named after the method, continuing the host's trace
//! when the request's metadata carries a `traceparent`), and its name, duration and outcome
//! are logged at debug level.

use std::collections::HashMap;
use std::time::Instant;

use async_trait::async_trait;
use tracing::Instrument;
use ttrpc::r#async::{MethodHandler, Service, TtrpcContext};
use ttrpc::{Code, Request, Response};

use super::wrap::{Handler, wrap_methods};
use crate::telemetry::{ERROR_FIELD, NAME_FIELD, PARENT_FIELD};

/// A method handler with its span and its log line.
struct Observed {
    /// `AgentService/CreateContainer`.
    method: String,
    /// `create_container`, Kata's span name.
    span_name: String,
    inner: Handler,
}

#[async_trait]
impl MethodHandler for Observed {
    async fn handler(&self, ctx: TtrpcContext, req: Request) -> ttrpc::Result<Response> {
        let parent = ctx
            .metadata
            .get("traceparent")
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default();
        let span = tracing::info_span!(
            "rpc",
            { NAME_FIELD } = %self.span_name,
            { PARENT_FIELD } = %parent,
            method = %self.method,
            { ERROR_FIELD } = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = self.inner.handler(ctx, req).instrument(span.clone()).await;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let outcome = match &result {
            Ok(resp) => resp.status.as_ref().map_or(Code::OK, |s| s.code()),
            Err(_) => Code::INTERNAL,
        };
        if outcome != Code::OK {
            span.record(ERROR_FIELD, format!("{outcome:?}"));
        }
        tracing::debug!(
            method = %self.method,
            duration_us = micros,
            outcome = ?outcome,
            "rpc"
        );
        result
    }
}

/// `CreateContainer` → `create_container`, `AddARPNeighbors` → `add_arp_neighbors`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev_lower = !chars[i - 1].is_ascii_uppercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev_lower || next_lower {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Wraps every method of `services` (keyed `grpc.AgentService` etc.).
pub fn observe(services: HashMap<String, Service>) -> HashMap<String, Service> {
    wrap_methods(services, |service, method, inner| {
        let short = service.rsplit('.').next().unwrap_or(service);
        Box::new(Observed {
            method: format!("{short}/{method}"),
            span_name: snake_case(method),
            inner,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_names_are_kata_snake_case() {
        assert_eq!(snake_case("CreateContainer"), "create_container");
        assert_eq!(snake_case("AddARPNeighbors"), "add_arp_neighbors");
        assert_eq!(snake_case("GetIPTables"), "get_ip_tables");
        assert_eq!(snake_case("OnlineCPUMem"), "online_cpu_mem");
        assert_eq!(snake_case("Check"), "check");
    }
}
