//! Where channels may send. An admin (or a forged request) must not point a channel's stored
//! token at an internal service, so unless the operator allows private endpoints
//! (`allow-private-endpoints`, for local fakes and tests), a request to a loopback, private,
//! link-local (cloud metadata at 169.254.169.254), shared or unspecified address is refused:
//! an address written in the URL before anything is sent, a name when it resolves (only public
//! addresses are used). Redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Not an address on the public internet.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => private_v4(v4),
            None => private_v6(v6),
        },
    }
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, 198.18.0.0/15
        || a >= 224 // multicast and reserved
}

fn private_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    let first = seg[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated, still routed inside some sites)
        || ip.is_multicast()
        || first == 0x2001 && seg[1] == 0x0db8 // documentation
        || embedded_v4(ip).is_some_and(private_v4)
}

/// The IPv4 address an IPv6 address carries to a translator or tunnel: NAT64
/// (`64:ff9b::/96`, and the local-use `64:ff9b:1::/48`), IPv4-compatible (`::a.b.c.d`) and
/// 6to4 (`2002:aabb:ccdd::/48`). A gateway on the way delivers to that IPv4 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let last32 = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    match seg {
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(last32(hi, lo)),
        [0x64, 0xff9b, 1, ..] => Some(last32(seg[6], seg[7])),
        [0, 0, 0, 0, 0, 0, hi, lo] => Some(last32(hi, lo)),
        [0x2002, hi, lo, ..] => Some(last32(hi, lo)),
        _ => None,
    }
}

/// `base` with `segments` appended as path segments, each escaped: a `/`, `?` or `#` inside a
/// setting (a phone number id, an account SID) cannot change where a request goes. A base
/// that is not a URL comes back as it is, and the request then fails before anything is sent.
pub fn api_url(base: &str, segments: &[&str]) -> String {
    let Ok(mut url) = reqwest::Url::parse(base.trim()) else {
        return base.to_string();
    };
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    } else {
        return base.to_string();
    }
    url.to_string()
}

/// Why sending to `url` is refused (an address in it that is not public, or `localhost`), if
/// it is; names are checked again when they resolve.
pub fn check_url(url: &str, allow_private: bool) -> Result<(), String> {
    if allow_private || url.trim().is_empty() {
        return Ok(());
    }
    let parsed =
        reqwest::Url::parse(url.trim()).map_err(|_| format!("“{url}” is not a web address."))?;
    check_host(parsed.host_str().unwrap_or_default(), false)
}

