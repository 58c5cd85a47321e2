//! The readiness gate: every method of a service waits for the agent's deferred start work
//! before it runs, so a call that arrives early gets the answer it would get later; when that
//! work failed, the call fails with the reason instead.

use std::collections::HashMap;

use async_trait::async_trait;
use ttrpc::r#async::{MethodHandler, Service, TtrpcContext};

use super::wrap::{Handler, wrap_methods};
use ttrpc::proto::ResponseInit;
use ttrpc::{Code, Request, Response, get_status};

use crate::ready::Readiness;

/// A method handler behind the readiness barrier.
struct Gated {
    ready: Readiness,
    inner: Handler,
}

#[async_trait]
impl MethodHandler for Gated {
    async fn handler(&self, ctx: TtrpcContext, req: Request) -> ttrpc::Result<Response> {
        match self.ready.wait().await {
            Ok(()) => self.inner.handler(ctx, req).await,
            Err(failed) => Ok(Response::init_status(get_status(
                Code::INTERNAL,
                failed.to_string(),
            ))),
        }
    }
}

/// Puts every method of `services` behind `ready`.
pub fn gate(services: HashMap<String, Service>, ready: &Readiness) -> HashMap<String, Service> {
    wrap_methods(services, |_, _, inner| {
        Box::new(Gated {
            ready: ready.clone(),
            inner,
        })
    })
}
