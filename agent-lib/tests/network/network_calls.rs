//! UpdateInterface's netlink calls, where their order is the contract: down before the
//! addresses, the rename before MTU and up; and, after a failure at any call, exactly the
//! undo calls of what was done before it, last first. A mockall mock of the `Netlink` seam
//! checks each call and its arguments in sequence.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use agent_fakes::FakeHost;
use async_trait::async_trait;
use kata_agent::device::{DeviceContext, DeviceWatcher};
use kata_agent::host::{Address, Link, LinkUpdate, Neighbour, Netlink, Route};
use kata_agent::network::{InterfaceConfig, IpNet, MacAddr, Network};
use mockall::{Sequence, mock, predicate::eq};

mock! {
    Nl {}
    #[async_trait]
    impl Netlink for Nl {
        async fn links(&self) -> io::Result<Vec<Link>>;
        async fn set_link(&self, index: u32, update: &LinkUpdate) -> io::Result<()>;
        async fn addresses(&self) -> io::Result<Vec<Address>>;
        async fn add_address(&self, addr: &Address) -> io::Result<()>;
        async fn del_address(&self, addr: &Address) -> io::Result<()>;
        async fn routes(&self) -> io::Result<Vec<Route>>;
        async fn add_route(&self, route: &Route) -> io::Result<()>;
        async fn del_route(&self, route: &Route) -> io::Result<()>;
        async fn neighbours(&self) -> io::Result<Vec<Neighbour>>;
        async fn add_neighbour(&self, neigh: &Neighbour) -> io::Result<()>;
        async fn del_neighbour(&self, neigh: &Neighbour) -> io::Result<()>;
    }
}

const MAC: &str = "02:00:00:00:00:01";
const UP: u32 = (libc::IFF_UP | libc::IFF_RUNNING | libc::IFF_LOWER_UP) as u32;

