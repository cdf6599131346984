//! HTTP proxies for the client: which one to use for a server (an explicit URL, or the
//! `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` environment), and how to reach the
//! server through it.
//!
//! This is policy only: the binding's connector opens the connections. Through a proxy,
//! polling over `http://` sends absolute-form requests to the proxy (`GET
//! http://host/engine.io/?... HTTP/1.1`), and everything else (polling over `https://`,
//! `ws://` and `wss://`) goes through a `CONNECT host:port` tunnel, with TLS to the server
//! inside it when the URL says so. Proxy credentials (`http://user:password@proxy:3128`)
//! are sent as `Proxy-Authorization: Basic`.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use http::HeaderValue;

use super::config::ConfigError;

/// Which HTTP proxy a client goes through; [`ClientConfig::proxy`](super::ClientConfig::proxy).
///
/// | | engine.io-client 6.x (Node) | python-engineio 4.x |
/// |---|---|---|
/// | [`Proxy::None`] (default) | no `agent` | `Client(http_session=...)` without proxies, `trust_env=False` |
/// | [`Proxy::Url`] | `agent: new HttpsProxyAgent(url)` (https-proxy-agent) | a `requests.Session` with `proxies={...}` |
/// | [`Proxy::Environment`] | `agent` from proxy-from-env | requests' default `trust_env=True` (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`) |
///
/// ```
/// use engineio_proto::client::Proxy;
///
/// let proxy = Proxy::url("http://user:secret@proxy.example:3128")?;
/// let Proxy::Url(url) = &proxy else { unreachable!() };
/// assert_eq!(url.authority(), "proxy.example:3128");
/// assert!(url.authorization().is_some());
/// // The password never shows.
/// assert_eq!(url.to_string(), "http://user:***@proxy.example:3128");
/// # Ok::<(), engineio_proto::client::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Proxy {
    /// Connect to the server directly. The default: the environment is read only when
    /// asked for, with [`Proxy::Environment`].
    #[default]
    None,
    /// Go through this proxy (whatever `NO_PROXY` says).
    Url(ProxyUrl),
    /// Read the proxy from the environment when the client connects, as curl and
    /// python's requests do: `https_proxy`/`HTTPS_PROXY` for `https://` and `wss://`
    /// servers, `http_proxy`/`HTTP_PROXY` for `http://` and `ws://`, then
    /// `all_proxy`/`ALL_PROXY` (the lower-case name first), unless `no_proxy`/`NO_PROXY`
    /// names the server. An empty variable counts as unset.
    Environment,
}

impl Proxy {
    /// A [`Proxy::Url`] from `url`; see [`ProxyUrl::parse`].
    pub fn url(url: &str) -> Result<Proxy, ConfigError> {
        ProxyUrl::parse(url).map(Proxy::Url)
    }

