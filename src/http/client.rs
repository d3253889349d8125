//! Who the client is. The peer address of the connection, unless that peer
//! is a trusted reverse proxy (`--trusted-proxy CIDR,…`): then the client
//! is the rightmost hop of `Forwarded` (RFC 7239), else of
//! `X-Forwarded-For`, that is not itself a trusted proxy. Without trusted
//! proxies these headers are ignored (anyone can send them).

use crate::config::{canonical_ip as canonical, Cidr};
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

/// The client of a request that came from `peer` (see the module docs).
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let trusts = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if trusted.is_empty() || !trusts(peer) {
        return canonical(peer);
    }
    let mut hops = forwarded_for(headers);
    if hops.is_empty() {
        hops = x_forwarded_for(headers);
    }
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
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let peer = ip("10.0.0.2");
        let fwd = h(&[(
            "forwarded",
            "for=198.51.100.7;proto=https, for=\"10.0.0.9:80\"",
        )]);
        assert_eq!(resolve(peer, &fwd, &trusted), ip("198.51.100.7"));
        // A client cannot choose its address by prepending hops.
        let xff = h(&[("x-forwarded-for", "1.2.3.4,  203.0.113.5 , 10.0.0.3")]);
        assert_eq!(resolve(peer, &xff, &trusted), ip("203.0.113.5"));
        let v6 = h(&[("forwarded", "for=\"[2001:db8::17]:4711\"")]);
        assert_eq!(resolve(peer, &v6, &trusted), ip("2001:db8::17"));
        // Headers from an untrusted peer, or with no trusted proxy, are ignored.
        assert_eq!(
            resolve(ip("203.0.113.9"), &xff, &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(resolve(peer, &xff, &[]), peer);
        let junk = h(&[("forwarded", "for=unknown, for=_hidden")]);
        assert_eq!(resolve(peer, &junk, &trusted), peer);
    }
}
