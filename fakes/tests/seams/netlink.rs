//! `FakeNetlink` semantics.

use std::net::IpAddr;

use agent_fakes::{FakeNetlink, Faults, Op};
use kata_agent::host::{Address, LinkUpdate, Neighbour, Netlink, Route};
use nix::errno::Errno;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().expect("an errno"))
}

fn route(dest: Option<(&str, u8)>, gateway: Option<&str>, oif: u32) -> Route {
    Route {
        dest: dest.map(|(d, l)| (ip(d), l)),
        gateway: gateway.map(ip),
        oif: Some(oif),
        source: None,
        scope: 0,
        mtu: 0,
        flags: 0,
        ipv6: false,
        kernel: false,
    }
}

fn up() -> LinkUpdate {
    LinkUpdate {
        up: Some(true),
        ..LinkUpdate::default()
    }
}

#[tokio::test]
async fn starts_with_loopback_down() {
    let n = FakeNetlink::new(Faults::new());
    let links = n.links().await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!((links[0].index, links[0].name.as_str()), (1, "lo"));
    assert!(!links[0].is_up());
    assert_eq!(n.link_by_name("lo").await.unwrap().index, 1);
    assert!(n.link_by_name("eth0").await.is_err());
}

#[tokio::test]
async fn plugging_a_taken_name_or_a_bad_mac_is_an_error_not_a_panic() {
    let n = FakeNetlink::new(Faults::new());
    assert_eq!(n.add_link("eth0", "02:00:00:00:00:01", 1500).unwrap(), 2);
    let taken = n.add_link("eth0", "02:00:00:00:00:02", 1500).unwrap_err();
    assert_eq!(taken.kind(), std::io::ErrorKind::AlreadyExists);
    assert!(taken.to_string().contains("eth0"), "{taken}");
    for mac in [
        "",
        "02:00:00:00:00",
        "zz:00:00:00:00:01",
        "02:00:00:00:00:001",
    ] {
        let bad = n.add_link("eth1", mac, 1500).unwrap_err();
        assert_eq!(bad.kind(), std::io::ErrorKind::InvalidInput, "{mac:?}");
    }
    // Nothing changed: lo, eth0, and the next index is still 3.
    assert_eq!(n.links().await.unwrap().len(), 2);
    assert_eq!(n.add_link("eth1", "02:00:00:00:00:03", 1500).unwrap(), 3);
}

#[tokio::test]
async fn links_are_added_updated_and_removed() {
    let n = FakeNetlink::new(Faults::new());
    let eth0 = n.add_link("eth0", "02:42:AC:11:00:09", 1500).unwrap();
    assert_eq!(eth0, 2);
    let update = LinkUpdate {
        name: Some("net1".into()),
        mtu: Some(1400),
        mac: Some("02:00:00:00:00:01".into()),
        up: Some(true),
        arp: Some(false),
    };
    n.set_link(eth0, &update).await.unwrap();
    let link = n.link(eth0).unwrap();
    assert_eq!(
        (link.name.as_str(), link.mtu, link.mac.as_str()),
        ("net1", 1400, "02:00:00:00:00:01")
    );
    assert!(link.is_up());
    assert_ne!(link.flags & libc::IFF_NOARP as u32, 0);
    assert!(n.remove_link(eth0));
    assert_eq!(
        errno(n.set_link(eth0, &up()).await.unwrap_err()),
        Errno::ENODEV
    );
}

#[tokio::test]
async fn rename_rules_follow_the_kernel() {
    let n = FakeNetlink::new(Faults::new());
    let a = n.add_link("eth0", "02:00:00:00:00:01", 1500).unwrap();
    n.add_link("eth1", "02:00:00:00:00:02", 1500).unwrap();
    let rename = |name: &str| LinkUpdate {
        name: Some(name.into()),
        ..LinkUpdate::default()
    };
    assert_eq!(
        errno(n.set_link(a, &rename("eth1")).await.unwrap_err()),
        Errno::EEXIST
    );
    assert_eq!(
        errno(
            n.set_link(a, &rename("a-name-too-long-x"))
                .await
                .unwrap_err()
        ),
        Errno::EINVAL
    );
    n.set_link(a, &up()).await.unwrap();
    assert_eq!(
        errno(n.set_link(a, &rename("eth9")).await.unwrap_err()),
        Errno::EBUSY
    );
    // Renaming to its own name is a no-op even when up.
    n.set_link(a, &rename("eth0")).await.unwrap();
    let bad_mtu = LinkUpdate {
        mtu: Some(10),
        up: Some(false),
        ..LinkUpdate::default()
    };
    assert_eq!(
        errno(n.set_link(a, &bad_mtu).await.unwrap_err()),
        Errno::EINVAL
    );
    // A rejected update changes nothing, not even the valid parts.
    assert!(n.link(a).unwrap().is_up());
}

