//! The network RPCs for real: the `kata-agent` binary (in its own network namespace, see
//! `support::real_agent`) driven over ttrpc, with veth pairs made in that namespace, and each
//! result read back with `ip -j` and compared. Traffic never leaves the namespace, which dies
//! with the agent. Needs root and iproute2 (and `iptables` for the iptables test).

use std::process::Command;

use agent_harness::messages::{interface as iface, route};
use agent_protos::{agent as pb, types};
use protobuf::MessageField;
use serde_json::Value;

use agent_testing::real_agent::RealAgent;
use agent_testing::timed_ctx;
use agent_testing::wire::code;

const MAC_A: &str = "02:00:00:00:0a:01";
const MAC_B: &str = "02:00:00:00:0b:01";

/// Runs `program args` in the agent's network namespace; panics with its stderr on failure.
fn run_in(agent: &RealAgent, program: &str, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .args(["-t", &agent.pid().to_string(), "-n", program])
        .args(args)
        .output()
        .expect("run nsenter");
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `ip -j <args>` in the agent's namespace.
fn ip_json(agent: &RealAgent, args: &[&str]) -> Value {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    serde_json::from_str(&run_in(agent, "ip", &all)).unwrap()
}

/// A veth pair `name` (with `mac`) / `<name>p`, the peer up so `name` gets a carrier.
fn veth(agent: &RealAgent, name: &str, mac: &str) {
    let peer = format!("{name}p");
    run_in(
        agent,
        "ip",
        &[
            "link", "add", name, "address", mac, "type", "veth", "peer", "name", &peer,
        ],
    );
    run_in(agent, "ip", &["link", "set", &peer, "up"]);
}

/// A veth `ens3` (MAC A) configured as `eth0` with 10.0.0.2/24 and fd00::2/64.
async fn configure_eth0(agent: &RealAgent) {
    veth(agent, "ens3", MAC_A);
    let eth0 = iface(
        "eth0",
        MAC_A,
        &[("10.0.0.2", "24"), ("fd00::2", "64")],
        1500,
    );
    agent.client.update_interface(eth0).await.unwrap();
}

/// `(address, prefix)` of `dev`'s global addresses, from `ip -j addr`.
fn kernel_addresses(agent: &RealAgent, dev: &str) -> Vec<(String, u64)> {
    let shown = ip_json(agent, &["addr", "show", "dev", dev]);
    shown[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["scope"] == "global")
        .map(|a| {
            (
                a["local"].as_str().unwrap().to_owned(),
                a["prefixlen"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs root: a real agent in its own network namespace"]
async fn update_interface_is_what_ip_shows() {
    let agent = RealAgent::start("net-iface").await;
    veth(&agent, "ens3", MAC_A);
    let wanted = iface(
        "eth0",
        MAC_A,
        &[("10.0.0.2", "24"), ("fd00::2", "64")],
        1400,
    );
    let got = agent.client.update_interface(wanted).await.unwrap();

    let link = &ip_json(&agent, &["link", "show", "dev", "eth0"])[0];
    assert_eq!(link["address"], MAC_A);
    assert_eq!(link["mtu"], 1400);
    let flags: Vec<&str> = link["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        flags.contains(&"UP") && !flags.contains(&"NOARP"),
        "{flags:?}"
    );
    assert_eq!(
        kernel_addresses(&agent, "eth0"),
        [("10.0.0.2".to_owned(), 24), ("fd00::2".to_owned(), 64)]
    );
    assert_eq!((got.name.as_str(), got.mtu), ("eth0", 1400));
    assert_eq!(got.hwAddr, MAC_A);
    let reported: Vec<(String, String)> = got
        .IPAddresses
        .iter()
        .map(|a| (a.address.clone(), a.mask.clone()))
        .collect();
    for want in [("10.0.0.2", "24"), ("fd00::2", "64")] {
        assert!(
            reported.contains(&(want.0.into(), want.1.into())),
            "{reported:?}"
        );
    }
    let listed = agent.client.list_interfaces().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|i| i.name.as_str()).collect();
    let kernel: Vec<String> = ip_json(&agent, &["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, kernel);

    // A bad request changes nothing.
    let before = ip_json(&agent, &["addr", "show"]);
    let bad = iface(
        "eth0",
        MAC_A,
        &[("10.0.0.3", "24"), ("10.0.0.4", "40")],
        1400,
    );
    let result = agent.client.update_interface(bad).await;
    assert_eq!(code(&result), ttrpc::Code::INVALID_ARGUMENT, "{result:?}");
    // The kernel refuses an MTU over the veth maximum after the addresses were added: the
    // agent undoes them.
    let too_big = iface("eth0", MAC_A, &[("10.0.0.5", "24")], 65536);
    let result = agent.client.update_interface(too_big).await;
    assert_eq!(code(&result), ttrpc::Code::INTERNAL, "{result:?}");
    assert_eq!(ip_json(&agent, &["addr", "show"]), before);
}

#[tokio::test]
#[ignore = "needs root: a real agent in its own network namespace"]
async fn a_rename_onto_a_taken_name_swaps_the_two_names() {
    let agent = RealAgent::start("net-swap").await;
    veth(&agent, "eth1", MAC_A);
    run_in(&agent, "ip", &["link", "set", "eth1", "up"]);
    veth(&agent, "ens4", MAC_B);
    agent
        .client
        .update_interface(iface("eth1", MAC_B, &[("10.1.0.2", "24")], 1500))
        .await
        .unwrap();
    let by_mac = |mac: &str| {
        ip_json(&agent, &["link", "show"])
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["address"] == mac)
            .cloned()
            .unwrap()
    };
    let (nic, holder) = (by_mac(MAC_B), by_mac(MAC_A));
    assert_eq!(nic["ifname"], "eth1");
    assert_eq!(
        holder["ifname"], "ens4",
        "the holder took the NIC's old name"
    );
    assert_eq!(holder["operstate"], "UP", "and is up again");
}

#[tokio::test]
#[ignore = "needs root: a real agent in its own network namespace"]
async fn routes_and_neighbours_are_what_ip_shows() {
    let agent = RealAgent::start("net-routes").await;
    configure_eth0(&agent).await;
    let wanted = vec![
        route("", "10.0.0.1", "eth0"),
        route("10.78.0.0/16", "10.0.0.1", "eth0"),
        route("192.168.7.0/24", "", "eth0"),
        route("fd00:1::/64", "fd00::1", "eth0"),
    ];
    let table = agent.client.update_routes(wanted).await.unwrap();
    let ours = |t: &[types::Route], v6: bool| -> Vec<(String, String, String)> {
        let mut v: Vec<_> = t
            .iter()
            .filter(|r| (r.family.enum_value() == Ok(types::IPFamily::v6)) == v6)
            .map(|r| (r.dest.clone(), r.gateway.clone(), r.device.clone()))
            .collect();
        v.sort();
        v
    };
    let kernel = |v6: bool| -> Vec<(String, String, String)> {
        let family = if v6 { "-6" } else { "-4" };
        let mut v: Vec<_> = ip_json(&agent, &[family, "route", "show", "table", "main"])
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let dst = r["dst"].as_str().unwrap();
                let dest = match (dst, v6) {
                    ("default", false) => "0.0.0.0/0".to_owned(),
                    ("default", true) => "::/0".to_owned(),
                    (d, false) if !d.contains('/') => format!("{d}/32"),
                    (d, true) if !d.contains('/') => format!("{d}/128"),
                    (d, _) => d.to_owned(),
                };
                let gw = r["gateway"].as_str().unwrap_or("").to_owned();
                (dest, gw, r["dev"].as_str().unwrap_or("").to_owned())
            })
            .collect();
        v.sort();
        v
    };
    let s = |a: &str, b: &str| (a.to_owned(), b.to_owned(), "eth0".to_owned());
    for want in [s("10.78.0.0/16", "10.0.0.1"), s("0.0.0.0/0", "10.0.0.1")] {
        assert!(ours(&table, false).contains(&want), "{want:?}");
    }
    // The kernel may still add a link-local route of a link that just came up: compare the
    // agent's answer with `ip` until both have settled.
    let mut listed = table.clone();
    for _ in 0..50 {
        if ours(&listed, false) == kernel(false) && ours(&listed, true) == kernel(true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        listed = agent.client.list_routes().await.unwrap();
    }
    assert_eq!(ours(&listed, false), kernel(false));
    assert_eq!(ours(&listed, true), kernel(true));
    assert_eq!(
        ours(&listed, false),
        ours(&table, false),
        "UpdateRoutes answered the table"
    );

    // A route through an unknown gateway fails in the kernel: the route added before it in
    // the same request is removed again.
    let before = kernel(false);
    let result = agent
        .client
        .update_routes(vec![
            route("10.99.0.0/16", "", "eth0"),
            route("10.98.0.0/16", "172.16.0.1", "eth0"),
        ])
        .await;
    assert_eq!(code(&result), ttrpc::Code::INTERNAL, "{result:?}");
    assert_eq!(kernel(false), before);

    let neighbour = types::ARPNeighbor {
        toIPAddress: MessageField::some(types::IPAddress {
            address: "10.0.0.9".into(),
            ..Default::default()
        }),
        device: "eth0".into(),
        lladdr: "02:00:00:00:00:09".into(),
        ..Default::default()
    };
    agent
        .client
        .add_arp_neighbors(vec![neighbour])
        .await
        .unwrap();
    let shown = ip_json(&agent, &["neigh", "show", "dev", "eth0", "to", "10.0.0.9"]);
    assert_eq!(shown[0]["lladdr"], "02:00:00:00:00:09");
    assert_eq!(shown[0]["state"][0], "PERMANENT");
}

#[tokio::test]
#[ignore = "needs root: a real agent in its own network namespace, and iptables"]
async fn iptables_rules_round_trip_through_the_real_programs() {
    let agent = RealAgent::start("net-iptables").await;
    let rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                 -A INPUT -s 10.66.0.0/16 -j DROP\nCOMMIT\n";
    let set = pb::SetIPTablesRequest {
        data: rules.as_bytes().to_vec(),
        ..Default::default()
    };
    agent
        .client
        .agent
        .set_ip_tables(timed_ctx(), &set)
        .await
        .unwrap();
    let got = agent
        .client
        .agent
        .get_ip_tables(timed_ctx(), &pb::GetIPTablesRequest::new())
        .await
        .unwrap();
    let text = String::from_utf8(got.data).unwrap();
    assert!(text.contains("-A INPUT -s 10.66.0.0/16 -j DROP"), "{text}");
    let kernel = run_in(&agent, "iptables-save", &[]);
    assert!(
        kernel.contains("-A INPUT -s 10.66.0.0/16 -j DROP"),
        "{kernel}"
    );
    let bad = pb::SetIPTablesRequest {
        data: b"*filter\n-A NOCHAIN -j DROP\nCOMMIT\n".to_vec(),
        ..Default::default()
    };
    let result = agent.client.agent.set_ip_tables(timed_ctx(), &bad).await;
    assert_eq!(code(&result), ttrpc::Code::INTERNAL, "{result:?}");
}

/// `(dst, gateway, dev)` of every route of the main table, IPv4 and IPv6, sorted.
fn route_triples(agent: &RealAgent) -> Vec<(String, String, String)> {
    let mut all = Vec::new();
    for family in ["-4", "-6"] {
        for r in ip_json(agent, &[family, "route", "show", "table", "main"])
            .as_array()
            .unwrap()
        {
            let field = |k: &str| r[k].as_str().unwrap_or("").to_owned();
            all.push((field("dst"), field("gateway"), field("dev")));
        }
    }
    all.sort();
    all
}

#[tokio::test]
#[ignore = "needs root: a real agent in its own network namespace"]
async fn a_failed_rename_of_an_up_link_restores_its_addresses_and_routes() {
    let agent = RealAgent::start("net-undo").await;
    configure_eth0(&agent).await;
    agent
        .client
        .update_routes(vec![
            route("", "10.0.0.1", "eth0"),
            route("fd00:1::/64", "fd00::1", "eth0"),
        ])
        .await
        .unwrap();
    let addrs_before = kernel_addresses(&agent, "eth0");
    let routes_before = route_triples(&agent);
    assert!(
        routes_before.iter().any(|r| r.0 == "default"),
        "{routes_before:?}"
    );
    // The rename brings the link down (the kernel drops its IPv6 address and its routes),
    // then the kernel refuses the MTU: everything must come back.
    let failing = iface("eth9", MAC_A, &[("10.0.9.2", "24")], 65536);
    let result = agent.client.update_interface(failing).await;
    assert_eq!(code(&result), ttrpc::Code::INTERNAL, "{result:?}");
    assert_eq!(kernel_addresses(&agent, "eth0"), addrs_before);
    assert_eq!(route_triples(&agent), routes_before);
    let link = &ip_json(&agent, &["link", "show", "dev", "eth0"])[0];
    assert_eq!(link["operstate"], "UP");
}
