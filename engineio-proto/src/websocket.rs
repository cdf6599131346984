//! The WebSocket opening handshake's rules: the accept key (RFC 6455 section 4) and what
//! to negotiate for permessage-deflate (RFC 7692), for the server and the client.
//!
//! The decisions are pure functions of the configuration and the peer's header, so that
//! both bindings (and a fuzzer) apply the same policy; the framing library only applies
//! the parameters agreed here.
//!
//! ```
//! use engineio_proto::websocket::{DeflateConfig, negotiate_deflate};
//!
//! // What Chromium and Node's `ws` offer.
//! let offer = ["permessage-deflate; client_max_window_bits"];
//! let agreed = negotiate_deflate(offer, &DeflateConfig::default()).expect("accepted");
//! assert_eq!(
//!     agreed.to_header(),
//!     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
//! );
//! ```

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 appends to the client's key.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: base64 of the SHA-1 of the
/// key and RFC 6455's GUID.
///
/// ```
/// // RFC 6455 section 1.3's example.
/// assert_eq!(
///     engineio_proto::websocket::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// The extension's name in `Sec-WebSocket-Extensions`.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The smallest LZ77 window (in bits) a side compresses with. RFC 7692 allows 8, but
/// zlib raises a raw deflate window of 8 bits to 9, so a stream compressed "with 8" may
/// refer 512 bytes back, past what a peer holding to 8 keeps: an offer that asks our
/// side to compress with 8 is declined (a server) or failed (a client), as
/// python-engineio's servers decline it too. Decompressing with 8 is fine.
pub const MIN_COMPRESS_WINDOW_BITS: u8 = 9;

/// permessage-deflate settings (RFC 7692), for a server
/// ([`ServerConfig::websocket_deflate`](crate::server::ServerConfig::websocket_deflate)) or a client
/// ([`ClientConfig::websocket_deflate`](crate::client::ClientConfig::websocket_deflate)).
/// Off unless given: compression costs CPU per message and, when a connection keeps its
/// compression context, about 300 KiB of memory per connection (why Node's `ws` turned it
/// off by default in engine.io 4).
///
/// The defaults bound the memory per connection: neither side keeps a context between
/// messages (`server_no_context_takeover`, `client_no_context_takeover`), so a connection
/// holds compression state only while it compresses or decompresses a message, and
/// messages under [`threshold`](Self::threshold) bytes are sent as they are.
///
/// | setting | ours | Node `ws` (engine.io) | python-engineio (aiohttp, `compress=15`) |
/// |---|---|---|---|
/// | enabled | no | no (engine.io 4+; `perMessageDeflate: true` to enable) | no |
/// | threshold | 1024 B | 1024 B | none (every message) |
/// | level | 1 | zlib's default (6) | zlib's default (6) |
/// | server context takeover | no | yes | yes |
/// | client context takeover | no | yes | yes |
/// | window bits (server, client) | 15, 15 | 15, 15 | 15, 15 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Messages smaller than this many bytes are sent uncompressed. Default 1024.
    pub threshold: usize,
    /// The zlib compression level, 0 (none) to 9 (best). Default 1: most of the size
    /// saving of text at a fraction of the CPU of level 6.
    pub level: u32,
    /// Whether the server compresses each message on its own, keeping no window between
    /// messages. Default true (no compression state per idle connection on the server's
    /// side; a lower ratio for a stream of similar messages). A server asks it of itself
    /// whatever the client offered; a client asks it of the server.
    pub server_no_context_takeover: bool,
    /// Whether the client compresses each message on its own. Default true: the server
    /// then needs no decompression state per idle connection. A server may impose it on
    /// any client (RFC 7692 section 7.1.1.2); a client offers it.
    pub client_no_context_takeover: bool,
    /// The LZ77 window the server compresses with, 8 to 15 bits (256 B to 32 KiB).
    /// Default 15. A smaller window costs less memory while a message is compressed,
    /// and compresses less.
    pub server_max_window_bits: u8,
    /// The window asked of the client, 8 to 15 bits; a server can only ask it of a
    /// client that offered `client_max_window_bits` (browsers and Node's `ws` do).
    /// Default 15.
    pub client_max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            threshold: 1024,
            level: 1,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

