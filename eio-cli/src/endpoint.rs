//! The server a command talks to: the URL, the Engine.IO path, extra query parameters and
//! headers, the protocol version, and the TLS settings, shared by `connect` and `doctor`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use engineio_tokio::{ClientConfig, TlsConfig};
use http::{HeaderName, HeaderValue};

/// Options naming the server (flattened into `connect` and `doctor`).
#[derive(Debug, Clone, Args)]
pub(crate) struct ServerArgs {
    /// The server: http://, https://, ws:// or wss://HOST[:PORT][/PATH][?QUERY]. The path
    /// is the Engine.IO path (default /engine.io/; Socket.IO servers use /socket.io/), the
    /// query is sent on every request.
    #[arg(value_name = "URL")]
    pub(crate) url: String,
    /// The Engine.IO path, overriding the URL's (for example /socket.io/).
    #[arg(long, value_name = "PATH")]
    pub(crate) path: Option<String>,
    /// An extra query parameter sent on every request and WebSocket connect (repeatable),
    /// for example a token: -q token=abc.
    #[arg(short = 'q', long = "query", value_name = "NAME=VALUE")]
    pub(crate) query: Vec<String>,
    /// An extra header sent on every request and WebSocket connect (repeatable), for
    /// example -H 'Authorization: Bearer abc' or -H 'Origin: https://app.example'.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// Trust the certificates in this PEM file (a private CA), besides the public roots.
    #[arg(long, value_name = "FILE")]
    pub(crate) cacert: Option<PathBuf>,
    /// The Engine.IO protocol version. Only 4 is spoken (engine.io 4+, Socket.IO 3+,
    /// python-engineio 4+); 3 is refused with an explanation.
    #[arg(long, value_name = "VERSION", default_value_t = 4)]
    pub(crate) eio: u8,
}

/// The server, checked and ready to use.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The client configuration (URL, path, query, headers), other options at their
    /// defaults.
    pub(crate) config: ClientConfig,
    /// The TLS settings for https:// and wss://.
    pub(crate) tls: TlsConfig,
}

impl ServerArgs {
    /// Checks every option and builds the endpoint. Errors say what to change.
    pub(crate) fn endpoint(&self) -> Result<Endpoint, String> {
        match self.eio {
            4 => {}
            3 => {
                return Err(
                    "Engine.IO v3 (engine.io 3.x, Socket.IO 2.x, python-engineio 3.x) \
                            is not supported yet: eio speaks v4 only (engine.io 4+, \
                            Socket.IO 3+, python-engineio 4+). Upgrade the server, or use \
                            that version's own client for now."
                        .into(),
                );
            }
            v => return Err(format!("--eio {v}: no such Engine.IO version (use 4)")),
        }
        let mut config = ClientConfig::new(&self.url).map_err(|e| e.to_string())?;
        if let Some(path) = &self.path {
            let mut path = path.clone();
            if !path.starts_with('/') {
                path.insert(0, '/');
            }
            if !path.ends_with('/') {
                path.push('/');
            }
            config.path = path;
        }
        for q in &self.query {
            let (name, value) = q.split_once('=').ok_or_else(|| {
                format!("--query {q:?}: expected NAME=VALUE (for example -q token=abc)")
            })?;
            if name.is_empty() {
                return Err(format!("--query {q:?}: the name is empty"));
            }
            config.query.push((name.to_owned(), value.to_owned()));
        }
        for h in &self.headers {
            let (name, value) = parse_header(h)?;
            config.headers.append(name, value);
        }
        config.validate().map_err(|e| e.to_string())?;
        let tls = match &self.cacert {
            None => TlsConfig::default(),
            Some(file) => tls_with_ca(file)?,
        };
        Ok(Endpoint { config, tls })
    }
}

/// Parses `Name: value`.
pub(crate) fn parse_header(h: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = h.split_once(':').ok_or_else(|| {
        format!(
            "--header {h:?}: expected 'Name: value' (for example -H 'Authorization: Bearer abc')"
        )
    })?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        format!(
            "--header {h:?}: {:?} is not a valid header name",
            name.trim()
        )
    })?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("--header {h:?}: the value holds characters a header cannot"))?;
    Ok((name, value))
}

