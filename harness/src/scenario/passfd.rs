//! The `passfd` step: the host side of passfd I/O, streams connected from a vsock port to the
//! agent's `agent.passfd_listener_port`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::ScenarioError;
use super::fake::FakeBackend;
use super::format::PassfdStep;

/// How often (virtual time) `connect` looks for the agent's listener.
const LISTENER_POLL: Duration = Duration::from_millis(1);
/// How many times it looks.
const LISTENER_TRIES: u32 = 1000;

impl FakeBackend {
    /// Runs one `passfd` step; returns what happened, for the trace.
    pub(super) async fn passfd_step(&mut self, step: &PassfdStep) -> Result<String, ScenarioError> {
        let port = step.passfd;
        let mut done = Vec::new();
        if step.open {
            let listener = self.vm.agent.config().passfd_listener_port.ok_or_else(|| {
                ScenarioError::Invalid("the agent has no agent.passfd_listener_port".into())
            })?;
            let addr = self.vm.agent.config().server_addr.port_addr(listener);
            let transport = &self.vm.fake.transport;
            for _ in 0..LISTENER_TRIES {
                if transport.is_listening(&addr) {
                    break;
                }
                tokio::time::sleep(LISTENER_POLL).await;
            }
            let stream = transport
                .connect_from(&addr, port)
                .map_err(ScenarioError::stream(format!("connect to {addr}")))?;
            self.passfd.insert(port, stream);
            done.push(format!("connected from port {port} to {addr}"));
        }
        if let Some(data) = &step.write {
            let stream = self.stream(port)?;
            stream
                .write_all(data.as_bytes())
                .await
                .map_err(ScenarioError::stream("write"))?;
            done.push(format!("wrote {data:?}"));
        }
        if step.eof {
            self.stream(port)?
                .shutdown()
                .await
                .map_err(ScenarioError::stream("shutdown"))?;
            done.push("ended the stream".into());
        }
        if let Some(want) = &step.read_to_end {
            let mut got = Vec::new();
            // No virtual-time guard (see `call`): the run's watchdog catches a hang.
            self.stream(port)?
                .read_to_end(&mut got)
                .await
                .map_err(ScenarioError::stream("read"))?;
            let got = String::from_utf8_lossy(&got).into_owned();
            if &got != want {
                return Err(ScenarioError::Mismatch(format!(
                    "stream {port}: expected {want:?}, got {got:?}"
                )));
            }
            self.passfd.remove(&port);
            done.push(format!("read {got:?}, then the end of the stream"));
        }
        Ok(done.join("; "))
    }

    fn stream(&mut self, port: u32) -> Result<&mut tokio::io::DuplexStream, ScenarioError> {
        self.passfd.get_mut(&port).ok_or_else(|| {
            ScenarioError::Invalid(format!(
                "no passfd stream from port {port}; connect it first"
            ))
        })
    }
}