impl DeflateConfig {
    /// Checks the values: a level over 9 or window bits outside 9..=15 are refused with
    /// the setting's name. RFC 7692 allows a window of 8 bits, but zlib cannot compress
    /// with it (it silently uses 9, which a peer that agreed to 8 may fail to
    /// decompress), so 8 is never agreed for a window we compress with.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.level > 9 {
            return Err("websocket_deflate.level (0 to 9)");
        }
        if !(MIN_COMPRESS_WINDOW_BITS..=15).contains(&self.server_max_window_bits) {
            return Err("websocket_deflate.server_max_window_bits (9 to 15)");
        }
        if !(MIN_COMPRESS_WINDOW_BITS..=15).contains(&self.client_max_window_bits) {
            return Err("websocket_deflate.client_max_window_bits (9 to 15)");
        }
        Ok(())
    }
}

/// The permessage-deflate parameters both sides agreed on: what the server answers in
/// `Sec-WebSocket-Extensions`, and what the framing library runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server keeps no window between the messages it compresses.
    pub server_no_context_takeover: bool,
    /// The client keeps no window between the messages it compresses.
    pub client_no_context_takeover: bool,
    /// The server's window, when limited (8..=15 bits); `None` is 15.
    pub server_max_window_bits: Option<u8>,
    /// The client's window, when limited (8..=15 bits); `None` is 15.
    pub client_max_window_bits: Option<u8>,
}

impl DeflateParams {
    /// The `Sec-WebSocket-Extensions` value of these parameters.
    pub fn to_header(&self) -> String {
        let mut h = String::from(PERMESSAGE_DEFLATE);
        if self.server_no_context_takeover {
            h.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            h.push_str("; client_no_context_takeover");
        }
        if let Some(b) = self.server_max_window_bits {
            h.push_str(&format!("; server_max_window_bits={b}"));
        }
        if let Some(b) = self.client_max_window_bits {
            h.push_str(&format!("; client_max_window_bits={b}"));
        }
        h
    }
}

/// One permessage-deflate offer's parameters as the client sent them.
#[derive(Debug, Default, PartialEq, Eq)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: the parameter without a value (the client can take any window).
    client_max_window_bits: Option<Option<u8>>,
}

/// The server's decision on a client's `Sec-WebSocket-Extensions` values (one string per
/// header line; each may hold several comma-separated extensions): the parameters of the
/// first permessage-deflate offer it can accept, or `None` (no valid offer, or
/// `config` is `None`: then the server answers without the extension).
///
/// An offer with an unknown or repeated parameter or a value out of range is declined
/// (RFC 7692 section 5.1), and the next one is considered. The answer:
/// `server_no_context_takeover` when the client asked for it or the configuration wants
/// it; `client_no_context_takeover` likewise (the server may impose it); a server window
/// at most what the client allowed and what the configuration says; a client window
/// only when the client offered `client_max_window_bits`, at most its value.
pub fn negotiate_deflate<'a>(
    offers: impl IntoIterator<Item = &'a str>,
    config: &DeflateConfig,
) -> Option<DeflateParams> {
    offers
        .into_iter()
        .flat_map(split_extensions)
        .filter_map(|(name, params)| {
            name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE)
                .then(|| parse_offer(params))
                .flatten()
        })
        .find_map(|offer| accept_offer(&offer, config))
}