    /// The proxy to use for the server at `host:port` (`secure` for `https`/`wss`), with
    /// `env` giving the environment's variables (the binding passes `std::env::var`).
    /// `None`: connect directly. A variable holding something that is not an `http://`
    /// proxy URL is an error naming it.
    ///
    /// ```
    /// use engineio_proto::client::Proxy;
    ///
    /// let env = |name: &str| match name {
    ///     "HTTPS_PROXY" => Some("http://proxy:3128".to_owned()),
    ///     "NO_PROXY" => Some("localhost,.internal.example".to_owned()),
    ///     _ => None,
    /// };
    /// let proxy = Proxy::Environment;
    /// let via = proxy.resolve(true, "api.example.com", 443, env)?;
    /// assert_eq!(via.unwrap().authority(), "proxy:3128");
    /// assert_eq!(proxy.resolve(true, "db.internal.example", 443, env)?, None);
    /// // HTTPS_PROXY is for secure servers only.
    /// assert_eq!(proxy.resolve(false, "api.example.com", 80, env)?, None);
    /// # Ok::<(), engineio_proto::client::ConfigError>(())
    /// ```
    pub fn resolve(
        &self,
        secure: bool,
        host: &str,
        port: u16,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<ProxyUrl>, ConfigError> {
        match self {
            Proxy::None => Ok(None),
            Proxy::Url(url) => Ok(Some(url.clone())),
            Proxy::Environment => {
                let var = |lower: &'static str, upper: &'static str| {
                    [lower, upper].into_iter().find_map(|name| {
                        env(name)
                            .filter(|v| !v.trim().is_empty())
                            .map(|v| (name, v))
                    })
                };
                if let Some((_, list)) = var("no_proxy", "NO_PROXY")
                    && no_proxy_matches(&list, host, port)
                {
                    return Ok(None);
                }
                let scheme = if secure {
                    var("https_proxy", "HTTPS_PROXY")
                } else {
                    var("http_proxy", "HTTP_PROXY")
                };
                let Some((name, value)) = scheme.or_else(|| var("all_proxy", "ALL_PROXY")) else {
                    return Ok(None);
                };
                ProxyUrl::parse(value.trim())
                    .map(Some)
                    .map_err(|e| match e {
                        ConfigError::InvalidProxy { reason, .. } => ConfigError::InvalidProxy {
                            url: format!("{name}={}", redact(&value)),
                            reason,
                        },
                        other => other,
                    })
            }
        }
    }
}

/// An HTTP proxy's address and credentials: `http://[user:password@]host[:port]`.
///
/// The port defaults to 80. `https://` proxies (TLS to the proxy itself) and SOCKS proxies
/// are refused with an error that says so. The user and password may be
/// percent-encoded; they go to the proxy as `Proxy-Authorization: Basic`. Displayed and
/// debug-printed with the password masked.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    host: String,
    port: u16,
    user: Option<String>,
    authorization: Option<HeaderValue>,
}

impl ProxyUrl {
    /// Parses a proxy URL; a URL without a scheme (`proxy:3128`, as often found in
    /// `HTTP_PROXY`) is taken as `http://`.
    pub fn parse(url: &str) -> Result<ProxyUrl, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidProxy {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_owned(), url),
        };
        match scheme.as_str() {
            "http" => {}
            "https" => {
                return Err(invalid(
                    "https:// proxies (TLS to the proxy) are not supported; use the proxy's http:// address (https:// servers are still reached with TLS, through a CONNECT tunnel)",
                ));
            }
            s if s.starts_with("socks") => {
                return Err(invalid(
                    "SOCKS proxies are not supported; use an HTTP proxy",
                ));
            }
            _ => return Err(invalid("the scheme must be http://")),
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let after = rest.get(authority.len()..).unwrap_or("");
        if !after.is_empty() && after != "/" {
            return Err(invalid("a proxy URL has no path or query"));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) =
            split_host_port(hostport).ok_or_else(|| invalid("no valid host[:port]"))?;
        let (user, authorization) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, password) = info.split_once(':').unwrap_or((info, ""));
                let (Some(user), Some(password)) = (percent_decode(user), percent_decode(password))
                else {
                    return Err(invalid(
                        "the user or password holds an invalid percent-encoding",
                    ));
                };
                if user.is_empty() {
                    return Err(invalid("credentials without a user name"));
                }
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                let value = HeaderValue::from_str(&format!("Basic {token}"))
                    .map_err(|_| invalid("the credentials cannot be sent in a header"))?;
                (Some(user), Some(value))
            }
        };
        Ok(ProxyUrl {
            host,
            port,
            user,
            authorization,
        })
    }

    /// The proxy's host name or address (an IPv6 address without brackets), to connect to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` (IPv6 addresses in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `Proxy-Authorization` header value (`Basic ...`), when the URL has credentials.
    pub fn authorization(&self) -> Option<&HeaderValue> {
        self.authorization.as_ref()
    }

    /// The user name, when the URL has credentials.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(user) => write!(f, "http://{user}:***@{}", self.authority()),
            None => write!(f, "http://{}", self.authority()),
        }
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

