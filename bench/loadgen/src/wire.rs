//! Hand-written wire code for the hot paths: WebSocket frames (client side, fixed mask
//! key, so frames can be precomputed), a read buffer parsed in place, the WebSocket
//! upgrade request, and a minimal HTTP/1.1 keep-alive client for long-polling.
//!
//! Nothing here allocates per message once a connection is set up.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::cli::Target;

/// The mask key of every client frame (the server cannot tell, and it makes frames
/// precomputable).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// WebSocket opcodes.
pub(crate) const OP_TEXT: u8 = 1;
pub(crate) const OP_BINARY: u8 = 2;
pub(crate) const OP_CLOSE: u8 = 8;
pub(crate) const OP_PING: u8 = 9;
pub(crate) const OP_PONG: u8 = 10;

/// What `--deflate` offers: permessage-deflate with no context kept on either side, so
/// that each compressed message can be made (and read) on its own.
pub(crate) const DEFLATE_OFFER: &str =
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover";

/// Messages from this size up are compressed by a `--deflate` client (Node's `ws`
/// threshold).
pub(crate) const DEFLATE_THRESHOLD: usize = 1024;

/// The largest response head or frame this client buffers.
const MAX_BUFFER: usize = 64 << 20;

/// Appends one masked client frame to `out`.
pub(crate) fn encode_frame(opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
    encode_frame_bits(0x80 | opcode, payload, out);
}

/// One masked client frame of a message compressed with permessage-deflate (RSV1 set):
/// the payload deflated on its own (no context), without the final empty block's tail.
pub(crate) fn deflated_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut deflated = Vec::with_capacity(payload.len() + 64);
    // The output is grown as needed; a sync flush ends the message (RFC 7692 7.2.1).
    loop {
        let before = c.total_in() as usize;
        deflated.reserve(payload.len() / 2 + 64);
        let status = c
            .compress_vec(
                &payload[before..],
                &mut deflated,
                flate2::FlushCompress::Sync,
            )
            .expect("deflate of an in-memory buffer");
        if c.total_in() as usize == payload.len()
            && deflated.len() < deflated.capacity()
            && status == flate2::Status::Ok
        {
            break;
        }
    }
    if deflated.ends_with(&[0, 0, 0xff, 0xff]) {
        deflated.truncate(deflated.len() - 4);
    }
    let mut out = Vec::with_capacity(deflated.len() + 14);
    encode_frame_bits(0x80 | 0x40 | opcode, &deflated, &mut out);
    out
}

/// The length of a compressed message's payload once inflated (on its own: the server
/// keeps no context), or `None` if it does not inflate.
pub(crate) fn inflated_len(payload: &[u8]) -> Option<usize> {
    let mut d = flate2::Decompress::new(false);
    let mut input = Vec::with_capacity(payload.len() + 4);
    input.extend_from_slice(payload);
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(payload.len() * 4 + 64);
    loop {
        let before = d.total_in() as usize;
        d.decompress_vec(&input[before..], &mut out, flate2::FlushDecompress::Sync)
            .ok()?;
        if d.total_in() as usize == input.len() && out.len() < out.capacity() {
            return Some(out.len());
        }
        out.reserve(out.capacity().max(1024));
    }
}

fn encode_frame_bits(first: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(first);
    let n = payload.len();
    if n < 126 {
        out.push(0x80 | n as u8);
    } else if n < 65536 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i & 3]));
}

/// One masked client frame.
pub(crate) fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    encode_frame(opcode, payload, &mut out);
    out
}

/// A complete frame at the start of a buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    /// The opcode.
    pub(crate) op: u8,
    /// RSV1: a message compressed with permessage-deflate.
    pub(crate) compressed: bool,
    /// Where the payload starts.
    pub(crate) start: usize,
    /// The payload length.
    pub(crate) len: usize,
}

impl Frame {
    /// Bytes the whole frame takes.
    pub(crate) fn total(&self) -> usize {
        self.start + self.len
    }

    /// The payload (unmasked: servers do not mask).
    pub(crate) fn payload<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start..self.start + self.len]
    }
}

