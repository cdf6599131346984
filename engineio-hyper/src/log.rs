//! Short, printable forms of what crosses the wire, for `trace` logs: packets are cut
//! after a few dozen characters so that a log of large messages stays readable.

use std::fmt;

use engineio_proto::{Message, WsMessage};

/// Characters of text shown before the rest is summarised.
const SHOWN: usize = 80;

fn text(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    let cut = s.char_indices().nth(SHOWN).map(|(i, _)| i);
    match cut {
        Some(i) => write!(f, "{:?}... ({} bytes)", &s[..i], s.len()),
        None => write!(f, "{s:?}"),
    }
}

/// A WebSocket frame's content: `"4hello"`, or `<binary, 12 bytes>`.
pub(crate) struct Frame<'a>(pub(crate) &'a WsMessage);

impl fmt::Display for Frame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            WsMessage::Text(t) => text(f, t.as_str()),
            WsMessage::Binary(b) => write!(f, "<binary, {} bytes>", b.len()),
        }
    }
}

/// An application message.
pub(crate) struct Msg<'a>(pub(crate) &'a Message);

impl fmt::Display for Msg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Message::Text(t) => text(f, t.as_str()),
            Message::Binary(b) => write!(f, "<binary, {} bytes>", b.len()),
        }
    }
}

/// An HTTP body (a polling payload is text; anything else is shown lossily).
pub(crate) struct Body<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Body<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(self.0) {
            Ok(s) => text(f, s),
            Err(_) => write!(f, "<{} bytes, not UTF-8>", self.0.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        assert_eq!(Msg(&Message::from("hi")).to_string(), "\"hi\"");
        let long = "é".repeat(100);
        let shown = Msg(&Message::from(long.as_str())).to_string();
        assert!(
            shown.starts_with(&format!("\"{}\"...", "é".repeat(80))),
            "{shown}"
        );
        assert!(shown.ends_with("(200 bytes)"));
        assert_eq!(
            Frame(&WsMessage::Binary(vec![1, 2, 3].into())).to_string(),
            "<binary, 3 bytes>"
        );
        assert_eq!(Body(&[0xff, 0xfe]).to_string(), "<2 bytes, not UTF-8>");
    }
}
