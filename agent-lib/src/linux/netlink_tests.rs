use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::linux::test_support::{add_veth, current_thread_runtime, in_net_ns, require_root};

const UNIVERSE: u8 = 0;
const LINK: u8 = 253;

#[test]
fn mac_addresses_round_trip() {
    assert_eq!(
        format_mac(&[0xAA, 0xbb, 0, 1, 0x22, 0xff]),
        "aa:bb:00:01:22:ff"
    );
    assert_eq!(format_mac(&[]), "");
    assert_eq!(
        parse_mac("AA:bb:00:01:22:ff").unwrap(),
        vec![0xaa, 0xbb, 0, 1, 0x22, 0xff]
    );
    for bad in [
        "",
        "aa",
        "aa:bb:",
        "aa:b:cc",
        "aa:bbb:cc",
        "gg:00",
        "aa-bb-cc-dd-ee-ff",
        "+a:00",
    ] {
        assert_eq!(
            parse_mac(bad).unwrap_err().kind(),
            io::ErrorKind::InvalidInput,
            "{bad}"
        );
    }
}

#[test]
fn netlink_errors_keep_their_errno() {
    let mut msg = rtnetlink::packet_core::ErrorMessage::default();
    msg.code = std::num::NonZeroI32::new(-libc::EEXIST);
    let err = nl_err(rtnetlink::Error::NetlinkError(msg));
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    let err = nl_err(rtnetlink::Error::RequestFailed);
    assert_eq!(err.kind(), io::ErrorKind::Other);
}

#[test]
fn route_messages_carry_the_route() {
    let route = Route {
        dest: Some((IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0)), 24)),
        gateway: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254))),
        oif: Some(7),
        source: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        scope: UNIVERSE,
        mtu: 1400,
        flags: 0x4 | 0x10, // RTNH_F_ONLINK | RTNH_F_LINKDOWN
        ipv6: false,
        kernel: false,
    };
    let msg = route_message(&route, false).unwrap();
    assert_eq!(msg.header.table, RouteHeader::RT_TABLE_MAIN);
    assert_eq!(msg.header.protocol, RouteProtocol::Boot);
    assert_eq!(msg.header.kind, RouteType::Unicast);
    assert_eq!(
        msg.header.flags.bits(),
        0x4,
        "kernel-only flags are dropped"
    );
    let mut back = route_from_message(&msg);
    back.flags = route.flags;
    assert_eq!(back, route);

    let del = route_message(&route, true).unwrap();
    assert_eq!(del.header.protocol, RouteProtocol::Unspec);
    assert_eq!(u8::from(del.header.scope), RT_SCOPE_NOWHERE);
    assert!(
        !del.attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Metrics(_)))
    );

    let default_v6 = Route {
        dest: None,
        gateway: Some("2001:db8::1".parse().unwrap()),
        oif: None,
        source: None,
        scope: UNIVERSE,
        mtu: 0,
        flags: 0,
        ipv6: true,
        kernel: false,
    };
    let msg = route_message(&default_v6, false).unwrap();
    assert_eq!(msg.header.address_family, AddressFamily::Inet6);
    assert_eq!(route_from_message(&msg), default_v6);
}

