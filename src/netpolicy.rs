//! Where an import may connect: never into the server's own network
//! unless allowed. Every address a host name resolves to, at every hop
//! (redirects included), is checked here before a connection is made, and
//! the connection goes to the checked address (the DNS answer is pinned:
//! a second lookup could answer differently).
//!
//! Refused by default: loopback, private (10/8, 172.16/12, 192.168/16,
//! fc00::/7), shared (100.64/10), link-local (169.254/16 with the cloud
//! metadata address 169.254.169.254, fe80::/10), multicast, broadcast,
//! unspecified, reserved and documentation ranges, and every IPv6 form
//! that carries an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo)
//! when that address is refused. `--import-allow-private` allows them
//! all; `--import-allow` allows one address and port, or one range.
//!
//! Address ranges ([`Cidr`]) live here too: `--trusted-proxy` uses them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// An address range (`10.0.0.0/8`, `::1/128`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    /// For clap: a CIDR or an error saying what one looks like.
    pub fn parse_arg(s: &str) -> Result<Cidr, String> {
        Cidr::parse(s).ok_or_else(|| {
            format!("`{s}` is not an address range: give e.g. 10.0.0.0/8, 127.0.0.1 or ::1/128")
        })
    }

    /// Parses `ADDR/BITS` or `ADDR`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = match s.trim().split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
            None => (s.trim(), None),
        };
        let net: IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { net, bits })
    }

    /// True when `ip` is in the range (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

/// `ip`, with an IPv4-mapped IPv6 address as the IPv4 one.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = (usize::from(bits / 8), bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

/// IPv4 ranges an import never reaches by default.
const REFUSED_V4: [&str; 16] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
];

/// IPv6 ranges an import never reaches by default (those that embed an
/// IPv4 address are checked through it, see [`embedded_v4`]).
const REFUSED_V6: [&str; 8] = [
    "::/128",
    "::1/128",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

/// One `--import-allow` entry: an address and port, or a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    Socket(SocketAddr),
    Range(Cidr),
}

impl Allow {
    /// For clap: `127.0.0.1:8080`, `[::1]:8080`, `10.0.0.0/8`, `192.168.1.5`.
    pub fn parse_arg(s: &str) -> Result<Allow, String> {
        if let Ok(sock) = s.trim().parse::<SocketAddr>() {
            return Ok(Allow::Socket(sock));
        }
        Cidr::parse(s).map(Allow::Range).ok_or_else(|| {
            format!("`{s}` is not an address and port (127.0.0.1:8080) or a range (10.0.0.0/8)")
        })
    }

    fn matches(&self, to: SocketAddr) -> bool {
        match self {
            Allow::Socket(s) => {
                canonical_ip(s.ip()) == canonical_ip(to.ip()) && s.port() == to.port()
            }
            Allow::Range(r) => r.contains(to.ip()),
        }
    }
}

/// What the fetcher may reach.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `--import-allow-private`: every address.
    pub allow_private: bool,
    /// `--import-allow`: these, besides public addresses.
    pub allow: Vec<Allow>,
}

impl Policy {
    /// True when an import may connect to `to`.
    pub fn permits(&self, to: SocketAddr) -> bool {
        self.allow_private || is_public(to.ip()) || self.allow.iter().any(|a| a.matches(to))
    }
}

/// The IPv4 address an IPv6 one carries: mapped (::ffff:a.b.c.d),
/// compatible (::a.b.c.d), NAT64 (64:ff9b::/96 and 64:ff9b:1::/48),
/// 6to4 (2002:AABB:CCDD::/48) and Teredo (2001::/32, the client address
/// inverted).
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    let last = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return Some(last);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..3] == [0x64, 0xff9b, 1] {
        return Some(last);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    if s[..2] == [0x2001, 0] {
        let inv = |b: u8| !b;
        return Some(Ipv4Addr::new(
            inv(o[12]),
            inv(o[13]),
            inv(o[14]),
            inv(o[15]),
        ));
    }
    None
}

fn in_any(ranges: &[&str], ip: IpAddr) -> bool {
    ranges
        .iter()
        .filter_map(|r| Cidr::parse(r))
        .any(|c| c.contains(ip))
}

/// True for an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !in_any(&REFUSED_V4, IpAddr::V4(v4)),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => !in_any(&REFUSED_V6, IpAddr::V6(v6)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_match_by_prefix() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains(ip("10.1.200.3")) && !c.contains(ip("10.2.0.1")));
        assert!(c.contains(ip("::ffff:10.1.0.9")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("2001:db8::/33")
            .unwrap()
            .contains(ip("2001:db8:7fff::1")));
        assert!(!Cidr::parse("2001:db8::/33")
            .unwrap()
            .contains(ip("2001:db8:8000::1")));
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::1/129", ""] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_servers_own_networks_are_refused() {
        for refused in [
            "127.0.0.1",
            "127.255.255.254",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "169.254.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "198.18.0.1",
            "192.0.2.1",
            "::",
            "::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip(refused)), "{refused} must be refused");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:93.184.216.34",
            "2002:5db8:d822::1",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip(public)), "{public} is public");
        }
    }

    #[test]
    fn an_allowance_names_exactly_what_it_allows() {
        let sock = |s: &str| s.parse::<SocketAddr>().unwrap();
        let test_server = Allow::parse_arg("127.0.0.1:8080").unwrap();
        let lan = Allow::parse_arg("192.168.1.0/24").unwrap();
        let p = Policy {
            allow_private: false,
            allow: vec![test_server, lan],
        };
        assert!(p.permits(sock("127.0.0.1:8080")));
        assert!(p.permits(sock("[::ffff:127.0.0.1]:8080")));
        assert!(!p.permits(sock("127.0.0.1:3300")), "another port");
        assert!(!p.permits(sock("[::1]:8080")));
        assert!(p.permits(sock("192.168.1.77:443")));
        assert!(!p.permits(sock("192.168.2.1:443")));
        assert!(!p.permits(sock("169.254.169.254:80")));
        assert!(p.permits(sock("93.184.216.34:443")));
        let open = Policy {
            allow_private: true,
            allow: vec![],
        };
        assert!(open.permits(sock("127.0.0.1:1")));
        assert!(Allow::parse_arg("nonsense").is_err());
        assert_eq!(
            Allow::parse_arg("[::1]:9").unwrap(),
            Allow::Socket(sock("[::1]:9"))
        );
    }
}
