//! What a line typed on stdin (or given with `--send`) means for `eio connect`.
//!
//! A plain line is a text message. A line starting with `:` is a command:
//!
//! | line | does |
//! |---|---|
//! | `:text TEXT` | sends TEXT as a text message (for a text that starts with `:`) |
//! | `:json DOC` | checks that DOC is JSON, then sends it (compact) as a text message |
//! | `:bin TEXT` | sends the UTF-8 bytes of TEXT as a binary message |
//! | `:hex 01 02 ff` | sends the bytes as a binary message (spaces optional) |
//! | `:b64 AQL/` | sends the base64 (standard, padding optional) bytes as a binary message |
//! | `:sleep MS` | waits MS milliseconds before reading the next line |
//! | `:close` | closes the connection |
//! | `:help` | lists the commands (on stderr) |
//!
//! With `--raw`, no line is a command; with `--binary`, plain lines are sent as binary.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use engineio_proto::Message;

/// The commands, for `:help` and unknown-command errors.
pub(crate) const HELP: &str = "lines are text messages; commands: \
    :text TEXT | :json DOC | :bin TEXT | :hex 01 02 ff | :b64 AQL/ | :sleep MS | :close | :help \
    (--raw: no commands; --binary: plain lines are binary)";

/// What a line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    /// Send this message.
    Send(Message),
    /// Wait before the next line.
    Sleep(Duration),
    /// Close the connection.
    Close,
    /// Print the commands.
    Help,
}

/// How plain lines are read.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mode {
    /// No commands: every line is a message.
    pub(crate) raw: bool,
    /// Plain lines are binary messages.
    pub(crate) binary: bool,
}

/// Reads one line (without its line ending). Errors say what is wrong and nothing is sent.
pub(crate) fn parse(line: &str, mode: Mode) -> Result<Line, String> {
    let plain = |s: &str| {
        if mode.binary {
            Message::Binary(Bytes::copy_from_slice(s.as_bytes()))
        } else {
            Message::Text(s.into())
        }
    };
    if mode.raw || !line.starts_with(':') {
        return Ok(Line::Send(plain(line)));
    }
    let (command, rest) = match line.split_once(' ') {
        Some((c, r)) => (c, r),
        None => (line, ""),
    };
    match command {
        ":text" => Ok(Line::Send(Message::Text(rest.into()))),
        ":json" => {
            let doc: serde_json::Value = serde_json::from_str(rest)
                .map_err(|e| format!(":json: not JSON ({e}); nothing sent"))?;
            Ok(Line::Send(Message::Text(doc.to_string().into())))
        }
        ":bin" => Ok(Line::Send(Message::Binary(Bytes::copy_from_slice(
            rest.as_bytes(),
        )))),
        ":hex" => parse_hex(rest).map(|b| Line::Send(Message::Binary(b.into()))),
        ":b64" => {
            let clean: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(clean.trim_end_matches('='))
                .map(|b| Line::Send(Message::Binary(b.into())))
                .map_err(|e| format!(":b64: not base64 ({e}); nothing sent"))
        }
        ":sleep" => rest
            .trim()
            .parse::<u64>()
            .map(|ms| Line::Sleep(Duration::from_millis(ms.min(3_600_000))))
            .map_err(|_| format!(":sleep: expected milliseconds, got {rest:?}")),
        ":close" => Ok(Line::Close),
        ":help" => Ok(Line::Help),
        other => Err(format!(
            "unknown command {other:?}; nothing sent (to send a text starting with ':', \
             use ':text {line}' or --raw). {HELP}"
        )),
    }
}

/// `01 02 ff`, `0102ff` or `0x01 0x02`.
fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: String = s
        .split_whitespace()
        .map(|w| w.trim_start_matches("0x"))
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!(
            ":hex: an odd number of hex digits in {s:?}; nothing sent"
        ));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!(":hex: {s:?} is not hex; nothing sent"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Line {
        Line::Send(Message::Text(s.into()))
    }

    fn bin(b: &[u8]) -> Line {
        Line::Send(Message::Binary(Bytes::copy_from_slice(b)))
    }

    #[test]
    fn plain_lines_and_commands() {
        let m = Mode::default();
        assert_eq!(parse("hello", m).unwrap(), text("hello"));
        assert_eq!(parse("", m).unwrap(), text(""));
        assert_eq!(parse(":text :x", m).unwrap(), text(":x"));
        assert_eq!(parse(":json { \"a\" : 1 }", m).unwrap(), text(r#"{"a":1}"#));
        assert_eq!(parse(":bin hé", m).unwrap(), bin("hé".as_bytes()));
        assert_eq!(parse(":hex 01 02 ff", m).unwrap(), bin(&[1, 2, 255]));
        assert_eq!(parse(":hex 0x0102FF", m).unwrap(), bin(&[1, 2, 255]));
        assert_eq!(parse(":hex", m).unwrap(), bin(&[]));
        assert_eq!(parse(":b64 AQL/", m).unwrap(), bin(&[1, 2, 255]));
        assert_eq!(parse(":b64 AQI=", m).unwrap(), bin(&[1, 2]));
        assert_eq!(
            parse(":sleep 250", m).unwrap(),
            Line::Sleep(Duration::from_millis(250))
        );
        assert_eq!(parse(":close", m).unwrap(), Line::Close);
        assert_eq!(parse(":help", m).unwrap(), Line::Help);
    }

    #[test]
    fn bad_commands_send_nothing_and_say_why() {
        let m = Mode::default();
        assert!(parse(":nope", m).unwrap_err().contains(":text"));
        assert!(parse(":hex 123", m).unwrap_err().contains("odd"));
        assert!(parse(":hex zz", m).unwrap_err().contains("not hex"));
        assert!(parse(":b64 !!", m).unwrap_err().contains("base64"));
        assert!(parse(":json {", m).unwrap_err().contains("not JSON"));
        assert!(parse(":sleep soon", m).is_err());
    }

    #[test]
    fn raw_and_binary_modes() {
        let raw = Mode {
            raw: true,
            binary: false,
        };
        assert_eq!(parse(":close", raw).unwrap(), text(":close"));
        let binary = Mode {
            raw: false,
            binary: true,
        };
        assert_eq!(parse("ab", binary).unwrap(), bin(b"ab"));
        assert_eq!(parse(":text ab", binary).unwrap(), text("ab"));
    }
}
