//! Who the client is, for the login throttle: the peer's address, or — only
//! when the peer is one of the configured `trusted_proxies` — the address
//! those proxies report in `X-Forwarded-For`.
//!
//! Read from the right: each trusted proxy appends the address it received
//! the request from, so the rightmost address not of a trusted proxy is the
//! client. Whatever a client writes into the header itself stands to the
//! left of that and is never believed; from an untrusted peer the header is
//! ignored altogether.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The configured proxies (addresses or CIDR blocks).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// One `trusted_proxies` entry: `10.0.0.0/8`, `192.0.2.7`, `::1`, `fd00::/8`.
pub fn parse_proxy(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{entry:?} is neither an IP address nor a CIDR block"))
}

/// An address as it appears in `X-Forwarded-For`: bare, or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

impl TrustedProxies {
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| parse_proxy(e))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev() {
            // A hop a trusted proxy would not write: keep the last sure one.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// The client's address (see the module documentation), as text: the key of
/// the login throttle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| {
                ApiError::internal(&"the server was started without the peer address")
            })?;
        Ok(Self(
            state
                .trusted_proxies
                .client(peer, &parts.headers)
                .to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in xff {
            map.append("x-forwarded-for", value.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy_and_only_its_own_hops() {
        let proxies =
            TrustedProxies::parse(&["10.0.0.0/8".into(), "192.0.2.7".into(), "::1".into()])
                .unwrap();
        // An untrusted peer: the header is ignored.
        let forged = headers(&["203.0.113.9"]);
        assert_eq!(
            proxies.client(ip("198.51.100.1"), &forged),
            ip("198.51.100.1")
        );
        // A trusted peer: the rightmost untrusted hop is the client.
        let chain = headers(&["1.2.3.4, 203.0.113.9, 10.1.1.1"]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &chain), ip("203.0.113.9"));
        // Several header lines are one list; ports and mapped addresses too.
        let split = headers(&["1.2.3.4", "203.0.113.9:5555"]);
        assert_eq!(proxies.client(ip("192.0.2.7"), &split), ip("203.0.113.9"));
        assert_eq!(
            proxies.client(ip("::ffff:192.0.2.7"), &headers(&["[2001:db8::1]:80"])),
            ip("2001:db8::1")
        );
        // No header, or garbage where a proxy would write: the proxy itself.
        assert_eq!(proxies.client(ip("::1"), &HeaderMap::new()), ip("::1"));
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &headers(&["evil, not-an-ip"])),
            ip("10.0.0.1")
        );
        // Nothing configured: nobody is trusted.
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("10.0.0.1"), &chain), ip("10.0.0.1"));
    }

    #[test]
    fn entries_are_addresses_or_cidr_blocks() {
        assert!(parse_proxy("10.0.0.0/8").is_ok());
        assert!(parse_proxy(" 2001:db8::/32 ").is_ok());
        assert!(parse_proxy("127.0.0.1").is_ok());
        let error = parse_proxy("localhost").unwrap_err();
        assert!(error.contains("localhost"), "{error}");
        assert!(parse_proxy("10.0.0.0/33").is_err());
    }
}
