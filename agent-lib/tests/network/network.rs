//! The network RPCs on the fakes, driven over ttrpc: UpdateInterface (by MAC, by name, by PCI
//! path, rename swaps), UpdateRoutes and ListRoutes, AddARPNeighbors, the iptables RPCs, bad
//! input, and a fault at every netlink call leaving the tables as they were.

use agent_fakes::{FakeHost, NetState, Op, Script};
use agent_harness::messages::{family, interface as iface, neighbour, route};
use agent_protos::types;
use agent_testing::pod::{self, Pod, code, message};
use nix::errno::Errno;
use protobuf::EnumOrUnknown;
use ttrpc::Code;

const MAC: &str = "02:00:00:00:00:01";
const IFF_UP: u32 = libc::IFF_UP as u32;
const IFF_NOARP: u32 = libc::IFF_NOARP as u32;

fn enable_ipv6(fake: &FakeHost) {
    for which in ["all", "default"] {
        let path = format!("/proc/sys/net/ipv6/conf/{which}/disable_ipv6");
        fake.sysfs.write_file(path, "0\n").unwrap();
    }
}

/// A pod whose guest has NIC `ens3` (MAC [`MAC`], down, MTU 1500) and IPv6 enabled.
async fn pod_with_nic() -> (Pod, u32) {
    let pod = Pod::new().await;
    enable_ipv6(&pod.fake);
    let index = pod.fake.netlink.add_link("ens3", MAC, 1500).unwrap();
    (pod, index)
}

fn state(pod: &Pod) -> NetState {
    pod.fake.netlink.snapshot()
}

#[tokio::test]
async fn update_interface_configures_the_nic_found_by_mac() {
    let (pod, index) = pod_with_nic().await;
    let wanted = iface("eth0", MAC, &[("10.0.0.2", "24"), ("fd00::2", "64")], 1450);
    let got = pod.client.update_interface(wanted).await.unwrap();
    assert_eq!(got.name, "eth0");
    assert_eq!(got.hwAddr, MAC);
    assert_eq!(got.mtu, 1450);
    assert_ne!(got.raw_flags & IFF_UP, 0, "up");
    assert_eq!(got.raw_flags & IFF_NOARP, 0, "ARP on");
    let addrs: Vec<(String, String)> = got
        .IPAddresses
        .iter()
        .map(|a| (a.address.clone(), a.mask.clone()))
        .collect();
    assert_eq!(
        addrs,
        [
            ("10.0.0.2".into(), "24".into()),
            ("fd00::2".into(), "64".into())
        ]
    );
    let link = pod.fake.netlink.link(index).unwrap();
    assert_eq!((link.name.as_str(), link.mtu), ("eth0", 1450));

    // Again, with NOARP: idempotent for the addresses, the flag follows the request.
    let mut again = iface("eth0", MAC, &[("10.0.0.2", "24")], 1450);
    again.raw_flags = IFF_NOARP;
    let got = pod.client.update_interface(again).await.unwrap();
    assert_ne!(got.raw_flags & IFF_NOARP, 0);
    assert_eq!(got.IPAddresses.len(), 2, "nothing removed, nothing doubled");
    let listed = pod.client.list_interfaces().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["lo", "eth0"]);
    assert_eq!(listed[1], got);
    pod.shutdown().await;
}

#[tokio::test]
async fn ipv6_addresses_are_skipped_when_the_guest_disables_ipv6() {
    let pod = Pod::new().await;
    let index = pod.fake.netlink.add_link("eth0", MAC, 1500).unwrap();
    for which in ["all", "default"] {
        let path = format!("/proc/sys/net/ipv6/conf/{which}/disable_ipv6");
        pod.fake.sysfs.write_file(path, "1").unwrap();
    }
    let wanted = iface("eth0", MAC, &[("10.0.0.2", "24"), ("fd00::2", "64")], 1500);
    let got = pod.client.update_interface(wanted).await.unwrap();
    let addrs: Vec<&str> = got.IPAddresses.iter().map(|a| a.address.as_str()).collect();
    assert_eq!(addrs, ["10.0.0.2"]);
    assert!(
        state(&pod)
            .addresses
            .iter()
            .all(|a| a.index == index && a.ip.is_ipv4())
    );
    pod.shutdown().await;
}