/// The public roots (webpki-roots, as the bindings' default) plus the certificates of
/// `file`.
fn tls_with_ca(file: &std::path::Path) -> Result<TlsConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let shown = file.display();
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut added = 0;
    for cert in CertificateDer::pem_file_iter(file).map_err(|e| format!("--cacert {shown}: {e}"))? {
        let cert = cert.map_err(|e| format!("--cacert {shown}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("--cacert {shown}: {e}"))?;
        added += 1;
    }
    if added == 0 {
        return Err(format!(
            "--cacert {shown}: no certificate in the file (expected PEM: -----BEGIN CERTIFICATE-----)"
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("--cacert {shown}: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConfig::with_rustls(Arc::new(config)))
}

impl Endpoint {
    /// `host[:port]` as sent in `Host`.
    pub(crate) fn authority(&self) -> &str {
        self.config.authority.as_str()
    }

    /// The host name or address.
    pub(crate) fn host(&self) -> &str {
        self.config.authority.host()
    }

    /// The port (the scheme's default when the URL has none).
    pub(crate) fn port(&self) -> u16 {
        self.config
            .authority
            .port_u16()
            .unwrap_or(if self.config.secure { 443 } else { 80 })
    }

    /// The URL as given back to the user: `http(s)://authority/path`.
    pub(crate) fn display_url(&self) -> String {
        format!(
            "{}://{}{}",
            if self.config.secure { "https" } else { "http" },
            self.authority(),
            self.config.path
        )
    }

    /// The request target of an Engine.IO request: the path with `EIO=4`, the transport,
    /// the session id when given, a cache-busting `t`, and the extra query parameters.
    pub(crate) fn target(&self, websocket: bool, sid: Option<&str>, t: u64) -> String {
        let mut q = format!(
            "{}?EIO=4&transport={}",
            self.config.path,
            if websocket { "websocket" } else { "polling" }
        );
        if let Some(sid) = sid {
            q.push_str("&sid=");
            percent_encode_into(&mut q, sid);
        }
        q.push_str(&format!("&t=eio{t}"));
        for (k, v) in &self.config.query {
            q.push('&');
            percent_encode_into(&mut q, k);
            q.push('=');
            percent_encode_into(&mut q, v);
        }
        q
    }

    /// The absolute `ws(s)://` URI of a WebSocket connect.
    pub(crate) fn ws_uri(&self, sid: Option<&str>, t: u64) -> String {
        format!(
            "{}://{}{}",
            if self.config.secure { "wss" } else { "ws" },
            self.authority(),
            self.target(true, sid, t)
        )
    }
}

/// Appends `s` percent-encoded: everything but RFC 3986's unreserved characters.
pub(crate) fn percent_encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str) -> ServerArgs {
        ServerArgs {
            url: url.to_owned(),
            path: None,
            query: Vec::new(),
            headers: Vec::new(),
            cacert: None,
            eio: 4,
        }
    }

    #[test]
    fn url_path_query_and_headers() {
        let mut a = args("http://127.0.0.1:3000/socket.io?x=1");
        a.query.push("token=a b".into());
        a.headers.push("X-Test:  yes ".into());
        let e = a.endpoint().unwrap();
        assert_eq!(e.authority(), "127.0.0.1:3000");
        assert_eq!(e.port(), 3000);
        assert_eq!(e.config.path, "/socket.io/");
        assert_eq!(e.config.headers["x-test"], "yes");
        assert_eq!(
            e.target(false, Some("ab+c"), 7),
            "/socket.io/?EIO=4&transport=polling&sid=ab%2Bc&t=eio7&x=1&token=a%20b"
        );
        assert_eq!(
            e.ws_uri(None, 1),
            "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket&t=eio1&x=1&token=a%20b"
        );
        let mut a = args("https://example.com");
        a.path = Some("custom".into());
        let e = a.endpoint().unwrap();
        assert_eq!((e.port(), e.config.path.as_str()), (443, "/custom/"));
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let mut a = args("http://h/");
        a.eio = 3;
        assert!(a.endpoint().unwrap_err().contains("v3"));
        a.eio = 5;
        assert!(a.endpoint().unwrap_err().contains("no such"));
        let mut a = args("http://h/");
        a.query.push("novalue".into());
        assert!(a.endpoint().unwrap_err().contains("NAME=VALUE"));
        let mut a = args("http://h/");
        a.query.push("sid=1".into());
        assert!(a.endpoint().unwrap_err().contains("reserved"));
        let mut a = args("http://h/");
        a.headers.push("no colon".into());
        assert!(a.endpoint().unwrap_err().contains("Name: value"));
        assert!(args("ftp://h/").endpoint().is_err());
        assert!(args("localhost:3000").endpoint().is_err());
    }
}