fn accept_offer(offer: &Offer, config: &DeflateConfig) -> Option<DeflateParams> {
    if offer
        .server_max_window_bits
        .is_some_and(|b| b < MIN_COMPRESS_WINDOW_BITS)
    {
        // We would have to compress with a window zlib cannot keep to.
        return None;
    }
    let server_bits = match offer.server_max_window_bits {
        Some(b) => b.min(config.server_max_window_bits),
        None => config.server_max_window_bits,
    };
    let client_bits = match offer.client_max_window_bits {
        // Without the parameter the client's window cannot be limited.
        None => None,
        Some(None) => (config.client_max_window_bits < 15).then_some(config.client_max_window_bits),
        Some(Some(b)) => Some(b.min(config.client_max_window_bits)),
    };
    Some(DeflateParams {
        server_no_context_takeover: offer.server_no_context_takeover
            || config.server_no_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover
            || config.client_no_context_takeover,
        // Limiting our own window to 15 says nothing: answered only when smaller or asked.
        server_max_window_bits: (server_bits < 15 || offer.server_max_window_bits.is_some())
            .then_some(server_bits),
        client_max_window_bits: client_bits,
    })
}

/// The client's offer for `config`: `Sec-WebSocket-Extensions` to send.
pub fn deflate_offer(config: &DeflateConfig) -> String {
    let mut h = String::from(PERMESSAGE_DEFLATE);
    if config.server_no_context_takeover {
        h.push_str("; server_no_context_takeover");
    }
    if config.client_no_context_takeover {
        h.push_str("; client_no_context_takeover");
    }
    if config.server_max_window_bits < 15 {
        h.push_str(&format!(
            "; server_max_window_bits={}",
            config.server_max_window_bits
        ));
    }
    // The server may limit our window: we can decompress nothing but compress with any.
    if config.client_max_window_bits < 15 {
        h.push_str(&format!(
            "; client_max_window_bits={}",
            config.client_max_window_bits
        ));
    } else {
        h.push_str("; client_max_window_bits");
    }
    h
}

/// Why a server's `Sec-WebSocket-Extensions` answer cannot be accepted (the client must
/// fail the connection: RFC 6455 section 4.1 and RFC 7692 section 5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server's Sec-WebSocket-Extensions answer is not acceptable: {0}")]
pub struct ExtensionRefused(pub String);

/// The client's check of the server's `Sec-WebSocket-Extensions` answer against what
/// `config` offered (`None`: nothing was offered): the agreed parameters, `None` when
/// the server declined, or why the answer is not acceptable (an extension not offered,
/// an unknown parameter, a window larger than offered...).
pub fn accept_deflate_answer<'a>(
    answer: impl IntoIterator<Item = &'a str>,
    config: Option<&DeflateConfig>,
) -> Result<Option<DeflateParams>, ExtensionRefused> {
    let mut agreed = None;
    for (name, params) in answer.into_iter().flat_map(split_extensions) {
        if name.is_empty() {
            continue;
        }
        let Some(config) = config.filter(|_| name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE)) else {
            return Err(ExtensionRefused(format!("{name} was not offered")));
        };
        if agreed.is_some() {
            return Err(ExtensionRefused("permessage-deflate answered twice".into()));
        }
        let Some(offer) = parse_offer(params) else {
            return Err(ExtensionRefused(format!(
                "invalid permessage-deflate parameters {params:?}"
            )));
        };
        let client_bits = match offer.client_max_window_bits {
            None => None,
            Some(None) => {
                return Err(ExtensionRefused(
                    "client_max_window_bits without a value".into(),
                ));
            }
            Some(Some(b)) if b > config.client_max_window_bits => {
                return Err(ExtensionRefused(format!(
                    "client_max_window_bits={b}, over the {} offered",
                    config.client_max_window_bits
                )));
            }
            Some(Some(b)) if b < MIN_COMPRESS_WINDOW_BITS => {
                return Err(ExtensionRefused(format!(
                    "client_max_window_bits={b}: zlib cannot compress with a window under \
                     {MIN_COMPRESS_WINDOW_BITS} bits"
                )));
            }
            Some(Some(b)) => Some(b),
        };
        if let Some(b) = offer.server_max_window_bits
            && b > config.server_max_window_bits
        {
            return Err(ExtensionRefused(format!(
                "server_max_window_bits={b}, over the {} offered",
                config.server_max_window_bits
            )));
        }
        if config.server_no_context_takeover && !offer.server_no_context_takeover {
            return Err(ExtensionRefused(
                "server_no_context_takeover was asked for and not granted".into(),
            ));
        }
        agreed = Some(DeflateParams {
            server_no_context_takeover: offer.server_no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || config.client_no_context_takeover,
            server_max_window_bits: offer.server_max_window_bits,
            client_max_window_bits: client_bits,
        });
    }
    Ok(agreed)
}