/// Why connecting to `host` (a name or an address) is refused, if it is.
pub fn check_host(host: &str, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let bare = host.trim().trim_start_matches('[').trim_end_matches(']');
    let private = match bare.parse::<IpAddr>() {
        Ok(ip) => is_private(ip),
        Err(_) => {
            let name = bare.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    if private {
        return Err(format!(
            "{host} is not a public address; Herald sends only to public endpoints (an operator can allow private ones with allow-private-endpoints)."
        ));
    }
    Ok(())
}

/// Why a name gave no address to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// The lookup failed (worth trying again later).
    Lookup(String),
    /// It resolves only to addresses that are not public.
    NotPublic(String),
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unresolved::Lookup(s) | Unresolved::NotPublic(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for Unresolved {}

/// The public addresses `host` resolves to; refused when it resolves to none.
pub async fn public_addresses(host: &str) -> Result<Vec<SocketAddr>, Unresolved> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| Unresolved::Lookup(format!("{host} cannot be resolved: {e}")))?
        .filter(|a| !is_private(a.ip()))
        .collect();
    if found.is_empty() {
        return Err(Unresolved::NotPublic(format!(
            "{host} resolves to no public address; Herald sends only to public endpoints (an operator can allow private ones with allow-private-endpoints)."
        )));
    }
    Ok(found)
}

/// Resolves names as usual but keeps only public addresses; a name with none is refused.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let found = public_addresses(name.as_str()).await?;
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client adapters send with: pooled, no redirects followed, and (unless
/// `allow_private`) only public addresses resolved.
pub fn client(allow_private: bool) -> reqwest::Client {
    static OPEN: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    static GUARDED: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let cell = if allow_private { &OPEN } else { &GUARDED };
    cell.get_or_init(|| {
        // No proxy from the environment (HTTP(S)_PROXY, ALL_PROXY): a proxy resolves the
        // name itself, past the public-only resolver.
        let b = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(256)
            .redirect(reqwest::redirect::Policy::none());
        let b = if allow_private {
            b
        } else {
            b.dns_resolver(Arc::new(PublicOnly))
        };
        b.build().expect("the HTTP client builds")
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_public_ones_pass() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://192.168.1.10/",
            "http://172.16.0.5/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:3000/",
            "http://api.localhost/",
        ] {
            assert!(check_url(url, false).is_err(), "{url} allowed");
            assert!(
                check_url(url, true).is_ok(),
                "{url} refused although allowed"
            );
        }
        for url in [
            "https://api.telegram.org",
            "https://graph.facebook.com/v21.0",
            "http://8.8.8.8/",
            "",
        ] {
            assert!(check_url(url, false).is_ok(), "{url} refused");
        }
        assert!(check_url("not a url", false).is_err());
        assert!(check_host("10.1.2.3", false).is_err());
        assert!(check_host("smtp.example.com", false).is_ok());
    }

    #[test]
    fn settings_become_path_segments_never_paths_or_queries() {
        let evil = "123/subscribed_apps?override_callback_uri=https://evil.example/x#";
        let url = api_url("https://graph.facebook.com/v21.0", &[evil, "messages"]);
        let parsed = reqwest::Url::parse(&url).unwrap();
        assert_eq!(parsed.host_str(), Some("graph.facebook.com"));
        assert_eq!(parsed.query(), None, "{url}");
        assert_eq!(parsed.fragment(), None, "{url}");
        assert_eq!(parsed.path_segments().unwrap().count(), 3, "{url}");
        assert!(url.ends_with("/messages"), "{url}");
        assert_eq!(
            api_url("https://graph.facebook.com/v21.0/", &["1061", "messages"]),
            "https://graph.facebook.com/v21.0/1061/messages"
        );
        assert_eq!(
            api_url(
                "http://127.0.0.1:9",
                &["2010-04-01", "Accounts", "AC1", "Messages.json"]
            ),
            "http://127.0.0.1:9/2010-04-01/Accounts/AC1/Messages.json"
        );
        assert_eq!(api_url("../x", &["a"]), "../x");
    }

    #[test]
    fn every_non_public_range_is_refused_with_the_ipv4_an_ipv6_carries() {
        let refused = [
            ("198.18.0.1", "benchmarking 198.18.0.0/15"),
            ("198.19.255.254", "benchmarking, upper half"),
            ("224.0.0.1", "multicast"),
            ("64:ff9b::a9fe:a9fe", "NAT64 to 169.254.169.254"),
            ("64:ff9b::7f00:1", "NAT64 to loopback"),
            ("64:ff9b:1::a00:1", "local-use NAT64 to 10.0.0.1"),
            ("::7f00:1", "IPv4-compatible loopback"),
            ("::a00:1", "IPv4-compatible 10.0.0.1"),
            ("2002:a9fe:a9fe::1", "6to4 to 169.254.169.254"),
            ("2002:c0a8:101::1", "6to4 to 192.168.1.1"),
            ("fec0::1", "site-local"),
            ("2001:db8::1", "documentation"),
        ];
        for (ip, why) in refused {
            assert!(
                is_private(ip.parse().unwrap()),
                "{ip} ({why}) counted as public"
            );
        }
        for ip in [
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700::1111",
            "198.20.0.1",
            "8.8.4.4",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip} counted as private");
        }
    }

    /// A name is checked when it resolves: `localhost` (in every hosts file) gives loopback
    /// only, which the resolver drops, so the name is refused.
    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused() {
        let e = public_addresses("localhost").await.unwrap_err();
        assert!(matches!(e, Unresolved::NotPublic(_)), "{e}");
        assert!(e.to_string().contains("no public address"), "{e}");
    }
}
