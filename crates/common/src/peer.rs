//! Who a per-address limit counts: what one client can hardly multiply.

use std::net::{IpAddr, Ipv6Addr};

/// The source a per-address limit is kept for: an IPv4 address, or an IPv6 /64 (the least a
/// host is usually given, so that one host cannot take a fresh budget from each of its 2⁶⁴
/// addresses). An IPv4-mapped IPv6 address is its IPv4 address.
pub fn source(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source_of(text: &str) -> String {
        source(text.parse().unwrap()).to_string()
    }

    #[test]
    fn ipv6_hosts_are_their_64_and_mapped_addresses_their_ipv4() {
        assert_eq!(source_of("2001:db8:1:2:ffff::7"), "2001:db8:1:2::");
        assert_eq!(source_of("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(source_of("192.0.2.1"), "192.0.2.1");
        assert_eq!(source_of("::1"), "::");
    }
}
