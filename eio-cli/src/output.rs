//! Printing: one line per event, for people (a timestamp, a label, details) or for scripts
//! (`--json`: one JSON object per line), and the value formats both share.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Map, Value};

/// Where events go: stdout, as text or JSON lines, timed from the start of the command.
#[derive(Debug, Clone)]
pub(crate) struct Out {
    json: bool,
    start: Instant,
    start_wall: SystemTime,
}

impl Out {
    /// Output starting now.
    pub(crate) fn new(json: bool) -> Out {
        Out {
            json,
            start: Instant::now(),
            start_wall: SystemTime::now(),
        }
    }

    /// Seconds from the start to `at`.
    pub(crate) fn elapsed(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.start).as_secs_f64()
    }

    /// One event at `at`: `kind` and the human text, or a JSON object with `t` (seconds
    /// since the start), `time` (RFC 3339, UTC), `event` = `kind` and `fields`.
    pub(crate) fn event(&self, at: Instant, kind: &str, human: &str, fields: Map<String, Value>) {
        let line = if self.json {
            // `t`, `time` and `event` first, then the fields (serde_json's map sorts keys).
            let wall = self.start_wall + at.saturating_duration_since(self.start);
            let mut line = format!(
                "{{\"t\":{},\"time\":\"{}\",\"event\":{}",
                round_ms(self.elapsed(at)),
                rfc3339(wall),
                Value::from(kind)
            );
            for (k, v) in fields {
                line.push(',');
                line.push_str(&Value::from(k).to_string());
                line.push(':');
                line.push_str(&v.to_string());
            }
            line.push('}');
            line
        } else {
            let t = self.elapsed(at);
            let mut text = String::new();
            let mut lines = human.lines();
            let first = lines.next().unwrap_or("");
            text.push_str(&format!("{t:9.3}  {kind:<8} {first}"));
            // Continuation lines (pretty-printed JSON) line up under the details.
            for l in lines {
                text.push_str(&format!("\n{:20}{l}", ""));
            }
            text
        };
        println_out(&line);
    }
}

/// Prints a line to stdout; a closed stdout (`eio ... | head`) is not an error worth a panic.
pub(crate) fn println_out(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// Flushes stdout before the process exits.
pub(crate) fn flush() {
    let _ = std::io::stdout().flush();
}

/// Seconds rounded to milliseconds.
pub(crate) fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// A duration for people: `850 ms`, `2.5 s`.
pub(crate) fn human_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        let s = d.as_secs_f64();
        if s < 10.0 {
            format!("{s:.2} s")
        } else {
            format!("{s:.1} s")
        }
    }
}

/// A time as RFC 3339 in UTC with milliseconds: `2026-12-01T20:52:32.123Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Text for a terminal: control characters escaped (`\n`, `\t`, `\u{1b}`...), the rest
/// as is.
pub(crate) fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// Bytes as hex pairs: `01 02 ff`, at most `max` bytes, then `… (N bytes)`.
pub(crate) fn hex(data: &[u8], max: Option<usize>) -> String {
    let shown = max.map_or(data.len(), |m| m.min(data.len()));
    let mut out = data
        .iter()
        .take(shown)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    if shown < data.len() {
        out.push_str(&format!(
            " … ({} more bytes; --full shows all)",
            data.len() - shown
        ));
    }
    out
}

/// Standard base64 with padding.
pub(crate) fn base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// The JSON value of a text message, when it is a JSON object or array (numbers and
/// strings stay text: `42` is more likely a word than a document).
pub(crate) fn json_document(text: &str) -> Option<Value> {
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') && !trimmed.starts_with('[') {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// Valid JSON re-indented, two spaces a level, keys in the order they came (a parsed
/// `serde_json::Value` would sort them).
pub(crate) fn pretty_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let mut chars = json.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // An empty object or array stays on one line.
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}' | ']')) {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// A message for people: `text hello`, `json` + the pretty document, `binary 4 bytes: ..`.
pub(crate) fn message_human(message: &engineio_proto::Message, full: bool) -> String {
    match message {
        engineio_proto::Message::Text(t) => match json_document(t) {
            Some(_) => format!("json ({} bytes)\n{}", t.len(), pretty_json(t)),
            None => format!("text {}", escape_text(t)),
        },
        engineio_proto::Message::Binary(b) => format!(
            "binary {} bytes: {}",
            b.len(),
            hex(b, if full { None } else { Some(64) })
        ),
    }
}

/// A message for scripts: `type` (`text` or `binary`), `data` (the text, or base64),
/// `len` (bytes) and `json` (the parsed document of a JSON text).
pub(crate) fn message_fields(message: &engineio_proto::Message) -> Map<String, Value> {
    let mut m = Map::new();
    match message {
        engineio_proto::Message::Text(t) => {
            m.insert("type".into(), "text".into());
            m.insert("data".into(), Value::from(&**t));
            m.insert("len".into(), Value::from(t.len()));
            if let Some(doc) = json_document(t) {
                m.insert("json".into(), doc);
            }
        }
        engineio_proto::Message::Binary(b) => {
            m.insert("type".into(), "binary".into());
            m.insert("data".into(), Value::from(base64(b)));
            m.insert("len".into(), Value::from(b.len()));
        }
    }
    m
}

/// A JSON object from `(key, value)` pairs.
pub(crate) fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789); // a leap year's Feb 29
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn messages_for_people_and_scripts() {
        use engineio_proto::Message;
        let m = Message::Text("a\nb\u{1b}".into());
        assert_eq!(message_human(&m, false), "text a\\nb\\u{1b}");
        let m = Message::Text(r#"{"a":[1,2]}"#.into());
        let h = message_human(&m, false);
        assert!(h.starts_with("json (11 bytes)\n{\n  \"a\": ["), "{h}");
        assert_eq!(message_fields(&m)["json"]["a"][1], 2);
        assert!(json_document("42").is_none() && json_document("{bad").is_none());
        let m = Message::Binary(vec![1u8, 2, 255].into());
        assert_eq!(message_human(&m, false), "binary 3 bytes: 01 02 ff");
        assert_eq!(message_fields(&m)["data"], "AQL/");
        let big = vec![0u8; 70];
        assert!(hex(&big, Some(64)).ends_with("(6 more bytes; --full shows all)"));
        assert_eq!(hex(&big, None).len(), 70 * 3 - 1);
    }

    #[test]
    fn pretty_json_keeps_key_order_and_strings() {
        let text = r#"{"z":1,"a":[true,{"q":"a, \"b\": {c}"}],"e":{},"f":[ ]}"#;
        let pretty = pretty_json(text);
        assert_eq!(
            pretty,
            "{\n  \"z\": 1,\n  \"a\": [\n    true,\n    {\n      \"q\": \"a, \\\"b\\\": {c}\"\n    }\n  ],\n  \"e\": {},\n  \"f\": []\n}"
        );
        // Same document as the input.
        let a: Value = serde_json::from_str(text).unwrap();
        let b: Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(Duration::from_millis(850)), "850 ms");
        assert_eq!(human_duration(Duration::from_millis(2500)), "2.50 s");
        assert_eq!(human_duration(Duration::from_secs(25)), "25.0 s");
    }
}