/// Splits a `Sec-WebSocket-Extensions` value into `(name, parameters)` pairs.
fn split_extensions(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value.split(',').map(|ext| {
        let ext = ext.trim();
        match ext.split_once(';') {
            Some((name, params)) => (name.trim(), params),
            None => (ext, ""),
        }
    })
}

/// One offer's (or answer's) parameters; `None` when one is unknown, repeated or out of
/// range.
fn parse_offer(params: &str) -> Option<Offer> {
    let mut offer = Offer::default();
    for param in params.split(';') {
        let param = param.trim();
        if param.is_empty() {
            continue;
        }
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (param, None),
        };
        match (key.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) if !offer.server_no_context_takeover => {
                offer.server_no_context_takeover = true;
            }
            ("client_no_context_takeover", None) if !offer.client_no_context_takeover => {
                offer.client_no_context_takeover = true;
            }
            ("server_max_window_bits", Some(v)) if offer.server_max_window_bits.is_none() => {
                offer.server_max_window_bits = Some(window_bits(v)?);
            }
            ("client_max_window_bits", v) if offer.client_max_window_bits.is_none() => {
                offer.client_max_window_bits = Some(match v {
                    Some(v) => Some(window_bits(v)?),
                    None => None,
                });
            }
            _ => return None,
        }
    }
    Some(offer)
}

