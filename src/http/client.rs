//! Who the client is. The peer address of the connection, unless that peer
//! is a trusted reverse proxy (`--trusted-proxy CIDR,…`): then the client
//! is the rightmost hop, not itself a trusted proxy, of the one header the
//! proxy is configured to set (`--client-ip-header`: `X-Forwarded-For`,
//! `Forwarded` (RFC 7239) or `X-Real-IP`); the other forwarding headers
//! are ignored, so a client cannot pick its address by sending one the
//! proxy passes through untouched. Without trusted proxies they are all
//! ignored (anyone can send them).
//!
//! Limits count an IPv6 client by its `--ipv6-prefix` (a /64 by
//! default): [`key`].

use crate::config::{canonical_ip as canonical, Cidr, ClientIpHeader};
use http::HeaderMap;
use std::net::IpAddr;

/// The `for=` addresses of `Forwarded` headers, in order (RFC 7239 §4:
/// `for=192.0.2.60`, `for="[2001:db8::17]:4711"`, `for="198.51.100.1:80"`).
/// An obfuscated or `unknown` node yields `None` in its place.
pub fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut out = Vec::new();
    for value in headers.get_all(http::header::FORWARDED) {
        let Ok(value) = value.to_str() else { continue };
        for element in value.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
            });
            if let Some(node) = node {
                out.push(parse_node(node));
            }
        }
    }
    out
}

/// An RFC 7239 node: an address, with optional quotes, brackets and port.
fn parse_node(node: &str) -> Option<IpAddr> {
    let n = node.trim().trim_matches('"');
    if let Some(rest) = n.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    n.parse()
        .ok()
        .or_else(|| n.rsplit_once(':')?.0.parse().ok())
}

/// The addresses of `X-Forwarded-For` headers, in order.
pub fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(parse_node)
        .collect()
}

/// The addresses of `X-Real-IP` (one, set by the proxy).
fn x_real_ip(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-real-ip")
        .iter()
        .map(|v| v.to_str().ok().and_then(parse_node))
        .collect()
}

/// The client of a request that came from `peer` (see the module docs).
pub fn resolve(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[Cidr],
    which: ClientIpHeader,
) -> IpAddr {
    let trusts = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if trusted.is_empty() || !trusts(peer) {
        return canonical(peer);
    }
    let hops = match which {
        ClientIpHeader::XForwardedFor => x_forwarded_for(headers),
        ClientIpHeader::Forwarded => forwarded_for(headers),
        ClientIpHeader::XRealIp => x_real_ip(headers),
    };
    let mut client = canonical(peer);
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) if trusts(ip) => client = canonical(ip),
            Some(ip) => return canonical(ip),
            // An unparsable hop was added by someone we do not trust.
            None => return client,
        }
    }
    client
}

/// The address limits count a client by: an IPv6 one cut to its first
/// `v6_prefix` bits (the rest zero), an IPv4 one as it is.
pub fn key(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u32::from(v6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop_of_the_proxys_header() {
        use ClientIpHeader::*;
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let peer = ip("10.0.0.2");
        let fwd = h(&[(
            "forwarded",
            "for=198.51.100.7;proto=https, for=\"10.0.0.9:80\"",
        )]);
        assert_eq!(resolve(peer, &fwd, &trusted, Forwarded), ip("198.51.100.7"));
        // A client cannot choose its address by prepending hops.
        let xff = h(&[("x-forwarded-for", "1.2.3.4,  203.0.113.5 , 10.0.0.3")]);
        assert_eq!(
            resolve(peer, &xff, &trusted, XForwardedFor),
            ip("203.0.113.5")
        );
        let v6 = h(&[("forwarded", "for=\"[2001:db8::17]:4711\"")]);
        assert_eq!(resolve(peer, &v6, &trusted, Forwarded), ip("2001:db8::17"));
        // Headers from an untrusted peer, or with no trusted proxy, are ignored.
        assert_eq!(
            resolve(ip("203.0.113.9"), &xff, &trusted, XForwardedFor),
            ip("203.0.113.9")
        );
        assert_eq!(resolve(peer, &xff, &[], XForwardedFor), peer);
        let junk = h(&[("forwarded", "for=unknown, for=_hidden")]);
        assert_eq!(resolve(peer, &junk, &trusted, Forwarded), peer);
        // Only the configured header counts: a client's own `Forwarded`
        // beside the proxy's X-Forwarded-For changes nothing.
        let both = h(&[
            ("forwarded", "for=1.2.3.4"),
            ("x-forwarded-for", "203.0.113.5"),
        ]);
        assert_eq!(
            resolve(peer, &both, &trusted, XForwardedFor),
            ip("203.0.113.5")
        );
        assert_eq!(resolve(peer, &both, &trusted, Forwarded), ip("1.2.3.4"));
        let real = h(&[("x-real-ip", "203.0.113.8"), ("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(resolve(peer, &real, &trusted, XRealIp), ip("203.0.113.8"));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_prefix() {
        let a = key(ip("2001:db8:1:2:aaaa::1"), 64);
        assert_eq!(a, ip("2001:db8:1:2::"));
        assert_eq!(key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), 64), a);
        assert_ne!(key(ip("2001:db8:1:3::1"), 64), a);
        assert_eq!(key(ip("2001:db8::1"), 128), ip("2001:db8::1"));
        assert_eq!(key(ip("198.51.100.7"), 64), ip("198.51.100.7"));
        assert_eq!(key(ip("::ffff:198.51.100.7"), 64), ip("198.51.100.7"));
    }
}
