use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Accepts one connection from `incoming` while `client` connects, and checks bytes flow both
/// ways.
async fn exchange(incoming: &mut Incoming, mut client: tokio::net::UnixStream) {
    let mut server = tokio::time::timeout(Duration::from_secs(5), incoming.next())
        .await
        .expect("accept timed out")
        .expect("stream ended")
        .expect("accept failed");
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").await.unwrap();
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
}

#[tokio::test]
async fn unix_socket_file_is_replaced_and_removed_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    // A stale socket file from an earlier run.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());

    let mut incoming = LinuxTransport::new()
        .listen(&ServerAddr::Unix(path.clone()))
        .unwrap();
    let client = tokio::net::UnixStream::connect(&path).await.unwrap();
    exchange(&mut incoming, client).await;
    assert!(path.exists());

    drop(incoming);
    assert!(!path.exists(), "socket file left behind");
}

#[tokio::test]
async fn unix_listen_leaves_other_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-socket");
    std::fs::write(&path, b"data").unwrap();
    let err = LinuxTransport::new()
        .listen(&ServerAddr::Unix(path.clone()))
        .err()
        .expect("listen over a regular file");
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
    assert_eq!(std::fs::read(&path).unwrap(), b"data");
}

#[tokio::test]
async fn abstract_socket_accepts() {
    let name = format!(
        "kata-agent-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    );
    let mut incoming = LinuxTransport::new()
        .listen(&ServerAddr::UnixAbstract(name.clone()))
        .unwrap();
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let client = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
    client.set_nonblocking(true).unwrap();
    exchange(
        &mut incoming,
        tokio::net::UnixStream::from_std(client).unwrap(),
    )
    .await;

    // The name is taken while listening and free again once the stream is dropped.
    assert!(
        LinuxTransport::new()
            .listen(&ServerAddr::UnixAbstract(name.clone()))
            .is_err()
    );
    drop(incoming);
    drop(
        LinuxTransport::new()
            .listen(&ServerAddr::UnixAbstract(name))
            .unwrap(),
    );
}

#[test]
fn listen_outside_a_runtime_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let addr = ServerAddr::Unix(dir.path().join("a.sock"));
    assert!(LinuxTransport::new().listen(&addr).is_err());
    assert!(!dir.path().join("a.sock").exists());
}

#[tokio::test]
#[ignore = "needs AF_VSOCK in the kernel: binds (never connects) a high vsock port"]
async fn vsock_bind_only() {
    // Never connect: CID 2 is this machine's real host and loopback does not work. High ports
    // only (the machine's own services use 2024, 5001 and 5002).
    let base = 40_000 + std::process::id() % 20_000;
    let transport = LinuxTransport::new();
    for port in base..base + 16 {
        let addr = ServerAddr::Vsock {
            cid: ServerAddr::VSOCK_CID_ANY,
            port,
        };
        match transport.listen(&addr) {
            Ok(mut incoming) => {
                let err = transport.listen(&addr).err().expect("second bind");
                assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
                let next = tokio::time::timeout(Duration::from_millis(50), incoming.next()).await;
                assert!(next.is_err(), "nobody connects, so nothing is accepted");
                return;
            }
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => continue,
            Err(e) => panic!("vsock bind on port {port}: {e}"),
        }
    }
    panic!("no free vsock port in {base}..{}", base + 16);
}

#[test]
fn only_the_hosts_vsock_connections_are_served() {
    assert!(from_host(2), "the host");
    for cid in [0, 1, 3, 42, u32::MAX] {
        assert!(
            !from_host(cid),
            "CID {cid} (local loopback, the guest itself, others)"
        );
    }
}