/// A window size value: 8 to 15, digits only (RFC 7692 section 7.1.2).
fn window_bits(v: &str) -> Option<u8> {
    if v.is_empty() || v.len() > 2 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(offers: &[&str]) -> Option<String> {
        negotiate_deflate(offers.iter().copied(), &DeflateConfig::default()).map(|p| p.to_header())
    }

    #[test]
    fn browsers_and_node_ws_offers_are_accepted_without_context_takeover() {
        assert_eq!(
            server(&["permessage-deflate; client_max_window_bits"]).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
        // python websockets / aiohttp offer.
        assert_eq!(
            server(&["permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"])
                .as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=12; client_max_window_bits=12"
            )
        );
    }

    #[test]
    fn invalid_offers_are_declined_and_the_next_one_is_taken() {
        assert_eq!(server(&["permessage-deflate; foo"]), None);
        assert_eq!(
            server(&["permessage-deflate; server_max_window_bits=16"]),
            None
        );
        assert_eq!(
            server(&["permessage-deflate; server_max_window_bits=7"]),
            None
        );
        assert_eq!(
            server(&["permessage-deflate; server_max_window_bits"]),
            None
        );
        assert_eq!(
            server(&["permessage-deflate; server_no_context_takeover; server_no_context_takeover"]),
            None
        );
        assert_eq!(
            server(&["permessage-deflate; client_max_window_bits=+9"]),
            None
        );
        assert_eq!(server(&["x-webkit-deflate-frame", "foo, bar; baz"]), None);
        assert_eq!(
            server(&["permessage-deflate; bogus, permessage-deflate; server_max_window_bits=10"])
                .as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=10"
            )
        );
        assert_eq!(server(&[]), None);
    }

    #[test]
    fn the_configuration_limits_windows_and_context() {
        let config = DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 10,
            client_max_window_bits: 9,
            ..DeflateConfig::default()
        };
        let p = negotiate_deflate(["permessage-deflate; client_max_window_bits"], &config).unwrap();
        assert_eq!(
            p.to_header(),
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9"
        );
        // A client that did not offer client_max_window_bits cannot be limited.
        let p = negotiate_deflate(["permessage-deflate"], &config).unwrap();
        assert_eq!(p.client_max_window_bits, None);
        // The client's own asks are honoured.
        let p = negotiate_deflate(
            ["permessage-deflate; client_no_context_takeover; server_no_context_takeover"],
            &config,
        )
        .unwrap();
        assert!(p.server_no_context_takeover && p.client_no_context_takeover);
        assert_eq!(config.validate(), Ok(()));
        let bad = DeflateConfig {
            server_max_window_bits: 16,
            ..DeflateConfig::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn the_client_offers_and_checks_the_answer() {
        let config = DeflateConfig::default();
        let offer = deflate_offer(&config);
        assert_eq!(
            offer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             client_max_window_bits"
        );
        // Our own server's answer to our offer.
        let answer = negotiate_deflate([offer.as_str()], &config)
            .unwrap()
            .to_header();
        assert_eq!(
            accept_deflate_answer([answer.as_str()], Some(&config)),
            Ok(Some(DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: None,
                client_max_window_bits: None,
            }))
        );
        // Declined.
        assert_eq!(accept_deflate_answer([], Some(&config)), Ok(None));
        assert_eq!(accept_deflate_answer([""], None), Ok(None));
        // Not offered, unknown, too large, not granted.
        assert!(accept_deflate_answer(["permessage-deflate"], None).is_err());
        assert!(accept_deflate_answer(["x-foo"], Some(&config)).is_err());
        assert!(
            accept_deflate_answer(
                ["permessage-deflate; server_no_context_takeover; bogus"],
                Some(&config)
            )
            .is_err()
        );
        assert!(
            accept_deflate_answer(
                ["permessage-deflate; client_no_context_takeover"],
                Some(&config)
            )
            .is_err(),
            "server_no_context_takeover was asked for"
        );
        let loose = DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            client_max_window_bits: 12,
            ..DeflateConfig::default()
        };
        assert!(
            accept_deflate_answer(
                ["permessage-deflate; client_max_window_bits=13"],
                Some(&loose)
            )
            .is_err()
        );
        assert_eq!(
            accept_deflate_answer(
                ["permessage-deflate; client_max_window_bits=10"],
                Some(&loose)
            ),
            Ok(Some(DeflateParams {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: None,
                client_max_window_bits: Some(10),
            }))
        );
        assert!(
            accept_deflate_answer(["permessage-deflate, permessage-deflate"], Some(&loose))
                .is_err()
        );
    }

    #[test]
    fn a_window_of_8_bits_is_never_agreed_for_the_side_that_compresses() {
        // The server would compress with 8 bits: declined, the next offer is taken.
        assert_eq!(
            server(&["permessage-deflate; server_max_window_bits=8"]),
            None
        );
        assert_eq!(
            server(&[
                "permessage-deflate; server_max_window_bits=8, permessage-deflate; \
                 server_max_window_bits=9"
            ])
            .as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=9"
            )
        );
        // The client's window of 8 is the client's to compress with: the server only
        // decompresses with it, which any larger window can.
        assert!(server(&["permessage-deflate; client_max_window_bits=8"]).is_some());
        // A server that tells our client to compress with 8 bits is refused.
        let refused = accept_deflate_answer(
            ["permessage-deflate; client_max_window_bits=8"],
            Some(&DeflateConfig::default()),
        );
        assert!(
            refused.as_ref().is_err_and(|e| e.0.contains("zlib")),
            "{refused:?}"
        );
        // and a configuration asking for 8 is refused with the setting's name.
        let eight = DeflateConfig {
            server_max_window_bits: 8,
            ..DeflateConfig::default()
        };
        assert_eq!(
            eight.validate(),
            Err("websocket_deflate.server_max_window_bits (9 to 15)")
        );
    }
}