#[tokio::test]
async fn a_link_holding_the_wanted_name_swaps_names_with_the_nic() {
    let (pod, nic) = pod_with_nic().await;
    let other = pod
        .fake
        .netlink
        .add_link("eth0", "02:00:00:00:00:99", 1500)
        .unwrap();
    // The holder is up: it is brought down for its rename and up again after.
    pod.client
        .update_interface(iface("eth0", "02:00:00:00:00:99", &[], 1500))
        .await
        .unwrap();
    pod.client
        .update_interface(iface("eth0", MAC, &[("10.0.0.2", "24")], 1500))
        .await
        .unwrap();
    let (nic, other) = (
        pod.fake.netlink.link(nic).unwrap(),
        pod.fake.netlink.link(other).unwrap(),
    );
    assert_eq!(nic.name, "eth0");
    assert_eq!(other.name, "ens3", "the holder takes the NIC's old name");
    assert!(other.is_up(), "the holder is up again");
    pod.shutdown().await;
}

#[tokio::test]
async fn a_nic_found_by_name_is_given_the_wanted_mac() {
    let pod = Pod::new().await;
    let index = pod
        .fake
        .netlink
        .add_link("eth0", "02:00:00:00:00:77", 1500)
        .unwrap();
    let got = pod
        .client
        .update_interface(iface("eth0", MAC, &[], 1500))
        .await
        .unwrap();
    assert_eq!(got.hwAddr, MAC);
    assert_eq!(pod.fake.netlink.link(index).unwrap().mac, MAC);
    pod.shutdown().await;
}

#[tokio::test]
async fn an_unknown_link_is_not_found_and_says_so_as_kata_does() {
    let (pod, _) = pod_with_nic().await;
    let result = pod
        .client
        .update_interface(iface("eth7", "02:00:00:00:00:42", &[], 1500))
        .await;
    assert_eq!(code(result.clone()), Code::NOT_FOUND);
    // The Kata runtime retries UpdateInterface while the error says "Link not found".
    assert!(message(result).contains("Link not found"));
    pod.shutdown().await;
}

#[tokio::test]
async fn bad_interfaces_are_refused_naming_the_field_and_change_nothing() {
    let (pod, _) = pod_with_nic().await;
    let before = state(&pod);
    let cases: Vec<(types::Interface, &str)> = vec![
        (iface("", MAC, &[], 1500), "interface name"),
        (iface("eth0/x", MAC, &[], 1500), "interface name"),
        (iface("a-very-long-name0", MAC, &[], 1500), "interface name"),
        (iface("eth0", "02:00:00:00:01", &[], 1500), "hwAddr"),
        (
            iface("eth0", "02:00:00:00:00:01:02:03", &[], 1500),
            "hwAddr",
        ),
        (
            iface("eth0", MAC, &[("10.0.0.2", "33")], 1500),
            "IPAddresses[0]",
        ),
        (
            iface("eth0", MAC, &[("10.0.0.300", "24")], 1500),
            "IPAddresses[0]",
        ),
        (
            iface("eth0", MAC, &[("10.0.0.2", "24"), ("fd00::1", "x")], 1500),
            "IPAddresses[1]",
        ),
        (iface("eth0", MAC, &[], 67), "mtu"),
        (iface("eth0", MAC, &[], 70000), "mtu"),
        (iface("eth0", MAC, &[], u64::MAX), "mtu"),
    ];
    for (wanted, field) in cases {
        let result = pod.client.update_interface(wanted.clone()).await;
        assert_eq!(code(result.clone()), Code::INVALID_ARGUMENT, "{wanted:?}");
        assert!(message(result).contains(field), "{field}: {wanted:?}");
    }
    let mut unknown_family = iface("eth0", MAC, &[("10.0.0.2", "24")], 1500);
    unknown_family.IPAddresses[0].family = EnumOrUnknown::from_i32(7);
    let result = pod.client.update_interface(unknown_family).await;
    assert_eq!(code(result.clone()), Code::INVALID_ARGUMENT);
    assert!(message(result).contains("family"));
    let mut v4_as_v6 = iface("eth0", MAC, &[("10.0.0.2", "24")], 1500);
    v4_as_v6.IPAddresses[0].family = family(true);
    assert_eq!(
        code(pod.client.update_interface(v4_as_v6).await),
        Code::INVALID_ARGUMENT
    );
    let mut bad_path = iface("eth0", MAC, &[], 1500);
    bad_path.devicePath = "02/zz".into();
    let result = pod.client.update_interface(bad_path).await;
    assert!(message(result).contains("devicePath"));
    assert_eq!(state(&pod), before);
    pod.shutdown().await;
}

