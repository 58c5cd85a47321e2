//! WriteStdin, ReadStdout, ReadStderr, CloseStdin and TtyWinResize.

use agent_protos::agent;
use agent_protos::empty::Empty;

use crate::Agent;
use crate::process::Output;

type Reply<T = Empty> = ttrpc::Result<T>;

/// WriteStdin: empty data closes stdin.
pub(crate) async fn write_stdin(
    agent: &Agent,
    req: agent::WriteStreamRequest,
) -> Reply<agent::WriteStreamResponse> {
    let process = agent
        .containers()
        .process(&req.container_id, &req.exec_id)?;
    let len = process.write_stdin(&req.data).await?;
    Ok(agent::WriteStreamResponse {
        len: u32::try_from(len).unwrap_or(u32::MAX),
        ..Default::default()
    })
}

async fn read(
    agent: &Agent,
    req: agent::ReadStreamRequest,
    which: Output,
) -> Reply<agent::ReadStreamResponse> {
    let process = agent
        .containers()
        .process(&req.container_id, &req.exec_id)?;
    let len = usize::try_from(req.len).unwrap_or(usize::MAX);
    let data = process.read(which, len).await?;
    Ok(agent::ReadStreamResponse {
        data,
        ..Default::default()
    })
}

/// ReadStdout: one read; empty data is end of stream.
pub(crate) async fn read_stdout(
    agent: &Agent,
    req: agent::ReadStreamRequest,
) -> Reply<agent::ReadStreamResponse> {
    read(agent, req, Output::Stdout).await
}

/// ReadStderr: one read; empty data is end of stream.
pub(crate) async fn read_stderr(
    agent: &Agent,
    req: agent::ReadStreamRequest,
) -> Reply<agent::ReadStreamResponse> {
    read(agent, req, Output::Stderr).await
}

/// CloseStdin.
pub(crate) async fn close_stdin(agent: &Agent, req: agent::CloseStdinRequest) -> Reply {
    let process = agent
        .containers()
        .process(&req.container_id, &req.exec_id)?;
    process.close_stdin().await?;
    Ok(Empty::new())
}

/// TtyWinResize.
pub(crate) async fn tty_win_resize(agent: &Agent, req: agent::TtyWinResizeRequest) -> Reply {
    let process = agent
        .containers()
        .process(&req.container_id, &req.exec_id)?;
    let rows = u16::try_from(req.row).unwrap_or(u16::MAX);
    let cols = u16::try_from(req.column).unwrap_or(u16::MAX);
    process.resize(&*agent.host().launcher, rows, cols)?;
    Ok(Empty::new())
}
