//! The client's address behind trusted proxies (`X-Forwarded-For`).
//!
//! Behind a load balancer every connection comes from the balancer; the client's own
//! address is in `X-Forwarded-For`, which each proxy appends to. Anyone can send that
//! header, so it is believed only as far as it was written by proxies you trust: starting
//! from the connection's peer, walk the list from the right while the address is a
//! trusted proxy; the first address that is not is the client. With no trusted proxies
//! (the default) the peer address is the client, whatever the header says.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

/// The proxies whose `X-Forwarded-For` entries are believed: addresses and networks
/// (`10.0.0.0/8`, `127.0.0.1`, `::1`, `fd00::/8`).
///
/// ```
/// use std::net::SocketAddr;
/// use engineio_proto::TrustedProxies;
/// use http::HeaderMap;
///
/// let trusted: TrustedProxies = "10.0.0.0/8, 127.0.0.1".parse()?;
/// let mut headers = HeaderMap::new();
/// // The client forged the first entry; the balancer (10.0.0.2) appended the real one.
/// headers.insert("x-forwarded-for", "1.2.3.4, 203.0.113.7".parse()?);
/// let peer: SocketAddr = "10.0.0.2:41000".parse()?;
/// assert_eq!(trusted.client_ip(peer, &headers), "203.0.113.7".parse::<std::net::IpAddr>()?);
/// // From an untrusted peer the header is ignored.
/// let direct: SocketAddr = "198.51.100.9:5000".parse()?;
/// assert_eq!(trusted.client_ip(direct, &headers), direct.ip());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<(IpAddr, u8)>,
}

/// A [`TrustedProxies`] list could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or network (write 10.0.0.0/8, 127.0.0.1 or fd00::/8)")]
pub struct InvalidProxy(pub String);

impl TrustedProxies {
    /// No trusted proxy: the peer is the client.
    pub fn none() -> Self {
        TrustedProxies::default()
    }

    /// Adds an address or network (`prefix` bits; 32 or 128 for one address).
    pub fn with(mut self, addr: IpAddr, prefix: u8) -> Self {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        self.nets.push((addr, prefix.min(max)));
        self
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets
            .iter()
            .any(|&(net, prefix)| in_net(ip, net, prefix))
    }

    /// The client's address for a request that came from `peer` with `headers`.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer.ip());
        if !self.contains(client) {
            return client;
        }
        // Every X-Forwarded-For header, in order, as one list.
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for entry in entries.iter().rev() {
            let Some(ip) = parse_entry(entry) else {
                // A garbled entry: trust stops here.
                return client;
            };
            client = ip;
            if !self.contains(ip) {
                return ip;
            }
        }
        client
    }
}

impl std::str::FromStr for TrustedProxies {
    type Err = InvalidProxy;

    fn from_str(s: &str) -> Result<Self, InvalidProxy> {
        let mut t = TrustedProxies::none();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (addr, prefix) = match item.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (item, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| InvalidProxy(item.to_owned()))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                Some(p) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| InvalidProxy(item.to_owned()))?,
                None => max,
            };
            t = t.with(addr, prefix);
        }
        Ok(t)
    }
}

/// An IPv4-mapped IPv6 address as IPv4, so that `::ffff:10.0.0.1` matches `10.0.0.0/8`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn parse_entry(entry: &str) -> Option<IpAddr> {
    // "1.2.3.4", "1.2.3.4:5678", "[2001:db8::1]:80", "2001:db8::1".
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    entry.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (canonical(ip), canonical(net)) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn peer(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_addresses_and_networks_and_refuses_the_rest() {
        let t: TrustedProxies = "10.0.0.0/8, 127.0.0.1 ,::1, fd00::/8".parse().unwrap();
        assert!(t.contains("10.200.3.4".parse().unwrap()));
        assert!(!t.contains("11.0.0.1".parse().unwrap()));
        assert!(t.contains("127.0.0.1".parse().unwrap()));
        assert!(!t.contains("127.0.0.2".parse().unwrap()));
        assert!(t.contains("fd12::1".parse().unwrap()));
        assert!(t.contains("::ffff:10.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "1.2.3.4/x", "::1/129"] {
            assert!(bad.parse::<TrustedProxies>().is_err(), "{bad}");
        }
        assert_eq!(
            "".parse::<TrustedProxies>().unwrap(),
            TrustedProxies::none()
        );
        let all: TrustedProxies = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn walks_from_the_right_through_trusted_proxies_only() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let h = headers(&["6.6.6.6, 203.0.113.7, 10.0.0.5"]);
        // Two trusted hops (10.0.0.5 appended by the first proxy, the peer is the second).
        assert_eq!(
            t.client_ip(peer("10.0.0.9:1"), &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // Several headers are one list.
        let h = headers(&["6.6.6.6", "203.0.113.7", "10.0.0.5:4444"]);
        assert_eq!(
            t.client_ip(peer("10.0.0.9:1"), &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // An untrusted peer: the header is ignored.
        assert_eq!(
            t.client_ip(peer("198.51.100.1:1"), &h),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        // No header: the peer.
        assert_eq!(
            t.client_ip(peer("10.0.0.9:1"), &HeaderMap::new()),
            "10.0.0.9".parse::<IpAddr>().unwrap()
        );
        // Garbage stops the walk at the last address believed.
        let h = headers(&["203.0.113.7, garbage, 10.0.0.5"]);
        assert_eq!(
            t.client_ip(peer("10.0.0.9:1"), &h),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        // All trusted: the leftmost.
        let h = headers(&["10.1.1.1, 10.0.0.5"]);
        assert_eq!(
            t.client_ip(peer("10.0.0.9:1"), &h),
            "10.1.1.1".parse::<IpAddr>().unwrap()
        );
        // IPv6 with a port.
        let t: TrustedProxies = "::1".parse().unwrap();
        let h = headers(&["[2001:db8::7]:443"]);
        assert_eq!(
            t.client_ip(peer("[::1]:1"), &h),
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
        // No trusted proxies at all: always the peer.
        assert_eq!(
            TrustedProxies::none().client_ip(peer("10.0.0.9:1"), &h),
            "10.0.0.9".parse::<IpAddr>().unwrap()
        );
    }
}