/// Runs `call` once to learn every fault point, then once per point in a fresh pod with that
/// call failing (with each errno), and checks the tables are exactly as before.
async fn faults_leave_the_tables_unchanged<F, Fut>(setup: Setup, call: F)
where
    F: Fn(Pod) -> Fut,
    Fut: std::future::Future<Output = (Pod, bool)>,
{
    let (pod, _) = pod_with_nic().await;
    setup.apply(&pod).await;
    let counts = pod.fake.faults.counts();
    let (pod, ok) = call(pod).await;
    assert!(ok, "the call succeeds without faults");
    let points = pod.fake.faults.points_since(&counts);
    pod.shutdown().await;
    let netlink_points: Vec<_> = points
        .into_iter()
        .filter(|p| {
            matches!(
                p.op,
                Op::Links
                    | Op::SetLink
                    | Op::Addresses
                    | Op::AddAddress
                    | Op::DelAddress
                    | Op::Routes
                    | Op::AddRoute
                    | Op::DelRoute
                    | Op::Neighbours
                    | Op::AddNeighbour
                    | Op::DelNeighbour
            )
        })
        .collect();
    assert!(netlink_points.len() >= 3, "{netlink_points:?}");
    for point in netlink_points {
        for errno in [Errno::EBUSY, Errno::ENODEV, Errno::EEXIST] {
            let (pod, _) = pod_with_nic().await;
            setup.apply(&pod).await;
            let before = state(&pod);
            pod.fake.faults.fail_nth(point.op, point.nth, errno);
            let (pod, ok) = call(pod).await;
            let tolerated = point.op == Op::AddRoute && errno == Errno::EEXIST;
            assert_eq!(ok, tolerated, "fault at {point} ({errno})");
            if !ok {
                assert_eq!(state(&pod), before, "fault at {point} ({errno})");
            }
            pod.shutdown().await;
        }
    }
}

/// What a fault test starts from, besides the NIC.
#[derive(Clone, Copy)]
enum Setup {
    /// Link `eth0` (another MAC) exists and is up.
    Holder,
    /// The NIC is configured as `eth0` with an IPv4 and an IPv6 address.
    Configured,
    /// As `Configured`, with IPv4 and IPv6 routes through `eth0`.
    Routed,
}

impl Setup {
    async fn apply(self, pod: &Pod) {
        match self {
            Setup::Holder => {
                let holder = pod
                    .fake
                    .netlink
                    .add_link("eth0", "02:00:00:00:00:99", 1500)
                    .unwrap();
                let up = kata_agent::host::LinkUpdate {
                    up: Some(true),
                    ..Default::default()
                };
                kata_agent::host::Netlink::set_link(&*pod.fake.netlink, holder, &up)
                    .await
                    .unwrap();
            }
            Setup::Configured => configured(pod).await,
            Setup::Routed => {
                configured(pod).await;
                let routes = vec![
                    route("", "10.0.0.1", "eth0"),
                    route("fd00:1::/64", "fd00::1", "eth0"),
                ];
                pod.client.update_routes(routes).await.unwrap();
            }
        }
    }
}