/// One expected call: what it is and what it answers when it succeeds.
#[derive(Clone, Debug)]
enum Call {
    Links(Vec<Link>),
    Routes(Vec<Route>),
    Addresses(Vec<Address>),
    SetLink(u32, LinkUpdate),
    AddAddress(Address),
    DelAddress(Address),
    AddRoute(Route),
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn address(index: u32, text: &str, prefix_len: u8) -> Address {
    Address {
        index,
        ip: ip(text),
        prefix_len,
    }
}

fn update(f: impl FnOnce(&mut LinkUpdate)) -> LinkUpdate {
    let mut u = LinkUpdate::default();
    f(&mut u);
    u
}

fn links() -> Vec<Link> {
    let link = |index, name: &str, mac: &str, flags| Link {
        index,
        name: name.into(),
        mac: mac.into(),
        mtu: 1500,
        flags,
        kind: None,
    };
    vec![
        link(1, "lo", "00:00:00:00:00:00", libc::IFF_LOOPBACK as u32 | UP),
        link(2, "ens3", MAC, UP | libc::IFF_BROADCAST as u32),
    ]
}

/// `ens3` (index 2) is up with 10.0.0.2/24 and fd00::2/64, a default route through it and
/// the kernel's prefix route; the request renames it `eth0`, adds 10.0.1.2/24, sets MTU 1400.
/// Each expected call, with the undo calls it makes due if a later one fails.
fn rename_script() -> Vec<(Call, Vec<Call>)> {
    let v4 = address(2, "10.0.0.2", 24);
    let v6 = address(2, "fd00::2", 64);
    let new = address(2, "10.0.1.2", 24);
    let default = Route {
        dest: None,
        gateway: Some(ip("10.0.0.1")),
        oif: Some(2),
        source: None,
        scope: 0,
        mtu: 0,
        flags: 0,
        ipv6: false,
        kernel: false,
    };
    let prefix = Route {
        dest: Some((ip("10.0.0.0"), 24)),
        gateway: None,
        scope: 253,
        kernel: true,
        ..default.clone()
    };
    vec![
        (Call::Links(links()), vec![]),
        // Going down drops IPv6 addresses and routes: once it is down, an undo must bring it
        // up and put them back (not the kernel's own prefix route).
        (Call::Routes(vec![default.clone(), prefix]), vec![]),
        (Call::Addresses(vec![v4.clone(), v6.clone()]), vec![]),
        (
            Call::SetLink(2, update(|u| u.up = Some(false))),
            vec![
                Call::AddRoute(default),
                Call::AddAddress(v4.clone()),
                Call::AddAddress(v6),
                Call::SetLink(2, update(|u| u.up = Some(true))),
            ],
        ),
        (Call::Addresses(vec![v4.clone()]), vec![]),
        (
            Call::AddAddress(new.clone()),
            vec![Call::DelAddress(new.clone())],
        ),
        (
            Call::SetLink(2, update(|u| u.name = Some("eth0".into()))),
            vec![Call::SetLink(2, update(|u| u.name = Some("ens3".into())))],
        ),
        (
            Call::SetLink(
                2,
                update(|u| {
                    u.mtu = Some(1400);
                    u.arp = Some(true);
                    u.up = Some(true);
                }),
            ),
            vec![Call::SetLink(
                2,
                update(|u| {
                    u.mtu = Some(1500);
                    u.arp = Some(true);
                    u.up = Some(false);
                }),
            )],
        ),
        // Read back.
        (Call::Links(links()), vec![]),
        (Call::Addresses(vec![v4, new]), vec![]),
    ]
}

fn err() -> io::Error {
    io::Error::from_raw_os_error(libc::EBUSY)
}

/// A mock expecting exactly `calls`, in order; call `fail` (if any) fails with EBUSY.
fn mock(calls: &[Call], fail: Option<usize>) -> MockNl {
    let mut nl = MockNl::new();
    let mut seq = Sequence::new();
    for (i, call) in calls.iter().cloned().enumerate() {
        let ok = Some(i) != fail;
        match call {
            Call::Links(v) => {
                nl.expect_links()
                    .times(1)
                    .in_sequence(&mut seq)
                    .returning(move || if ok { Ok(v.clone()) } else { Err(err()) });
            }
            Call::Routes(v) => {
                nl.expect_routes()
                    .times(1)
                    .in_sequence(&mut seq)
                    .returning(move || if ok { Ok(v.clone()) } else { Err(err()) });
            }
            Call::Addresses(v) => {
                nl.expect_addresses()
                    .times(1)
                    .in_sequence(&mut seq)
                    .returning(move || if ok { Ok(v.clone()) } else { Err(err()) });
            }
            Call::SetLink(index, u) => {
                nl.expect_set_link()
                    .with(eq(index), eq(u))
                    .times(1)
                    .in_sequence(&mut seq)
                    .returning(move |_, _| if ok { Ok(()) } else { Err(err()) });
            }
            Call::AddAddress(a) => {
                nl.expect_add_address()
                    .with(eq(a))
                    .times(1)
                    .in_sequence(&mut seq)
                    .returning(move |_| if ok { Ok(()) } else { Err(err()) });
            }
            Call::DelAddress(a) => {
                nl.expect_del_address()
                    .with(eq(a))
                    .times(1)
                    .in_sequence(&mut seq)
                    .returning(move |_| if ok { Ok(()) } else { Err(err()) });
            }
            Call::AddRoute(r) => {
                nl.expect_add_route()
                    .with(eq(r))
                    .times(1)
                    .in_sequence(&mut seq)
                    .returning(move |_| if ok { Ok(()) } else { Err(err()) });
            }
        }
    }
    nl
}

fn network(nl: MockNl) -> Network {
    let fake = FakeHost::new();
    for which in ["all", "default"] {
        let path = format!("/proc/sys/net/ipv6/conf/{which}/disable_ipv6");
        fake.sysfs.write_file(path, "0").unwrap();
    }
    let mut host = fake.host();
    host.netlink = Arc::new(nl);
    let devices = DeviceContext {
        watcher: Arc::new(DeviceWatcher::new()),
        sysfs: host.sysfs.clone(),
        hotplug_timeout: Duration::from_secs(3),
    };
    Network::new(host, devices)
}

fn request() -> InterfaceConfig {
    InterfaceConfig {
        name: "eth0".into(),
        mac: Some(MacAddr::parse("hwAddr", MAC).unwrap()),
        addresses: vec![IpNet::new(ip("10.0.1.2"), 24).unwrap()],
        mtu: Some(1400),
        noarp: false,
        pci_path: None,
    }
}

#[tokio::test]
async fn down_then_addresses_then_rename_then_mtu_and_up() {
    let calls: Vec<Call> = rename_script().into_iter().map(|(c, _)| c).collect();
    let network = network(mock(&calls, None));
    let info = network.update_interface(&request()).await.unwrap();
    assert_eq!(info.addresses.len(), 2);
}

#[tokio::test]
async fn a_failure_at_each_call_is_followed_by_exactly_its_undo_calls() {
    let script = rename_script();
    for fail in 0..script.len() {
        let mut calls: Vec<Call> = script[..=fail].iter().map(|(c, _)| c.clone()).collect();
        let undo: Vec<Call> = script[..fail]
            .iter()
            .flat_map(|(_, u)| u.iter().cloned())
            .collect();
        calls.extend(undo.into_iter().rev());
        let network = network(mock(&calls, Some(fail)));
        let result = network.update_interface(&request()).await;
        assert!(result.is_err(), "call {fail} failed: the request fails");
        // The mock panics on any call not expected, out of order or with other arguments,
        // and on drop if an expected call did not come.
        drop(network);
    }
}