#[test]
fn route_messages_reject_mixed_families_and_long_prefixes() {
    let v4_gw = Route {
        dest: None,
        gateway: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        oif: None,
        source: None,
        scope: UNIVERSE,
        mtu: 0,
        flags: 0,
        ipv6: true,
        kernel: false,
    };
    assert_eq!(
        route_message(&v4_gw, false).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    let long = Route {
        dest: Some((IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 33)),
        ipv6: false,
        kernel: false,
        ..v4_gw
    };
    assert_eq!(
        route_message(&long, false).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

#[test]
fn addresses_prefer_the_local_attribute() {
    let addr = Address {
        index: 3,
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        prefix_len: 24,
    };
    let msg = address_message(&addr);
    assert_eq!(address_from_message(&msg), Some(addr));
    let v6 = Address {
        index: 3,
        ip: "2001:db8::5".parse().unwrap(),
        prefix_len: 64,
    };
    assert_eq!(address_from_message(&address_message(&v6)), Some(v6));
}

#[test]
fn new_outside_a_runtime_is_an_error_not_a_panic() {
    assert!(RtNetlink::new().is_err());
    // Inside one it works unprivileged (only changes need CAP_NET_ADMIN).
    current_thread_runtime().block_on(async {
        let nl = RtNetlink::new().unwrap();
        assert!(nl.links().await.unwrap().iter().any(|l| l.name == "lo"));
    });
}

#[test]
#[ignore = "needs root: links, addresses, routes and neighbours in a private network namespace"]
fn links_addresses_routes_and_neighbours() {
    require_root("CAP_NET_ADMIN in a new network namespace");
    in_net_ns(|| async {
        let nl = RtNetlink::new().unwrap();

        let lo = nl.link_by_name("lo").await.unwrap();
        nl.set_link(
            lo.index,
            &LinkUpdate {
                up: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(nl.link_by_name("lo").await.unwrap().is_up());

        let idx = add_veth(&nl, "kt0", "kt1").await;
        // The peer up too, so the pair has carrier and routes are not flagged linkdown.
        let peer = nl.link_by_name("kt1").await.unwrap();
        nl.set_link(
            peer.index,
            &LinkUpdate {
                up: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let veth = nl.link_by_name("kt0").await.unwrap();
        assert_eq!(veth.kind.as_deref(), Some("veth"));
        assert_eq!(veth.mac.len(), 17);
        assert_eq!(veth.mac, veth.mac.to_lowercase());

        nl.set_link(
            idx,
            &LinkUpdate {
                name: Some("eth0".into()),
                mtu: Some(1400),
                mac: Some("02:AA:bb:cc:dd:01".into()),
                up: Some(true),
                arp: Some(false),
            },
        )
        .await
        .unwrap();
        let eth0 = nl.link_by_name("eth0").await.unwrap();
        assert_eq!(eth0.index, idx);
        assert_eq!((eth0.mtu, eth0.mac.as_str()), (1400, "02:aa:bb:cc:dd:01"));
        assert!(eth0.is_up());
        assert_ne!(eth0.flags & libc::IFF_NOARP as u32, 0);
        nl.set_link(
            idx,
            &LinkUpdate {
                arp: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            nl.link_by_name("eth0").await.unwrap().flags & libc::IFF_NOARP as u32,
            0
        );
        let bad_mac = LinkUpdate {
            mac: Some("nope".into()),
            ..Default::default()
        };
        let err = nl.set_link(idx, &bad_mac).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);

        let addr = Address {
            index: idx,
            ip: "192.0.2.1".parse().unwrap(),
            prefix_len: 24,
        };
        nl.add_address(&addr).await.unwrap();
        nl.add_address(&addr).await.expect("adding again replaces");
        assert!(nl.addresses().await.unwrap().contains(&addr));

        let net = Route {
            dest: Some(("198.51.100.0".parse().unwrap(), 24)),
            gateway: Some("192.0.2.254".parse().unwrap()),
            oif: Some(idx),
            source: Some("192.0.2.1".parse().unwrap()),
            scope: UNIVERSE,
            mtu: 1300,
            flags: 0,
            ipv6: false,
            kernel: false,
        };
        let default = Route {
            dest: None,
            gateway: Some("192.0.2.253".parse().unwrap()),
            oif: Some(idx),
            source: None,
            scope: UNIVERSE,
            mtu: 0,
            flags: 0,
            ipv6: false,
            kernel: false,
        };
        let onlink = Route {
            dest: Some(("203.0.113.0".parse().unwrap(), 24)),
            gateway: None,
            oif: Some(idx),
            source: None,
            scope: LINK,
            mtu: 0,
            flags: 0,
            ipv6: false,
            kernel: false,
        };
        for r in [&net, &default, &onlink] {
            nl.add_route(r).await.unwrap();
        }
        nl.add_route(&net).await.expect("adding again replaces");
        let routes = nl.routes().await.unwrap();
        for r in [&net, &default, &onlink] {
            assert!(routes.contains(r), "{r:?} not in {routes:#?}");
        }
        // The kernel's own prefix route is listed too; IPv4 comes before IPv6.
        assert!(
            routes
                .iter()
                .any(|r| r.dest == Some(("192.0.2.0".parse().unwrap(), 24)))
        );
        let first_v6 = routes.iter().position(|r| r.ipv6).unwrap_or(routes.len());
        assert!(routes[first_v6..].iter().all(|r| r.ipv6));

        let neigh = Neighbour {
            index: idx,
            ip: "192.0.2.254".parse().unwrap(),
            lladdr: Some("02:00:00:00:00:fe".into()),
            state: 0,
            flags: 0,
        };
        nl.add_neighbour(&neigh).await.unwrap();
        nl.add_neighbour(&neigh)
            .await
            .expect("adding again replaces");
        let v6_neigh = Neighbour {
            ip: "2001:db8::fe".parse().unwrap(),
            lladdr: Some("02:00:00:00:00:fd".into()),
            state: 0x02, // NUD_REACHABLE
            ..neigh.clone()
        };
        nl.add_neighbour(&v6_neigh).await.unwrap();
        let entries = neighbours(&nl, idx).await;
        assert!(
            entries.contains(&(neigh.ip, 0x80, Some("02:00:00:00:00:fe".into()))),
            "{entries:?}"
        );
        assert!(
            entries.contains(&(v6_neigh.ip, 0x02, Some("02:00:00:00:00:fd".into()))),
            "{entries:?}"
        );
        // A permanent entry needs a hardware address: the kernel's EINVAL comes back as is.
        let no_lladdr = Neighbour {
            ip: "192.0.2.99".parse().unwrap(),
            lladdr: None,
            ..neigh.clone()
        };
        let err = nl.add_neighbour(&no_lladdr).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err:?}");
        nl.del_neighbour(&v6_neigh).await.unwrap();
        let entries = neighbours(&nl, idx).await;
        assert!(!entries.iter().any(|e| e.0 == v6_neigh.ip), "{entries:?}");
        let err = nl.del_neighbour(&v6_neigh).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err:?}");

        for r in [&onlink, &default, &net] {
            nl.del_route(r).await.unwrap();
        }
        let err = nl.del_route(&net).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH), "{err:?}");
        let routes = nl.routes().await.unwrap();
        assert!(
            !routes
                .iter()
                .any(|r| [&net, &default, &onlink].contains(&r))
        );

        nl.del_address(&addr).await.unwrap();
        assert!(!nl.addresses().await.unwrap().contains(&addr));
        let err = nl.del_address(&addr).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{err:?}");

        let up = LinkUpdate {
            up: Some(true),
            ..Default::default()
        };
        let err = nl.set_link(9999, &up).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));

        nl.handle().link().del(idx).execute().await.unwrap();
        assert!(
            nl.links()
                .await
                .unwrap()
                .iter()
                .all(|l| l.name != "eth0" && l.name != "kt1")
        );
    });
}

/// The neighbour entries of link `index`: (ip, NUD state, lladdr).
async fn neighbours(nl: &RtNetlink, index: u32) -> Vec<(IpAddr, u16, Option<String>)> {
    nl.neighbours()
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.index == index)
        .map(|n| (n.ip, n.state, n.lladdr))
        .collect()
}
