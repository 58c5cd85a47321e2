//! Kata Containers' guest agent wire contract, generated for ttrpc.
//!
//! The `.proto` files in this crate (`agent.proto`, `health.proto`, `oci.proto`, `types.proto`,
//! `csi.proto`) are wire-identical to Kata Containers 4.1: the same packages, services, message
//! and field names, field numbers and types. `build.rs` turns them into Rust with
//! `ttrpc-codegen` and its pure-Rust parser, so no `protoc` is needed.
//!
//! Modules:
//!
//! - [`agent`], [`health`], [`oci`], [`types`], [`csi`]: the rust-protobuf messages of each file;
//! - [`agent_ttrpc`], [`health_ttrpc`]: the async ttrpc services (`grpc.AgentService`,
//!   `grpc.Health`): a server trait with a default method per RPC (answering `NOT_FOUND`), a
//!   `create_*` registration helper and a typed client;
//! - [`empty`]: `google.protobuf.Empty`, the reply of most RPCs.
//!
//! For callers that only know a method by name (a CLI that takes the RPC name and a JSON body),
//! [`find_method`] and [`methods`] describe every RPC from the generated descriptors.

use std::sync::OnceLock;

use protobuf::reflect::{FileDescriptor, MessageDescriptor};

// The generated files carry their own `#![allow(...)]`s; what they still trip here is the
// workspace's `missing_debug_implementations` (the ttrpc clients have no `Debug`).
#[allow(missing_debug_implementations)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/generated.rs"));
}

pub use generated::{agent, agent_ttrpc, csi, health, health_ttrpc, oci, types};

/// `google.protobuf.Empty`, as the generated code names it.
pub use protobuf::well_known_types::empty;

/// The protobuf runtime the generated code was built for (reflection, `Message`, ...).
pub use protobuf;

/// The wire name of the agent service.
pub const AGENT_SERVICE: &str = "grpc.AgentService";

/// The wire name of the health service.
pub const HEALTH_SERVICE: &str = "grpc.Health";

/// One RPC as a dynamic caller needs it: where to send it and how to encode both ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// Fully qualified service name, as sent in the ttrpc request: `grpc.AgentService`.
    pub service: String,
    /// Bare method name, as sent in the ttrpc request: `CreateContainer`.
    pub name: String,
    /// Descriptor of the request message (e.g. `grpc.CreateContainerRequest`).
    pub request: MessageDescriptor,
    /// Descriptor of the response message (e.g. `google.protobuf.Empty`).
    pub response: MessageDescriptor,
}

/// Every RPC of `grpc.Health` and `grpc.AgentService`, in proto order (Health first).
///
/// Built once from the generated files' descriptors, so it follows the `.proto` files.
pub fn methods() -> &'static [Method] {
    static METHODS: OnceLock<Vec<Method>> = OnceLock::new();
    METHODS.get_or_init(|| {
        [health::file_descriptor(), agent::file_descriptor()]
            .into_iter()
            .flat_map(file_methods)
            .collect()
    })
}

/// The RPC named `name` (bare and case-sensitive, e.g. `CreateContainer` or `Check`), or `None`.
///
/// Method names are unique across the two services, so the name alone picks the service.
///
/// ```
/// use agent_protos::{find_method, AGENT_SERVICE};
/// use agent_protos::protobuf::MessageDyn;
///
/// let m = find_method("WaitProcess").unwrap();
/// assert_eq!(m.service, AGENT_SERVICE);
/// assert_eq!(m.request.full_name(), "grpc.WaitProcessRequest");
///
/// // Build a request without knowing its Rust type, then encode it for the wire.
/// let mut req = m.request.new_instance();
/// let field = m.request.field_by_name("container_id").unwrap();
/// field.set_singular_field(&mut *req, "c1".to_string().into());
/// let payload = req.write_to_bytes_dyn().unwrap();
/// assert_eq!(payload, b"\x0a\x02c1");
///
/// // Decode the reply the same way.
/// let reply = m.response.parse_from_bytes(b"\x08\x07").unwrap();
/// let status = m.response.field_by_name("status").unwrap();
/// assert_eq!(status.get_singular_field_or_default(&*reply).to_i32(), Some(7));
///
/// assert!(find_method("NoSuchMethod").is_none());
/// ```
pub fn find_method(name: &str) -> Option<&'static Method> {
    methods().iter().find(|m| m.name == name)
}

/// All `(service, method)` pairs, e.g. `("grpc.Health", "Check")`, in the order of [`methods`].
pub fn method_names() -> impl Iterator<Item = (&'static str, &'static str)> {
    methods()
        .iter()
        .map(|m| (m.service.as_str(), m.name.as_str()))
}

/// The methods of every service declared in `file`.
fn file_methods(file: &'static FileDescriptor) -> Vec<Method> {
    let package = file.package();
    file.services()
        .flat_map(|service| {
            let service_name = format!("{package}.{}", service.proto().name());
            service
                .methods()
                .map(|m| Method {
                    service: service_name.clone(),
                    name: m.proto().name().to_owned(),
                    request: m.input_type(),
                    response: m.output_type(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}
