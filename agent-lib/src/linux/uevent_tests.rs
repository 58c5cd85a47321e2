use std::time::Duration;

use super::*;
use crate::linux::RtNetlink;
use crate::linux::test_support::{add_veth, current_thread_runtime, in_net_ns, require_root};

#[test]
fn new_outside_a_runtime_is_an_error_not_a_panic() {
    assert!(NetlinkUevents::new().is_err());
    // Listening needs no privilege.
    current_thread_runtime().block_on(async {
        NetlinkUevents::new().unwrap();
    });
}

/// Sends `payload` to the kernel uevent group from a user-space netlink socket.
fn send_from_user_space(payload: &[u8]) -> io::Result<()> {
    let socket = Socket::new(NETLINK_KOBJECT_UEVENT)?;
    socket.send_to(payload, &SocketAddr::new(0, KERNEL_GROUP), 0)?;
    Ok(())
}

#[test]
#[ignore = "needs root: creates a veth pair in a private network namespace"]
fn receives_the_kernel_add_event_of_a_veth_and_drops_user_space_ones() {
    require_root("CAP_NET_ADMIN in a new network namespace");
    in_net_ns(|| async {
        let uevents = NetlinkUevents::new().unwrap();
        let nl = RtNetlink::new().unwrap();

        // A forged event from user space (port id != 0) must never come out.
        send_from_user_space(b"add@/devices/virtual/net/forged\0ACTION=add\0").unwrap();

        let idx = add_veth(&nl, "kue0", "kue1").await;
        let mut seen = Vec::new();
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let datagram = uevents.recv().await.unwrap();
                let text = String::from_utf8_lossy(&datagram).into_owned();
                assert!(
                    !text.contains("forged"),
                    "a user-space datagram got through"
                );
                let header = text.split('\0').next().unwrap_or_default().to_owned();
                seen.push(header.clone());
                if header == "add@/devices/virtual/net/kue0" {
                    return text;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no add event for kue0; saw {seen:?}"));
        let vars: Vec<&str> = found.split('\0').collect();
        assert!(vars.contains(&"ACTION=add"), "{vars:?}");
        assert!(vars.contains(&"SUBSYSTEM=net"), "{vars:?}");
        assert!(vars.contains(&"INTERFACE=kue0"), "{vars:?}");

        nl.handle().link().del(idx).execute().await.unwrap();
    });
}
