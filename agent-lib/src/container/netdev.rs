//! `/proc/<pid>/net/dev`: per-interface counters of a network namespace.

/// The counters of one interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Interface name.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Sent packets dropped.
    pub tx_dropped: u64,
}

/// Parses the text of `/proc/net/dev`: two header lines, then `name: ` and 16 counters per
/// line (8 receive, 8 transmit). Lines that do not parse are skipped.
pub fn parse_net_dev(text: &str) -> Vec<NetworkStats> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let n: Vec<u64> = counters
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            if n.len() < 16 {
                return None;
            }
            Some(NetworkStats {
                name: name.trim().to_owned(),
                rx_bytes: n[0],
                rx_packets: n[1],
                rx_errors: n[2],
                rx_dropped: n[3],
                tx_bytes: n[8],
                tx_packets: n[9],
                tx_errors: n[10],
                tx_dropped: n[11],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_format() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n  \
eth0: 123456     789    1    2    0     0          0         3    65432     321    4    5    0     0       0          0\n\
garbage line\n";
        let stats = parse_net_dev(text);
        assert_eq!(stats.len(), 2);
        assert_eq!(
            stats[1],
            NetworkStats {
                name: "eth0".into(),
                rx_bytes: 123456,
                rx_packets: 789,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 65432,
                tx_packets: 321,
                tx_errors: 4,
                tx_dropped: 5,
            }
        );
    }
}