/// Whether a `NO_PROXY` list names `host:port`, with curl's rules: entries separated by
/// commas (or spaces); `*` matches everything; a name matches itself and its subdomains
/// (`example.com` and `.example.com` both match `api.example.com`); an IP address matches
/// itself, and `addr/bits` a CIDR range; an entry with `:port` matches that port only.
/// Names compare case-insensitively.
///
/// ```
/// use engineio_proto::client::no_proxy_matches;
///
/// let list = "localhost, .corp.example,10.0.0.0/8, [::1], api.example:8443";
/// assert!(no_proxy_matches(list, "LocalHost", 80));
/// assert!(no_proxy_matches(list, "git.corp.example", 443));
/// assert!(no_proxy_matches(list, "10.1.2.3", 3000));
/// assert!(no_proxy_matches(list, "[::1]", 3000));
/// assert!(no_proxy_matches(list, "api.example", 8443));
/// assert!(!no_proxy_matches(list, "api.example", 443));
/// assert!(!no_proxy_matches(list, "notcorp.example", 443));
/// ```
pub fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let host_ip: Option<IpAddr> = host.parse().ok();
    list.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let (name, entry_port) = match split_host_port(entry) {
                Some((h, p)) if entry_has_port(entry) => (h, Some(p)),
                _ => (
                    entry
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_owned(),
                    None,
                ),
            };
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if let Some((net, bits)) = name.split_once('/') {
                return match (host_ip, net.parse::<IpAddr>(), bits.parse::<u8>()) {
                    (Some(ip), Ok(net), Ok(bits)) => in_cidr(ip, net, bits),
                    _ => false,
                };
            }
            if let (Some(ip), Ok(entry_ip)) = (host_ip, name.parse::<IpAddr>()) {
                return ip == entry_ip;
            }
            let name = name.trim_start_matches("*.").trim_start_matches('.');
            !name.is_empty()
                && (host == name
                    || host
                        .strip_suffix(name)
                        .is_some_and(|prefix| prefix.ends_with('.')))
        })
}

/// Whether a `NO_PROXY` entry names a port (`host:port`, `[v6]:port`), as opposed to a
/// bare IPv6 address.
fn entry_has_port(entry: &str) -> bool {
    if entry.starts_with('[') {
        return entry.contains("]:");
    }
    entry.matches(':').count() == 1
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Splits `host[:port]` (`[v6][:port]`); the port defaults to 80.
fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (host, port)
    } else if s.matches(':').count() > 1 {
        // A bare IPv6 address.
        (s, None)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) => p.parse().ok().filter(|p| *p != 0)?,
    };
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'%'));
    valid.then(|| (host.to_owned(), port))
}

