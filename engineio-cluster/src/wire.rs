//! The bus messages between nodes and their binary encoding.
//!
//! Every message is one bus payload:
//!
//! ```text
//! version  u8   (1)
//! kind     u8   (Heartbeat 1, Hello 2, Leave 3, Request 4, Response 5)
//! sender   u8 length + node id bytes
//! incarnation u64 big-endian: random per process, tells a restarted node from the old one
//! seq      u64: per sender, per channel (the shared channel, or the receiver's own),
//!               starting at 1; a gap is a lost message
//! body     by kind (below)
//! ```
//!
//! Heartbeat and Hello carry the node's internal HTTP address (u16 length + bytes); a
//! Request carries its operation id (u64) and a command; a Response the operation id and
//! an answer. Strings are UTF-8 with a length prefix; messages are a type byte (0 text,
//! 1 binary) and a u32 length. Decoding checks every length and never panics.

use bytes::{BufMut, Bytes, BytesMut};
use engineio_proto::{Message, NodeId, Sid, Utf8Bytes};

const VERSION: u8 = 1;

/// What one node tells the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub(crate) sender: NodeId,
    pub(crate) incarnation: u64,
    pub(crate) seq: u64,
    pub(crate) body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// "I am alive, at this address" (every heartbeat interval, and in answer to a Hello).
    Heartbeat {
        address: String,
    },
    /// A node joined (or its bus came back): everyone answers with a heartbeat.
    Hello {
        address: String,
    },
    /// The node leaves the cluster (graceful drain).
    Leave,
    Request {
        op: u64,
        command: Command,
    },
    Response {
        op: u64,
        answer: Answer,
    },
}

/// An operation one node asks of another (or of all).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Send a message to one of the receiver's sessions.
    Send {
        /// The session.
        sid: Sid,
        /// The message.
        message: Message,
    },
    /// Close one of the receiver's sessions.
    Close {
        /// The session.
        sid: Sid,
    },
    /// Send a message to every session of the receiver, except these.
    Broadcast {
        /// The message.
        message: Message,
        /// Sessions that must not get it.
        except: Vec<Sid>,
    },
    /// How many sessions the receiver has.
    Count,
    /// The receiver's session ids.
    Sids,
}

/// How a node answers a [`Command`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// The message was queued on the session.
    Sent,
    /// The message was not queued.
    NotSent(NotSent),
    /// `Close`: whether there was such a session.
    Closed(bool),
    /// `Broadcast`: how many sessions the message was queued on.
    Delivered(u64),
    /// `Count`.
    Count(u64),
    /// `Sids`.
    Sids(Vec<Sid>),
}

/// Why the owner did not queue a message for its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotSent {
    /// The owner has no live session with this id (it ended).
    NoSession,
    /// The session's outgoing queue is full (its client is not reading).
    QueueFull,
    /// The session refused the message (for example text holding `U+001E` on polling).
    Refused,
}

/// A bus payload that is not a message of this protocol (another program on the same
/// channels, or a newer version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable cluster message: {0}")]
pub struct WireError(pub(crate) &'static str);

impl Envelope {
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(64);
        out.put_u8(VERSION);
        out.put_u8(match self.body {
            Body::Heartbeat { .. } => 1,
            Body::Hello { .. } => 2,
            Body::Leave => 3,
            Body::Request { .. } => 4,
            Body::Response { .. } => 5,
        });
        put_short(&mut out, self.sender.as_str().as_bytes());
        out.put_u64(self.incarnation);
        out.put_u64(self.seq);
        match &self.body {
            Body::Heartbeat { address } | Body::Hello { address } => {
                put_u16_str(&mut out, address);
            }
            Body::Leave => {}
            Body::Request { op, command } => {
                out.put_u64(*op);
                put_command(&mut out, command);
            }
            Body::Response { op, answer } => {
                out.put_u64(*op);
                put_answer(&mut out, answer);
            }
        }
        out.freeze()
    }

    pub(crate) fn decode(payload: &Bytes) -> Result<Envelope, WireError> {
        let mut r = Reader {
            buf: payload,
            pos: 0,
        };
        if r.u8()? != VERSION {
            return Err(WireError("unknown version"));
        }
        let kind = r.u8()?;
        let sender = std::str::from_utf8(r.short()?).map_err(|_| WireError("sender"))?;
        let sender = NodeId::new(sender).map_err(|_| WireError("sender node id"))?;
        let incarnation = r.u64()?;
        let seq = r.u64()?;
        let body = match kind {
            1 => Body::Heartbeat {
                address: r.u16_str()?,
            },
            2 => Body::Hello {
                address: r.u16_str()?,
            },
            3 => Body::Leave,
            4 => Body::Request {
                op: r.u64()?,
                command: r.command()?,
            },
            5 => Body::Response {
                op: r.u64()?,
                answer: r.answer()?,
            },
            _ => return Err(WireError("unknown kind")),
        };
        if r.pos != payload.len() {
            return Err(WireError("trailing bytes"));
        }
        Ok(Envelope {
            sender,
            incarnation,
            seq,
            body,
        })
    }
}