/// The frame at the start of `buf`, if it is complete.
pub(crate) fn parse_frame(buf: &[u8]) -> Option<Frame> {
    if buf.len() < 2 {
        return None;
    }
    let op = buf[0] & 0x0f;
    let compressed = buf[0] & 0x40 != 0;
    let masked = buf[1] & 0x80 != 0;
    let mut len = (buf[1] & 0x7f) as usize;
    let mut start = 2;
    if len == 126 {
        len = u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize;
        start = 4;
    } else if len == 127 {
        let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
        len = u64::from_be_bytes(bytes) as usize;
        start = 10;
    }
    if masked {
        start += 4;
    }
    if buf.len() < start + len {
        return None;
    }
    Some(Frame {
        op,
        compressed,
        start,
        len,
    })
}

/// A read buffer: bytes `start..end` are unparsed. Grows only when one frame or response
/// does not fit.
#[derive(Debug)]
pub(crate) struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    /// A buffer of `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> ReadBuf {
        ReadBuf {
            buf: vec![0; capacity.max(64)],
            start: 0,
            end: 0,
        }
    }

    /// The unparsed bytes.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks `n` bytes as parsed.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start >= self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Forgets everything buffered.
    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// One read from `stream` (after making room); an error at end of stream.
    pub(crate) async fn fill<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> io::Result<usize> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < MAX_BUFFER {
                let len = self.buf.len();
                self.buf.resize(len * 2, 0);
            } else {
                return Err(io::Error::other("frame or response larger than 64 MiB"));
            }
        } else if self.start > self.buf.len() / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by the server",
            ));
        }
        self.end += n;
        Ok(n)
    }
}

/// End of an HTTP head (the index after `\r\n\r\n`).
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// The status code of an HTTP/1.x response head.
fn status_code(head: &[u8]) -> Option<u16> {
    let code = head.get(9..12)?;
    if !head.starts_with(b"HTTP/1.") {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// The first line of a head, for error messages.
fn first_line(head: &[u8]) -> String {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    String::from_utf8_lossy(line).into_owned()
}

/// Opens a WebSocket to the Engine.IO endpoint (an upgrade of session `sid` if given).
/// Returns the stream and what was read past the `101` response.
pub(crate) async fn ws_connect(
    target: &Target,
    sid: Option<&str>,
    read_buffer: usize,
) -> io::Result<(TcpStream, ReadBuf)> {
    ws_connect_from(target, sid, read_buffer, None).await
}

/// A source address for the `n`th of many connections: 127.0.0.2 to 127.0.0.9 in turn, so
/// that each address needs fewer ephemeral ports. With one source address the kernel's
/// ephemeral-port search (`__inet_hash_connect`) slows connects down to about 1,500/s past
/// 10,000 open connections, which would measure the load generator, not the server.
pub(crate) fn spread_source(target: &Target, n: usize) -> Option<IpAddr> {
    match target.addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => {
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (n % 8) as u8)))
        }
        _ => None,
    }
}

/// [`ws_connect`] from a given local address (see [`spread_source`]).
pub(crate) async fn ws_connect_from(
    target: &Target,
    sid: Option<&str>,
    read_buffer: usize,
    source: Option<IpAddr>,
) -> io::Result<(TcpStream, ReadBuf)> {
    let mut stream = match source {
        Some(ip) => {
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(ip, 0))?;
            socket.connect(target.addr).await?
        }
        None => TcpStream::connect(target.addr).await?,
    };
    stream.set_nodelay(true)?;
    let extensions = if target.deflate {
        format!("Sec-WebSocket-Extensions: {DEFLATE_OFFER}\r\n")
    } else {
        String::new()
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n",
        target.ws_uri(sid),
        target.host
    );
    stream.write_all(request.as_bytes()).await?;
    let mut rb = ReadBuf::new(read_buffer);
    loop {
        rb.fill(&mut stream).await?;
        if let Some(end) = head_end(rb.data()) {
            let head = &rb.data()[..end];
            if status_code(head) != Some(101) {
                return Err(io::Error::other(format!(
                    "upgrade refused: {}",
                    first_line(head)
                )));
            }
            if target.deflate
                && !String::from_utf8_lossy(head)
                    .to_ascii_lowercase()
                    .contains("sec-websocket-extensions: permessage-deflate")
            {
                return Err(io::Error::other(
                    "--deflate: the server did not agree to permessage-deflate",
                ));
            }
            rb.consume(end);
            return Ok((stream, rb));
        }
        if rb.data().len() > 64 * 1024 {
            return Err(io::Error::other("upgrade response head too large"));
        }
    }
}

