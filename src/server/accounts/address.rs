//! The client's address behind reverse proxies: a request's `X-Forwarded-For` is believed only
//! when the connection comes from a network the operator named (`trusted-proxies`), and then
//! only up to the first hop that is not itself a trusted proxy. A client reaching Herald's port
//! directly cannot forge its address; clients behind a proxy are told apart.

use std::net::IpAddr;

use anyhow::{Context, Result};
use axum::http::request::Parts;
use ipnet::IpNet;

/// Hops of `X-Forwarded-For` looked at, from the right.
const MAX_HOPS: usize = 16;

/// The networks whose connections may say who the client is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// What the old `trust-proxy = true` meant in practice: a proxy on this machine or the private
/// network (never the internet).
pub const LOCAL_NETWORKS: [&str; 6] = [
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
];

impl TrustedProxies {
    /// Each entry a network (`10.0.0.0/8`) or one address (`127.0.0.1`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self> {
        let mut nets = Vec::new();
        for entry in entries
            .iter()
            .map(|e| e.as_ref().trim())
            .filter(|e| !e.is_empty())
        {
            let net = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .with_context(|| {
                    format!("trusted-proxies: {entry:?} is neither a network (10.0.0.0/8) nor an address")
                })?;
            nets.push(net.trunc());
        }
        Ok(TrustedProxies(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client behind a connection from `peer` carrying `forwarded` (every
    /// `X-Forwarded-For` value, in order): the last hop not in a trusted network.
    pub fn client<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        let mut client = canonical(peer);
        let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).collect();
        // Only as many hops as a real chain of proxies has are looked at.
        for hop in hops.into_iter().rev().take(MAX_HOPS) {
            if !self.trusts(client) {
                return client;
            }
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => client = canonical(ip),
                // A hop that is not an address: the client is the proxy that added it.
                Err(_) => return client,
            }
        }
        client
    }

    /// The client of a request (the connection's peer, or who a trusted proxy says it is).
    pub fn client_of(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()?
            .0
            .ip();
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        Some(self.client(peer, forwarded))
    }
}

/// IPv4 mapped into IPv6 (a dual-stack socket) as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_direct_client_cannot_forge_its_address() {
        let t = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let got = t.client(ip("198.51.100.9"), ["1.2.3.4"].into_iter());
        assert_eq!(got, ip("198.51.100.9"));
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("10.0.0.1"), ["1.2.3.4"].into_iter()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_last_untrusted_hop_is_the_client() {
        let t = TrustedProxies::parse(&["10.0.0.0/8", "127.0.0.1"]).unwrap();
        // The client put a forged entry first; the proxies appended the real hops.
        let got = t.client(
            ip("127.0.0.1"),
            ["6.6.6.6, 203.0.113.5", "10.1.2.3"].into_iter(),
        );
        assert_eq!(got, ip("203.0.113.5"));
        assert_eq!(
            t.client(ip("::ffff:10.0.0.2"), ["203.0.113.6"].into_iter()),
            ip("203.0.113.6")
        );
        assert_eq!(
            t.client(ip("10.0.0.2"), ["not-an-ip"].into_iter()),
            ip("10.0.0.2")
        );
        assert_eq!(t.client(ip("10.0.0.2"), std::iter::empty()), ip("10.0.0.2"));
    }

    #[test]
    fn entries_are_networks_or_addresses() {
        assert!(TrustedProxies::parse(&["10.0.0.0/8", "::1", "fd00::/8"]).is_ok());
        let e = TrustedProxies::parse(&["ten"]).unwrap_err().to_string();
        assert!(e.contains("trusted-proxies"), "{e}");
    }
}
