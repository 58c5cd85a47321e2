//! Decorating every method of a set of ttrpc services (the readiness gate, the observer).

use std::collections::HashMap;

use ttrpc::r#async::{MethodHandler, Service};

/// A method handler as a ttrpc [`Service`] holds it.
pub type Handler = Box<dyn MethodHandler + Send + Sync>;

/// `services` with each method handler replaced by `wrap(service, method, handler)`, where
/// `service` is the full name (`grpc.AgentService`); streams are kept as they are.
pub fn wrap_methods(
    services: HashMap<String, Service>,
    mut wrap: impl FnMut(&str, &str, Handler) -> Handler,
) -> HashMap<String, Service> {
    services
        .into_iter()
        .map(|(name, service)| {
            let methods = service
                .methods
                .into_iter()
                .map(|(method, inner)| {
                    let wrapped = wrap(&name, &method, inner);
                    (method, wrapped)
                })
                .collect();
            let service = Service {
                methods,
                streams: service.streams,
            };
            (name, service)
        })
        .collect()
}