/// What the open packet said.
#[derive(Debug, Clone)]
pub(crate) struct Open {
    /// The session id.
    pub(crate) sid: String,
    /// The server's ping interval.
    pub(crate) ping_interval: Duration,
}

/// The value of `"key":` in a flat JSON object, as raw text (a string without quotes).
fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("\"{key}\":");
    let rest = json[json.find(&pattern)? + pattern.len()..].trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        return s.get(..s.find('"')?);
    }
    let end = rest
        .find(|c: char| c == ',' || c == '}' || c.is_whitespace())
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Parses an open packet (`0{"sid":...}`).
pub(crate) fn parse_open(packet: &[u8]) -> io::Result<Open> {
    let text =
        std::str::from_utf8(packet).map_err(|_| io::Error::other("open packet not UTF-8"))?;
    let bad = || io::Error::other(format!("bad open packet {text:?}"));
    let json = text.strip_prefix('0').ok_or_else(bad)?;
    let sid = json_field(json, "sid").ok_or_else(bad)?.to_owned();
    let ms: u64 = json_field(json, "pingInterval")
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad)?;
    Ok(Open {
        sid,
        ping_interval: Duration::from_millis(ms),
    })
}

/// Reads frames until the Engine.IO open packet (the first frame of a WebSocket session).
pub(crate) async fn ws_read_open(stream: &mut TcpStream, rb: &mut ReadBuf) -> io::Result<Open> {
    loop {
        while let Some(f) = parse_frame(rb.data()) {
            let payload = f.payload(rb.data());
            let open =
                (f.op == OP_TEXT && payload.first() == Some(&b'0')).then(|| parse_open(payload));
            rb.consume(f.total());
            if let Some(open) = open {
                return open;
            }
        }
        rb.fill(stream).await?;
    }
}

/// An HTTP/1.1 keep-alive connection that reconnects when the server closed it.
#[derive(Debug)]
pub(crate) struct HttpConn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    rb: ReadBuf,
    /// The body of the last response (reused between requests).
    pub(crate) body: Vec<u8>,
    /// Connections opened (1 with keep-alive working).
    pub(crate) connects: u64,
}

impl HttpConn {
    /// A connection to `addr`, opened on the first request.
    pub(crate) fn new(addr: SocketAddr) -> HttpConn {
        HttpConn {
            addr,
            stream: None,
            rb: ReadBuf::new(8192),
            body: Vec::with_capacity(1024),
            connects: 0,
        }
    }