/// The URL with any password replaced by `***`.
fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((info, host)) => {
            let user = info.split_once(':').map_or(info, |(u, _)| u);
            format!("{scheme}{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = |at: usize| bytes.get(at).and_then(|c| char::from(*c).to_digit(16));
            let (hi, lo) = (hex(i + 1)?, hex(i + 2)?);
            out.push(u8::try_from(hi * 16 + lo).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        let p = ProxyUrl::parse("http://127.0.0.1:8888").unwrap();
        assert_eq!((p.host(), p.port()), ("127.0.0.1", 8888));
        assert_eq!(p.authorization(), None);
        assert_eq!(p.to_string(), "http://127.0.0.1:8888");
        let p = ProxyUrl::parse("proxy.example").unwrap();
        assert_eq!(p.authority(), "proxy.example:80");
        let p = ProxyUrl::parse("HTTP://[::1]:3128/").unwrap();
        assert_eq!((p.host(), p.authority().as_str()), ("::1", "[::1]:3128"));
        let p = ProxyUrl::parse("http://us%40er:p%3Ass@h:1").unwrap();
        assert_eq!(p.user(), Some("us@er"));
        // base64("us@er:p:ss")
        assert_eq!(
            p.authorization().unwrap(),
            &HeaderValue::from_static("Basic dXNAZXI6cDpzcw==")
        );
        assert_eq!(format!("{p:?}"), "ProxyUrl(http://us@er:***@h:1)");
        assert!(!format!("{p:?}").contains("p:ss"));
        for bad in [
            "https://proxy:443",
            "socks5://proxy:1080",
            "ftp://proxy",
            "http://",
            "http://proxy:0",
            "http://proxy:99999",
            "http://proxy/path",
            "http://:pw@proxy",
            "http://pro xy:1",
            "http://u:%zz@proxy",
        ] {
            let e = ProxyUrl::parse(bad).unwrap_err();
            assert!(matches!(e, ConfigError::InvalidProxy { .. }), "{bad}");
            assert!(!e.to_string().contains("%zz@"), "{e}");
        }
        let e = ProxyUrl::parse("https://u:secret@proxy").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(e.to_string().contains("CONNECT"), "{e}");
    }

    #[test]
    fn environment_variables_by_scheme_lower_case_first() {
        let vars = [
            ("http_proxy", "http://lower:1"),
            ("HTTP_PROXY", "http://upper:1"),
            ("HTTPS_PROXY", "http://secure:2"),
            ("ALL_PROXY", "http://all:3"),
        ];
        let env = |keep: &'static [&'static str]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name && keep.contains(k))
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let host = |r: Result<Option<ProxyUrl>, ConfigError>| r.unwrap().map(|p| p.host);
        let p = Proxy::Environment;
        let all: &[&str] = &["http_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"];
        assert_eq!(
            host(p.resolve(false, "s", 80, env(all))),
            Some("lower".into())
        );
        assert_eq!(
            host(p.resolve(true, "s", 443, env(all))),
            Some("secure".into())
        );
        assert_eq!(
            host(p.resolve(false, "s", 80, env(&["HTTP_PROXY"]))),
            Some("upper".into())
        );
        assert_eq!(
            host(p.resolve(true, "s", 443, env(&["HTTP_PROXY", "ALL_PROXY"]))),
            Some("all".into())
        );
        assert_eq!(host(p.resolve(true, "s", 443, env(&[]))), None);
        // An explicit URL ignores the environment, NO_PROXY included.
        let explicit = Proxy::url("http://mine:9").unwrap();
        let no_all = |n: &str| (n == "NO_PROXY").then(|| "*".to_owned());
        assert_eq!(
            host(explicit.resolve(false, "s", 80, no_all)),
            Some("mine".into())
        );
        assert_eq!(host(Proxy::None.resolve(false, "s", 80, env(all))), None);
        // NO_PROXY wins over the proxy variables; empty variables count as unset.
        let env2 = |n: &str| match n {
            "HTTP_PROXY" => Some("http://p:1".to_owned()),
            "no_proxy" => Some("".to_owned()),
            "NO_PROXY" => Some("127.0.0.1,localhost".to_owned()),
            _ => None,
        };
        assert_eq!(host(p.resolve(false, "127.0.0.1", 3000, env2)), None);
        assert_eq!(
            host(p.resolve(false, "example.org", 80, env2)),
            Some("p".into())
        );
        // A bad value names its variable, without the password.
        let bad = |n: &str| (n == "HTTPS_PROXY").then(|| "https://u:pw@p".to_owned());
        let e = p.resolve(true, "s", 443, bad).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("HTTPS_PROXY") && !text.contains("pw"),
            "{text}"
        );
    }

    #[test]
    fn no_proxy_rules() {
        assert!(no_proxy_matches("*", "anything", 1));
        assert!(no_proxy_matches("example.com", "example.com", 1));
        assert!(no_proxy_matches("example.com", "a.b.example.com", 1));
        assert!(no_proxy_matches(".example.com", "a.example.com", 1));
        assert!(no_proxy_matches("*.example.com", "a.example.com", 1));
        assert!(no_proxy_matches("Example.COM.", "example.com", 1));
        assert!(!no_proxy_matches("example.com", "badexample.com", 1));
        assert!(!no_proxy_matches("example.com", "example.org", 1));
        assert!(no_proxy_matches("192.168.0.0/16", "192.168.10.1", 1));
        assert!(!no_proxy_matches("192.168.0.0/16", "192.169.0.1", 1));
        assert!(no_proxy_matches("0.0.0.0/0", "8.8.8.8", 1));
        assert!(no_proxy_matches("fd00::/8", "[fd12::1]", 1));
        assert!(no_proxy_matches("::1", "::1", 1));
        assert!(no_proxy_matches("[::1]:3000", "[::1]", 3000));
        assert!(!no_proxy_matches("[::1]:3000", "[::1]", 3001));
        assert!(no_proxy_matches("127.0.0.1:3000", "127.0.0.1", 3000));
        assert!(!no_proxy_matches("127.0.0.1:3000", "127.0.0.1", 80));
        assert!(!no_proxy_matches("", "h", 1));
        assert!(!no_proxy_matches(" , ,", "h", 1));
        assert!(!no_proxy_matches("10.0.0.0/99", "10.0.0.1", 1));
        assert!(!no_proxy_matches(".", "h", 1));
    }
}
