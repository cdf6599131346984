//! WebSocket close codes (RFC 6455, section 7.4) as the state machines choose them.

use std::fmt;

/// The status code of a WebSocket close frame.
///
/// The state machines decide every close code; bindings only write it. The named codes
/// are the ones Engine.IO uses; [`Other`](CloseCode::Other) carries any code a peer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseCode {
    /// 1000: the session ended normally (server close, ping timeout, client close).
    Normal,
    /// 1001: the server is shutting down.
    GoingAway,
    /// 1002: the peer broke the WebSocket or Engine.IO protocol (bad frame, bad packet).
    Protocol,
    /// 1007: a text message was not valid UTF-8.
    InvalidPayload,
    /// 1008: the request is refused by policy (for example a second WebSocket for a
    /// session that already has one).
    Policy,
    /// 1009: a message was over the size limit (`max_payload`).
    TooBig,
    /// 1011: the server met an unexpected condition.
    InternalError,
    /// Any other code.
    Other(u16),
}

impl CloseCode {
    /// The numeric code.
    pub const fn as_u16(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::Protocol => 1002,
            CloseCode::InvalidPayload => 1007,
            CloseCode::Policy => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::InternalError => 1011,
            CloseCode::Other(code) => code,
        }
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        match code {
            1000 => CloseCode::Normal,
            1001 => CloseCode::GoingAway,
            1002 => CloseCode::Protocol,
            1007 => CloseCode::InvalidPayload,
            1008 => CloseCode::Policy,
            1009 => CloseCode::TooBig,
            1011 => CloseCode::InternalError,
            other => CloseCode::Other(other),
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.as_u16()
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::CloseCode;

    #[test]
    fn codes_round_trip_through_u16() {
        for code in [1000u16, 1001, 1002, 1007, 1008, 1009, 1011, 4000, 1005] {
            assert_eq!(CloseCode::from(code).as_u16(), code);
        }
        assert_eq!(CloseCode::from(1009), CloseCode::TooBig);
        assert_eq!(CloseCode::Other(4001).to_string(), "4001");
    }
}
