//! Calling any RPC by name with a JSON request, as Kata's `kata-agent-ctl` does.

use std::time::Duration;

use agent_protos::protobuf::MessageDyn;
use agent_protos::{Method, find_method};
use protobuf_json_mapping::{ParseOptions, PrintOptions};

use crate::client::AgentClient;

/// Why a call by name failed before or after reaching the agent.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No RPC has this name.
    #[error("unknown method {0:?} (try `harness methods`)")]
    UnknownMethod(String),
    /// The JSON body does not fit the request message.
    #[error("bad JSON for {message}: {reason}")]
    BadJson {
        /// The request message type.
        message: String,
        /// What the parser said.
        reason: String,
    },
    /// Encoding or decoding a protobuf message failed.
    #[error("protobuf: {0}")]
    Protobuf(String),
    /// The agent answered with an error status, or the transport failed.
    #[error("{0}")]
    Rpc(#[from] ttrpc::Error),
}

/// Calls `method` with the JSON `body` (proto3 JSON mapping; empty means `{}`) and returns the
/// answer as JSON.
pub async fn call_json(
    client: &AgentClient,
    method: &str,
    body: &str,
    timeout: Duration,
) -> Result<String, CallError> {
    call_json_with(client, method, body, timeout, &[]).await
}

/// As [`call_json`], with request metadata (`traceparent`...).
pub async fn call_json_with(
    client: &AgentClient,
    method: &str,
    body: &str,
    timeout: Duration,
    metadata: &[(String, String)],
) -> Result<String, CallError> {
    let method = find_method(method).ok_or_else(|| CallError::UnknownMethod(method.into()))?;
    let request = parse_request(method, body)?;
    let payload = request
        .write_to_bytes_dyn()
        .map_err(|e| CallError::Protobuf(e.to_string()))?;
    let req = ttrpc::Request {
        service: method.service.clone(),
        method: method.name.clone(),
        payload,
        timeout_nano: i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX),
        metadata: metadata
            .iter()
            .map(|(key, value)| ttrpc::proto::KeyValue {
                key: key.clone(),
                value: value.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let resp = client.raw().request(req).await?;
    let mut answer = method.response.new_instance();
    answer
        .merge_from_bytes_dyn(&resp.payload)
        .map_err(|e| CallError::Protobuf(e.to_string()))?;
    let options = PrintOptions {
        proto_field_name: true,
        always_output_default_values: true,
        ..Default::default()
    };
    protobuf_json_mapping::print_to_string_with_options(&*answer, &options)
        .map_err(|e| CallError::Protobuf(e.to_string()))
}

fn parse_request(method: &Method, body: &str) -> Result<Box<dyn MessageDyn>, CallError> {
    let mut request = method.request.new_instance();
    let body = if body.trim().is_empty() { "{}" } else { body };
    let options = ParseOptions {
        ignore_unknown_fields: false,
        ..Default::default()
    };
    protobuf_json_mapping::merge_from_str_with_options(&mut *request, body, &options).map_err(
        |e| CallError::BadJson {
            message: method.request.full_name().to_owned(),
            reason: e.to_string(),
        },
    )?;
    Ok(request)
}
