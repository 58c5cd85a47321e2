//! `FakeTransport` semantics.

use agent_fakes::{FakeTransport, Faults, Op};
use futures::StreamExt;
use kata_agent::host::{ServerAddr, Transport};
use nix::errno::Errno;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn addr() -> ServerAddr {
    "vsock://-1:1024".parse().unwrap()
}

#[tokio::test]
async fn connect_and_accept_round_trip() {
    let t = FakeTransport::new(Faults::new());
    let mut incoming = t.listen(&addr()).unwrap();
    let mut client = t.connect(&addr()).unwrap();
    let mut server = incoming.next().await.unwrap().unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").await.unwrap();
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
    drop(server);
    assert_eq!(client.read(&mut buf).await.unwrap(), 0);
}

#[tokio::test]
async fn nobody_listening_is_refused_and_drop_unregisters() {
    let t = FakeTransport::new(Faults::new());
    let refused = |r: std::io::Result<tokio::io::DuplexStream>| r.unwrap_err().raw_os_error();
    assert_eq!(
        refused(t.connect(&addr())),
        Some(Errno::ECONNREFUSED as i32)
    );
    let incoming = t.listen(&addr()).unwrap();
    assert!(t.is_listening(&addr()));
    let err = t.listen(&addr()).err().unwrap();
    assert_eq!(err.raw_os_error(), Some(Errno::EADDRINUSE as i32));
    drop(incoming);
    assert!(t.listening().is_empty());
    assert_eq!(
        refused(t.connect(&addr())),
        Some(Errno::ECONNREFUSED as i32)
    );
    // The address can be listened on again.
    let _again = t.listen(&addr()).unwrap();
}

#[tokio::test]
async fn a_failed_listen_registers_nothing() {
    let faults = Faults::new();
    let t = FakeTransport::new(faults.clone());
    faults.fail_next(Op::Listen, Errno::EACCES);
    let err = t.listen(&addr()).err().unwrap();
    assert_eq!(err.raw_os_error(), Some(Errno::EACCES as i32));
    assert!(!t.is_listening(&addr()));
}