#[tokio::test]
async fn addresses_replace_and_delete() {
    let n = FakeNetlink::new(Faults::new());
    let eth0 = n.add_link("eth0", "02:00:00:00:00:01", 1500).unwrap();
    let addr = Address {
        index: eth0,
        ip: ip("10.0.0.2"),
        prefix_len: 24,
    };
    let wide = Address {
        prefix_len: 16,
        ..addr.clone()
    };
    n.add_address(&addr).await.unwrap();
    n.add_address(&addr).await.expect("adding again replaces");
    // IPv4, as the kernel: the same address with another prefix is a second address.
    n.add_address(&wide).await.unwrap();
    assert_eq!(n.addresses().await.unwrap(), [addr.clone(), wide.clone()]);
    n.del_address(&addr).await.unwrap();
    assert_eq!(
        errno(n.del_address(&addr).await.unwrap_err()),
        Errno::EADDRNOTAVAIL
    );
    n.del_address(&wide).await.unwrap();
    assert!(n.addresses().await.unwrap().is_empty());
    // IPv6: one address per IP; a replace keeps the prefix it was added with.
    let v6 = Address {
        index: eth0,
        ip: ip("fd00::2"),
        prefix_len: 64,
    };
    n.add_address(&v6).await.unwrap();
    n.add_address(&Address {
        prefix_len: 48,
        ..v6.clone()
    })
    .await
    .unwrap();
    assert_eq!(n.addresses().await.unwrap(), std::slice::from_ref(&v6));
    n.del_address(&v6).await.unwrap();
    let missing = Address {
        index: 42,
        ..addr.clone()
    };
    assert_eq!(
        errno(n.add_address(&missing).await.unwrap_err()),
        Errno::ENODEV
    );
    let bad = Address {
        prefix_len: 33,
        ..addr
    };
    assert_eq!(errno(n.add_address(&bad).await.unwrap_err()), Errno::EINVAL);
}

#[tokio::test]
async fn routes_need_an_up_link_and_a_reachable_gateway() {
    let n = FakeNetlink::new(Faults::new());
    let eth0 = n.add_link("eth0", "02:00:00:00:00:01", 1500).unwrap();
    let link_route = route(Some(("10.0.0.0", 24)), None, eth0);
    let default = route(None, Some("10.0.0.1"), eth0);
    assert_eq!(
        errno(n.add_route(&link_route).await.unwrap_err()),
        Errno::ENETDOWN
    );
    n.set_link(eth0, &up()).await.unwrap();
    assert_eq!(
        errno(n.add_route(&default).await.unwrap_err()),
        Errno::ENETUNREACH
    );
    n.add_route(&link_route).await.unwrap();
    n.add_route(&default).await.unwrap();
    // Replacing keeps one route per destination; the dump is by destination (default first).
    n.add_route(&default).await.unwrap();
    assert_eq!(
        n.routes().await.unwrap(),
        [default.clone(), link_route.clone()]
    );
    n.del_route(&default).await.unwrap();
    assert_eq!(
        errno(n.del_route(&default).await.unwrap_err()),
        Errno::ESRCH
    );
    assert_eq!(
        errno(n.add_route(&route(None, None, 9)).await.unwrap_err()),
        Errno::ENODEV
    );
}

#[tokio::test]
async fn address_prefix_makes_gateway_reachable() {
    let n = FakeNetlink::new(Faults::new());
    let eth0 = n.add_link("eth0", "02:00:00:00:00:01", 1500).unwrap();
    n.set_link(eth0, &up()).await.unwrap();
    n.add_address(&Address {
        index: eth0,
        ip: ip("192.168.1.5"),
        prefix_len: 24,
    })
    .await
    .unwrap();
    n.add_route(&route(None, Some("192.168.1.1"), eth0))
        .await
        .unwrap();
    let v6 = Route {
        dest: Some((ip("fd00::"), 64)),
        ipv6: true,
        kernel: false,
        ..route(None, None, eth0)
    };
    n.add_route(&v6).await.unwrap();
    let routes = n.routes().await.unwrap();
    assert!(!routes[0].ipv6 && routes[1].ipv6);
}