#[tokio::test]
async fn a_fault_anywhere_in_update_interface_leaves_the_links_as_they_were() {
    faults_leave_the_tables_unchanged(Setup::Holder, |pod| async move {
        let wanted = iface("eth0", MAC, &[("10.0.0.2", "24"), ("fd00::2", "64")], 1400);
        let ok = pod.client.update_interface(wanted).await.is_ok();
        (pod, ok)
    })
    .await;
}

async fn configured(pod: &Pod) {
    pod.client
        .update_interface(iface(
            "eth0",
            MAC,
            &[("10.0.0.2", "24"), ("fd00::2", "64")],
            1500,
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn routes_without_a_gateway_go_first_and_come_back_with_their_real_destination() {
    let (pod, _) = pod_with_nic().await;
    configured(&pod).await;
    let mut link_scope = route("10.0.0.0/24", "", "eth0");
    link_scope.scope = 253; // RT_SCOPE_LINK
    let wanted = vec![
        route("", "10.0.0.1", "eth0"),
        route("10.78.0.0/16", "10.0.0.1", "eth0"),
        link_scope,
        route("fd00:1::/64", "fd00::1", "eth0"),
        route("fd00::/64", "", "eth0"),
    ];
    let table = pod.client.update_routes(wanted).await.unwrap();
    let summary: Vec<(String, String, String)> = table
        .iter()
        .map(|r| (r.dest.clone(), r.gateway.clone(), r.device.clone()))
        .collect();
    let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    // The table as the kernel dumps it: by destination, IPv4 then IPv6.
    assert_eq!(
        summary,
        [
            s("0.0.0.0/0", "10.0.0.1", "eth0"),
            s("10.0.0.0/24", "", "eth0"),
            s("10.78.0.0/16", "10.0.0.1", "eth0"),
            s("fd00::/64", "", "eth0"),
            s("fd00:1::/64", "fd00::1", "eth0"),
        ]
    );
    assert_eq!(table[1].scope, 253);
    assert_eq!(table[3].family.enum_value(), Ok(types::IPFamily::v6));
    assert_eq!(pod.client.list_routes().await.unwrap(), table);
    // A listed table is valid input again (Kata's own listing is not).
    let again = pod.client.update_routes(table.clone()).await.unwrap();
    assert_eq!(again, table);
    pod.shutdown().await;
}

#[tokio::test]
async fn routes_with_unknown_devices_or_bad_fields_change_nothing() {
    let (pod, _) = pod_with_nic().await;
    configured(&pod).await;
    let before = state(&pod);
    let result = pod
        .client
        .update_routes(vec![
            route("10.1.0.0/16", "", "eth0"),
            route("10.2.0.0/16", "", "eth9"),
        ])
        .await;
    assert_eq!(code(result.clone()), Code::NOT_FOUND);
    assert!(message(result).contains("eth9"));
    let mut bad_scope = route("10.1.0.0/16", "", "eth0");
    bad_scope.scope = 300;
    let mut mixed = route("10.1.0.0/16", "fd00::1", "eth0");
    mixed.family = family(false);
    let mut source_prefix = route("10.1.0.0/16", "", "eth0");
    source_prefix.source = "10.0.0.0/8".into();
    let cases = [
        (route("10.1.0.0/33", "", "eth0"), "Routes[0].dest"),
        (
            route("10.1.0.0/16", "10.0.0.256", "eth0"),
            "Routes[0].gateway",
        ),
        (bad_scope, "Routes[0].scope"),
        (mixed, "Routes[0].family"),
        (source_prefix, "Routes[0].source"),
    ];
    for (r, field) in cases {
        let result = pod.client.update_routes(vec![r.clone()]).await;
        assert_eq!(code(result.clone()), Code::INVALID_ARGUMENT, "{r:?}");
        assert!(message(result).contains(field), "{field}");
    }
    assert_eq!(state(&pod), before);
    pod.shutdown().await;
}

#[tokio::test]
async fn a_fault_anywhere_in_update_routes_leaves_the_table_as_it_was() {
    faults_leave_the_tables_unchanged(Setup::Configured, |pod| async move {
        let wanted = vec![
            route("10.0.0.0/24", "", "eth0"),
            route("", "10.0.0.1", "eth0"),
            route("fd00:1::/64", "fd00::1", "eth0"),
        ];
        let ok = pod.client.update_routes(wanted).await.is_ok();
        (pod, ok)
    })
    .await;
}

#[tokio::test]
async fn arp_neighbours_are_permanent_by_default() {
    let (pod, index) = pod_with_nic().await;
    configured(&pod).await;
    let mut reachable = neighbour("fd00::9", "eth0", "02:00:00:00:00:09");
    reachable.state = 0x02;
    pod.client
        .add_arp_neighbors(vec![
            neighbour("10.0.0.9", "eth0", "02:00:00:00:00:0A"),
            reachable,
        ])
        .await
        .unwrap();
    let entries = state(&pod).neighbours;
    let summary: Vec<(u32, String, Option<String>, u16)> = entries
        .iter()
        .map(|n| (n.index, n.ip.to_string(), n.lladdr.clone(), n.state))
        .collect();
    assert_eq!(
        summary,
        [
            (
                index,
                "10.0.0.9".into(),
                Some("02:00:00:00:00:0a".into()),
                0x80
            ),
            (
                index,
                "fd00::9".into(),
                Some("02:00:00:00:00:09".into()),
                0x02
            ),
        ]
    );
    pod.shutdown().await;
}

#[tokio::test]
async fn bad_neighbours_are_refused_and_change_nothing() {
    let (pod, _) = pod_with_nic().await;
    configured(&pod).await;
    let before = state(&pod);
    let mut big_state = neighbour("10.0.0.9", "eth0", MAC);
    big_state.state = 0x100;
    let mut negative_flags = neighbour("10.0.0.9", "eth0", MAC);
    negative_flags.flags = -1;
    let no_ip = types::ARPNeighbor {
        device: "eth0".into(),
        ..Default::default()
    };
    let cases = [
        (
            neighbour("10.0.0.9", "eth0", "02:00"),
            "ARPNeighbors[0].lladdr",
        ),
        (
            neighbour("10.0.0.x", "eth0", MAC),
            "ARPNeighbors[0].toIPAddress",
        ),
        (big_state, "ARPNeighbors[0].state"),
        (negative_flags, "ARPNeighbors[0].flags"),
        (no_ip, "ARPNeighbors[0].toIPAddress"),
        (neighbour("10.0.0.9", "eth0", ""), "lladdr"),
    ];
    for (n, field) in cases {
        let result = pod.client.add_arp_neighbors(vec![n.clone()]).await;
        assert_eq!(code(result.clone()), Code::INVALID_ARGUMENT, "{n:?}");
        assert!(message(result).contains(field), "{field}");
    }
    let result = pod
        .client
        .add_arp_neighbors(vec![
            neighbour("10.0.0.9", "eth0", MAC),
            neighbour("10.0.0.8", "eth5", MAC),
        ])
        .await;
    assert_eq!(code(result), Code::NOT_FOUND);
    assert_eq!(state(&pod), before);
    pod.shutdown().await;
}

#[tokio::test]
async fn a_fault_anywhere_in_add_arp_neighbors_leaves_the_entries_as_they_were() {
    faults_leave_the_tables_unchanged(Setup::Configured, |pod| async move {
        let wanted = vec![
            neighbour("10.0.0.9", "eth0", MAC),
            neighbour("fd00::9", "eth0", MAC),
        ];
        let ok = pod.client.add_arp_neighbors(wanted).await.is_ok();
        (pod, ok)
    })
    .await;
}

#[tokio::test]
async fn iptables_programs_run_with_the_rules_on_stdin() {
    let pod = Pod::new().await;
    pod.fake
        .sysfs
        .write_file("/usr/sbin/iptables-save", "")
        .unwrap();
    pod.fake
        .sysfs
        .write_file("/sbin/ip6tables-restore", "")
        .unwrap();
    pod.fake.launcher.script(
        "iptables-save",
        Script::exit(0).stdout("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"),
    );
    pod.fake.launcher.script("ip6tables-restore", Script::cat());
    let req = agent_protos::agent::GetIPTablesRequest::new();
    let got = pod
        .client
        .agent
        .get_ip_tables(pod::ctx(), &req)
        .await
        .unwrap();
    assert_eq!(got.data, b"*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n");
    let launched = pod.fake.launcher.launches();
    let args = &launched.last().unwrap().request.process.args;
    assert_eq!(args, &["/usr/sbin/iptables-save"]);

    let rules = b"*filter\n-A INPUT -s 10.0.0.0/8 -j DROP\nCOMMIT\n".to_vec();
    let req = agent_protos::agent::SetIPTablesRequest {
        is_ipv6: true,
        data: rules.clone(),
        ..Default::default()
    };
    let got = pod
        .client
        .agent
        .set_ip_tables(pod::ctx(), &req)
        .await
        .unwrap();
    assert_eq!(got.data, rules, "the rules reached the program's stdin");
    let launched = pod.fake.launcher.launches();
    let args = &launched.last().unwrap().request.process.args;
    assert_eq!(args, &["/sbin/ip6tables-restore", "--wait", "5"]);

    // A missing program is named; a failing one reports its exit and stderr.
    let req = agent_protos::agent::GetIPTablesRequest {
        is_ipv6: true,
        ..Default::default()
    };
    let result = pod.client.agent.get_ip_tables(pod::ctx(), &req).await;
    assert_eq!(code(result.clone()), Code::FAILED_PRECONDITION);
    assert!(message(result).contains("ip6tables-save"));
    pod.fake.launcher.script(
        "ip6tables-restore",
        Script::exit(2).stderr("line 2 failed\n"),
    );
    let req = agent_protos::agent::SetIPTablesRequest {
        is_ipv6: true,
        data: b"junk".to_vec(),
        ..Default::default()
    };
    let result = pod.client.agent.set_ip_tables(pod::ctx(), &req).await;
    assert_eq!(code(result.clone()), Code::INTERNAL);
    let text = message(result);
    assert!(
        text.contains("exit code 2") && text.contains("line 2 failed"),
        "{text}"
    );
    assert_eq!(pod.fake.launcher.live(), Vec::<i32>::new());
    pod.shutdown().await;
}

#[tokio::test]
async fn a_fault_in_renaming_an_up_link_puts_back_what_going_down_dropped() {
    faults_leave_the_tables_unchanged(Setup::Routed, |pod| async move {
        let wanted = iface("eth5", MAC, &[("10.0.5.2", "24")], 1500);
        let ok = pod.client.update_interface(wanted).await.is_ok();
        (pod, ok)
    })
    .await;
}

#[tokio::test]
async fn an_up_link_keeps_its_ipv6_addresses_and_routes_unless_it_must_go_down() {
    let (pod, index) = pod_with_nic().await;
    Setup::Routed.apply(&pod).await;
    let before = state(&pod);
    let wanted = iface("eth0", MAC, &[("10.0.0.2", "24"), ("10.0.1.2", "24")], 1400);
    pod.client.update_interface(wanted).await.unwrap();
    let after = state(&pod);
    assert_eq!(after.routes, before.routes, "not brought down: routes kept");
    assert!(
        after
            .addresses
            .iter()
            .any(|a| a.index == index && a.ip.is_ipv6())
    );
    assert_eq!(pod.fake.netlink.link(index).unwrap().mtu, 1400);
    pod.shutdown().await;
}