fn put_short(out: &mut BytesMut, b: &[u8]) {
    // Sids and node ids are at most 47 bytes.
    out.put_u8(b.len().min(255) as u8);
    out.put_slice(b.get(..b.len().min(255)).unwrap_or(&[]));
}

fn put_u16_str(out: &mut BytesMut, s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(u16::MAX as usize);
    out.put_u16(n as u16);
    out.put_slice(b.get(..n).unwrap_or(&[]));
}

fn put_message(out: &mut BytesMut, m: &Message) {
    let (tag, data): (u8, &[u8]) = match m {
        Message::Text(t) => (0, t.as_bytes()),
        Message::Binary(b) => (1, b),
    };
    out.put_u8(tag);
    out.put_u32(data.len().min(u32::MAX as usize) as u32);
    out.put_slice(data);
}

fn put_sids(out: &mut BytesMut, sids: &[Sid]) {
    out.put_u32(sids.len().min(u32::MAX as usize) as u32);
    for s in sids {
        put_short(out, s.as_bytes());
    }
}

fn put_command(out: &mut BytesMut, c: &Command) {
    match c {
        Command::Send { sid, message } => {
            out.put_u8(1);
            put_short(out, sid.as_bytes());
            put_message(out, message);
        }
        Command::Close { sid } => {
            out.put_u8(2);
            put_short(out, sid.as_bytes());
        }
        Command::Broadcast { message, except } => {
            out.put_u8(3);
            put_message(out, message);
            put_sids(out, except);
        }
        Command::Count => out.put_u8(4),
        Command::Sids => out.put_u8(5),
    }
}

fn put_answer(out: &mut BytesMut, a: &Answer) {
    match a {
        Answer::Sent => out.put_u8(1),
        Answer::NotSent(why) => {
            out.put_u8(2);
            out.put_u8(match why {
                NotSent::NoSession => 1,
                NotSent::QueueFull => 2,
                NotSent::Refused => 3,
            });
        }
        Answer::Closed(existed) => {
            out.put_u8(3);
            out.put_u8(u8::from(*existed));
        }
        Answer::Delivered(n) => {
            out.put_u8(4);
            out.put_u64(*n);
        }
        Answer::Count(n) => {
            out.put_u8(5);
            out.put_u64(*n);
        }
        Answer::Sids(sids) => {
            out.put_u8(6);
            put_sids(out, sids);
        }
    }
}

struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError("length"))?;
        let s = self.buf.get(self.pos..end).ok_or(WireError("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.be::<8>()?))
    }

    fn short(&mut self) -> Result<&[u8], WireError> {
        let n = self.u8()? as usize;
        self.take(n)
    }

    fn u16_str(&mut self) -> Result<String, WireError> {
        let n = u16::from_be_bytes(self.be::<2>()?) as usize;
        let b = self.take(n)?;
        Ok(std::str::from_utf8(b)
            .map_err(|_| WireError("address"))?
            .to_owned())
    }

    fn sid(&mut self) -> Result<Sid, WireError> {
        let b = self.short()?;
        let s = std::str::from_utf8(b).map_err(|_| WireError("sid"))?;
        Sid::new(s).map_err(|_| WireError("sid"))
    }

    fn sids(&mut self) -> Result<Vec<Sid>, WireError> {
        let n = u32::from_be_bytes(self.be::<4>()?) as usize;
        // Each sid takes at least 2 bytes: refuse counts the payload cannot hold.
        if n > self.buf.len().saturating_sub(self.pos) / 2 {
            return Err(WireError("sid count"));
        }
        (0..n).map(|_| self.sid()).collect()
    }

    fn message(&mut self) -> Result<Message, WireError> {
        let tag = self.u8()?;
        let n = u32::from_be_bytes(self.be::<4>()?) as usize;
        let start = self.pos;
        self.take(n)?;
        let data = self.buf.slice(start..start + n);
        match tag {
            0 => Utf8Bytes::try_from(data)
                .map(Message::Text)
                .map_err(|_| WireError("text message is not UTF-8")),
            1 => Ok(Message::Binary(data)),
            _ => Err(WireError("message type")),
        }
    }

    fn command(&mut self) -> Result<Command, WireError> {
        Ok(match self.u8()? {
            1 => Command::Send {
                sid: self.sid()?,
                message: self.message()?,
            },
            2 => Command::Close { sid: self.sid()? },
            3 => Command::Broadcast {
                message: self.message()?,
                except: self.sids()?,
            },
            4 => Command::Count,
            5 => Command::Sids,
            _ => return Err(WireError("command")),
        })
    }

    fn answer(&mut self) -> Result<Answer, WireError> {
        Ok(match self.u8()? {
            1 => Answer::Sent,
            2 => Answer::NotSent(match self.u8()? {
                1 => NotSent::NoSession,
                2 => NotSent::QueueFull,
                3 => NotSent::Refused,
                _ => return Err(WireError("not-sent reason")),
            }),
            3 => Answer::Closed(self.u8()? != 0),
            4 => Answer::Delivered(self.u64()?),
            5 => Answer::Count(self.u64()?),
            6 => Answer::Sids(self.sids()?),
            _ => return Err(WireError("answer")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn samples() -> Vec<Envelope> {
        let sid = Sid::routable(&node("b"), [3; 15]);
        let bodies = vec![
            Body::Heartbeat {
                address: "127.0.0.1:3001".into(),
            },
            Body::Hello {
                address: "[::1]:80".into(),
            },
            Body::Leave,
            Body::Request {
                op: 7,
                command: Command::Send {
                    sid,
                    message: Message::from("héllo"),
                },
            },
            Body::Request {
                op: 8,
                command: Command::Broadcast {
                    message: Message::Binary(Bytes::from_static(&[0, 1, 2])),
                    except: vec![sid, Sid::new("x").unwrap()],
                },
            },
            Body::Request {
                op: 9,
                command: Command::Close { sid },
            },
            Body::Request {
                op: 10,
                command: Command::Count,
            },
            Body::Request {
                op: 11,
                command: Command::Sids,
            },
            Body::Response {
                op: 7,
                answer: Answer::Sent,
            },
            Body::Response {
                op: 7,
                answer: Answer::NotSent(NotSent::QueueFull),
            },
            Body::Response {
                op: 9,
                answer: Answer::Closed(true),
            },
            Body::Response {
                op: 8,
                answer: Answer::Delivered(3),
            },
            Body::Response {
                op: 10,
                answer: Answer::Count(u64::MAX),
            },
            Body::Response {
                op: 11,
                answer: Answer::Sids(vec![sid]),
            },
        ];
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| Envelope {
                sender: node("node-a"),
                incarnation: 0xdead_beef,
                seq: i as u64 + 1,
                body,
            })
            .collect()
    }

    #[test]
    fn round_trips() {
        for e in samples() {
            assert_eq!(Envelope::decode(&e.encode()).unwrap(), e);
        }
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        for e in samples() {
            let full = e.encode();
            for n in 0..full.len() {
                assert!(
                    Envelope::decode(&full.slice(..n)).is_err(),
                    "{e:?} cut at {n}"
                );
            }
            let mut longer = full.to_vec();
            longer.push(0);
            assert!(Envelope::decode(&Bytes::from(longer)).is_err());
            for i in 0..full.len() {
                for b in [0u8, 0x7f, 0xff] {
                    let mut v = full.to_vec();
                    v[i] = b;
                    let _ = Envelope::decode(&Bytes::from(v));
                }
            }
        }
    }
}