    /// Sends a complete request (head and body) and reads the response into
    /// [`HttpConn::body`]; returns the status. A kept-alive connection the server closed
    /// in the meantime is reopened once.
    pub(crate) async fn request(&mut self, request: &[u8]) -> io::Result<u16> {
        let reused = self.stream.is_some();
        match self.try_request(request).await {
            Ok(status) => Ok(status),
            Err(e) if reused && is_stale(&e) => {
                self.stream = None;
                self.try_request(request)
                    .await
                    .inspect_err(|_| self.stream = None)
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    async fn try_request(&mut self, request: &[u8]) -> io::Result<u16> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.rb.clear();
            self.connects += 1;
        }
        let stream = self.stream.as_mut().expect("connected above");
        stream.write_all(request).await?;
        let end = loop {
            if let Some(end) = head_end(self.rb.data()) {
                break end;
            }
            if self.rb.data().len() > 64 * 1024 {
                return Err(io::Error::other("response head too large"));
            }
            self.rb.fill(stream).await?;
        };
        let head = &self.rb.data()[..end];
        let status = status_code(head)
            .ok_or_else(|| io::Error::other(format!("bad response {:?}", first_line(head))))?;
        let (length, chunked, close) = framing(head);
        self.rb.consume(end);
        self.body.clear();
        if chunked {
            loop {
                let line_end = loop {
                    if let Some(p) = self.rb.data().windows(2).position(|w| w == b"\r\n") {
                        break p;
                    }
                    self.rb.fill(stream).await?;
                };
                let size = chunk_size(&self.rb.data()[..line_end])?;
                self.rb.consume(line_end + 2);
                if size == 0 {
                    // No trailers are expected: the final CRLF.
                    while self.rb.data().len() < 2 {
                        self.rb.fill(stream).await?;
                    }
                    self.rb.consume(2);
                    break;
                }
                while self.rb.data().len() < size + 2 {
                    self.rb.fill(stream).await?;
                }
                self.body.extend_from_slice(&self.rb.data()[..size]);
                self.rb.consume(size + 2);
            }
        } else if let Some(n) = length {
            while self.rb.data().len() < n {
                self.rb.fill(stream).await?;
            }
            self.body.extend_from_slice(&self.rb.data()[..n]);
            self.rb.consume(n);
        } else {
            // Delimited by the end of the connection.
            loop {
                self.body.extend_from_slice(self.rb.data());
                let n = self.rb.data().len();
                self.rb.consume(n);
                match self.rb.fill(stream).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            self.stream = None;
            return Ok(status);
        }
        if close {
            self.stream = None;
        }
        Ok(status)
    }

    /// Takes the underlying stream (to turn it into something else), if connected.
    pub(crate) fn close(&mut self) {
        self.stream = None;
    }
}

fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

/// (Content-Length, chunked, Connection: close) of a response head.
fn framing(head: &[u8]) -> (Option<usize>, bool, bool) {
    let (mut length, mut chunked, mut close) = (None, false, false);
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            length = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value.eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            close = value.eq_ignore_ascii_case(b"close");
        }
    }
    (length, chunked, close)
}

fn chunk_size(line: &[u8]) -> io::Result<usize> {
    let hex = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    std::str::from_utf8(hex)
        .ok()
        .and_then(|h| usize::from_str_radix(h, 16).ok())
        .ok_or_else(|| io::Error::other("bad chunk size"))
}

/// A complete GET request.
pub(crate) fn get_request(target: &Target, uri: &str) -> Vec<u8> {
    format!("GET {uri} HTTP/1.1\r\nHost: {}\r\n\r\n", target.host).into_bytes()
}

/// A complete POST request with a text body.
pub(crate) fn post_request(target: &Target, uri: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {uri} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Content-Length: {}\r\n\r\n",
        target.host,
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Standard base64 with padding (binary messages in polling payloads).
pub(crate) fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The test message of `size` bytes: letters for text, a byte ramp for binary.
pub(crate) fn test_payload(size: usize, binary: bool) -> Vec<u8> {
    if binary {
        (0..size).map(|i| i as u8).collect()
    } else {
        (0..size).map(|i| b'a' + (i % 26) as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_parser() {
        for n in [0usize, 5, 125, 126, 65535, 65536] {
            let payload = vec![7u8; n];
            let f = frame(OP_BINARY, &payload);
            let parsed = parse_frame(&f).unwrap();
            assert_eq!(
                (parsed.op, parsed.len, parsed.total()),
                (OP_BINARY, n, f.len())
            );
            assert!(parse_frame(&f[..f.len() - 1]).is_none() || n == 0);
        }
    }

    #[test]
    fn open_packet() {
        let o = parse_open(
            br#"0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}"#,
        )
        .unwrap();
        assert_eq!(o.sid, "abc");
        assert_eq!(o.ping_interval, Duration::from_secs(25));
    }

    #[test]
    fn response_framing() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nConnection: keep-alive\r\n\r\n";
        assert_eq!(status_code(head), Some(200));
        assert_eq!(framing(head), (Some(2), false, false));
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nconnection: close\r\n\r\n";
        assert_eq!(framing(head), (None, true, true));
    }

    #[test]
    fn base64_matches_the_rfc() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[1, 2, 3, 4]), "AQIDBA==");
    }
}
