//! ExecProcess, SignalProcess and WaitProcess.

use agent_protos::agent;
use agent_protos::empty::Empty;
use ttrpc::Code;

use super::container::string_user_from_proto;
use super::error::status;
use super::oci::process_from_proto;
use crate::Agent;
use crate::container::ExecRequest;
use crate::process::StdioPorts;

/// ExecProcess.
pub(crate) async fn exec_process(
    agent: &Agent,
    req: agent::ExecProcessRequest,
) -> ttrpc::Result<Empty> {
    let Some(process) = req.process.as_ref() else {
        return Err(status(
            Code::INVALID_ARGUMENT,
            "ExecProcess without a process",
        ));
    };
    let process = process_from_proto(process, "process")?;
    let request = ExecRequest {
        container_id: req.container_id,
        exec_id: req.exec_id,
        process,
        string_user: req.string_user.as_ref().map(string_user_from_proto),
        ports: StdioPorts {
            stdin: req.stdin_port,
            stdout: req.stdout_port,
            stderr: req.stderr_port,
        },
    };
    agent.containers().exec(request).await?;
    Ok(Empty::new())
}

/// SignalProcess.
pub(crate) async fn signal_process(
    agent: &Agent,
    req: agent::SignalProcessRequest,
) -> ttrpc::Result<Empty> {
    agent
        .containers()
        .signal(&req.container_id, &req.exec_id, req.signal)
        .await?;
    Ok(Empty::new())
}

/// WaitProcess.
pub(crate) async fn wait_process(
    agent: &Agent,
    req: agent::WaitProcessRequest,
) -> ttrpc::Result<agent::WaitProcessResponse> {
    let code = agent
        .containers()
        .wait(&req.container_id, &req.exec_id)
        .await?;
    Ok(agent::WaitProcessResponse {
        status: code,
        ..Default::default()
    })
}