#[tokio::test]
async fn removing_a_link_drops_its_state() {
    let n = FakeNetlink::new(Faults::new());
    let eth0 = n.add_link("eth0", "02:00:00:00:00:01", 1500).unwrap();
    n.set_link(eth0, &up()).await.unwrap();
    n.add_address(&Address {
        index: eth0,
        ip: ip("10.0.0.2"),
        prefix_len: 24,
    })
    .await
    .unwrap();
    n.add_route(&route(Some(("10.0.0.0", 24)), None, eth0))
        .await
        .unwrap();
    let neigh = Neighbour {
        index: eth0,
        ip: ip("10.0.0.3"),
        lladdr: Some("02:00:00:00:00:AA".into()),
        state: 0x80,
        flags: 0,
    };
    n.add_neighbour(&neigh).await.unwrap();
    assert_eq!(
        n.snapshot().neighbours[0].lladdr.as_deref(),
        Some("02:00:00:00:00:aa")
    );
    n.remove_link(eth0);
    let state = n.snapshot();
    assert_eq!(state.links.len(), 1);
    assert!(state.addresses.is_empty() && state.routes.is_empty() && state.neighbours.is_empty());
}

#[tokio::test]
async fn injected_faults_change_nothing() {
    let faults = Faults::new();
    let n = FakeNetlink::new(faults.clone());
    let eth0 = n.add_link("eth0", "02:00:00:00:00:01", 1500).unwrap();
    let before = n.snapshot();
    faults.fail_next(Op::SetLink, Errno::EPERM);
    faults.fail_next(Op::AddAddress, Errno::ENOMEM);
    assert_eq!(
        errno(n.set_link(eth0, &up()).await.unwrap_err()),
        Errno::EPERM
    );
    let addr = Address {
        index: eth0,
        ip: ip("10.0.0.2"),
        prefix_len: 24,
    };
    assert_eq!(
        errno(n.add_address(&addr).await.unwrap_err()),
        Errno::ENOMEM
    );
    assert_eq!(n.snapshot(), before);
    assert_eq!(faults.calls(Op::SetLink), 1);
    n.set_link(eth0, &up()).await.unwrap();
    assert!(n.link(eth0).unwrap().is_up());
}

#[tokio::test]
async fn ipv6_link_local_gateways_and_family_checks() {
    let n = FakeNetlink::new(Faults::new());
    let eth0 = n.add_link("eth0", "02:00:00:00:00:01", 1500).unwrap();
    let v6_default = Route {
        gateway: Some(ip("fe80::1")),
        ipv6: true,
        kernel: false,
        ..route(None, None, eth0)
    };
    // IPv6 routes may use a link that is down, and a link-local gateway needs no prefix.
    n.add_route(&v6_default).await.unwrap();
    let mixed = Route {
        gateway: Some(ip("10.0.0.1")),
        ..v6_default.clone()
    };
    assert_eq!(errno(n.add_route(&mixed).await.unwrap_err()), Errno::EINVAL);
    assert_eq!(n.routes().await.unwrap(), [v6_default]);
}

/// As a real guest kernel showed (the parity report of `network-nic-hotplug`): an IPv6
/// address brings its prefix route, marked as the kernel's, and takes it away again.
#[tokio::test]
async fn an_ipv6_address_brings_its_prefix_route() {
    let n = FakeNetlink::new(Faults::new());
    let eth0 = n.add_link("eth0", "02:00:00:00:00:01", 1500).unwrap();
    n.set_link(eth0, &up()).await.unwrap();
    let addr = Address {
        index: eth0,
        ip: ip("fd00:88::2"),
        prefix_len: 64,
    };
    n.add_address(&addr).await.unwrap();
    let prefix = Route {
        ipv6: true,
        kernel: true,
        ..route(Some(("fd00:88::", 64)), None, eth0)
    };
    assert_eq!(n.routes().await.unwrap(), [prefix]);
    n.del_address(&addr).await.unwrap();
    assert_eq!(n.routes().await.unwrap(), []);
    // A /128 has no prefix route.
    let host = Address {
        prefix_len: 128,
        ..addr
    };
    n.add_address(&host).await.unwrap();
    assert_eq!(n.routes().await.unwrap(), []);
}
