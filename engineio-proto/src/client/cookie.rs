//! A minimal cookie jar: the `name=value` pairs a server sets (for example a load
//! balancer's affinity cookie, or the Engine.IO server's `io` cookie), sent back on the
//! later requests of the same connection.

use http::{HeaderMap, HeaderValue, header};

#[derive(Debug, Clone, Default)]
pub(crate) struct CookieJar {
    cookies: Vec<(String, String)>,
}

impl CookieJar {
    /// Keeps the cookies of every `Set-Cookie` header. A cookie with `Max-Age` zero or
    /// less (a deletion) removes the stored one. Other attributes (path, domain, expiry)
    /// are ignored: every cookie goes back to the one server this client talks to.
    pub(crate) fn store(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(header::SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let mut parts = value.split(';');
            let Some((name, val)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let (name, val) = (name.trim(), val.trim());
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b'=') {
                continue;
            }
            let deleted = parts.any(|attr| {
                attr.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("max-age")
                        && v.trim().parse::<i64>().is_ok_and(|n| n <= 0)
                })
            });
            self.cookies.retain(|(n, _)| n != name);
            if !deleted {
                self.cookies.push((name.to_owned(), val.to_owned()));
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.cookies.clear();
    }

    /// Adds the stored cookies (if any) to `headers`: appended to the `Cookie` header
    /// already there (a client sends one `Cookie` header, RFC 6265 §5.4), or as a new one.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        if self.cookies.is_empty() {
            return;
        }
        let mut line = match headers.get(header::COOKIE).map(HeaderValue::to_str) {
            Some(Ok(existing)) if !existing.trim().is_empty() => existing.trim().to_owned(),
            _ => String::new(),
        };
        for (name, value) in &self.cookies {
            if !line.is_empty() {
                line.push_str("; ");
            }
            line.push_str(name);
            line.push('=');
            line.push_str(value);
        }
        if let Ok(v) = HeaderValue::from_str(&line) {
            headers.insert(header::COOKIE, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_cookies(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::SET_COOKIE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn keeps_name_value_pairs_and_replaces_by_name() {
        let mut jar = CookieJar::default();
        let mut out = HeaderMap::new();
        jar.apply(&mut out);
        assert!(out.get(header::COOKIE).is_none());
        jar.store(&set_cookies(&[
            "io=abc; Path=/; HttpOnly; SameSite=Lax",
            "lb=node-1",
            "garbage",
            "=novalue",
        ]));
        jar.apply(&mut out);
        assert_eq!(out[header::COOKIE], "io=abc; lb=node-1");
        jar.store(&set_cookies(&["io=def; Path=/"]));
        let mut out = HeaderMap::new();
        jar.apply(&mut out);
        assert_eq!(out[header::COOKIE], "lb=node-1; io=def");
        jar.store(&set_cookies(&["lb=; Max-Age=0"]));
        let mut out = HeaderMap::new();
        jar.apply(&mut out);
        assert_eq!(out[header::COOKIE], "io=def");
        // Merged into the application's own Cookie header.
        let mut out = HeaderMap::new();
        out.insert(header::COOKIE, HeaderValue::from_static("session=1"));
        jar.apply(&mut out);
        assert_eq!(out.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(out[header::COOKIE], "session=1; io=def");
        jar.clear();
        let mut out = HeaderMap::new();
        jar.apply(&mut out);
        assert!(out.get(header::COOKIE).is_none());
    }
}
