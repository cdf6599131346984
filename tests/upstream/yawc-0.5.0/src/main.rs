//! yawc 0.5.0, server role: (1) a frame with a reserved opcode is answered with close
//! code 1003 instead of 1002; (2) a close frame with a 126-byte payload (over the
//! 125-byte limit of control frames, RFC 6455 section 5.5) is accepted and echoed.
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yawc::{Options, Role, WebSocket};

/// A masked client frame (FIN set) with `opcode` and `payload`.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Sends `bytes` to a yawc server and returns the first frame it writes back
/// (opcode, payload).
async fn server_reply(bytes: Vec<u8>) -> (u8, Vec<u8>) {
    let (client, server) = tokio::io::duplex(4096);
    let mut ws = WebSocket::from_stream_with_extensions(server, Role::Server, None, Options::default())
        .expect("no extensions");
    let (mut rd, mut wr) = tokio::io::split(client);
    wr.write_all(&bytes).await.unwrap();
    // Drive the server: read frames (yawc writes its close frame on the next poll after
    // an error) until the connection is closed.
    let server = tokio::spawn(async move {
        for _ in 0..4 {
            let r = std::future::poll_fn(|cx| ws.poll_next_frame(cx)).await;
            println!("  server read: {:?}", r.as_ref().map(|f| (f.opcode(), f.payload().len())));
            if matches!(r, Err(yawc::WebSocketError::ConnectionClosed)) {
                break;
            }
        }
    });
    let mut head = [0u8; 2];
    rd.read_exact(&mut head).await.unwrap();
    let mut len = (head[1] & 0x7f) as usize;
    if len == 126 {
        let mut l = [0u8; 2];
        rd.read_exact(&mut l).await.unwrap();
        len = u16::from_be_bytes(l) as usize;
    }
    let mut payload = vec![0u8; len];
    rd.read_exact(&mut payload).await.unwrap();
    drop(wr);
    let _ = server.await;
    (head[0] & 0x0f, payload)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("reserved opcode 3:");
    let (op, p) = server_reply(frame(3, b"")).await;
    let code = u16::from_be_bytes([p[0], p[1]]);
    println!("  reply opcode {op}, close code {code} (RFC 6455 7.4.1 / Autobahn 4.1.1 expect 1002)");

    println!("close frame with a 126-byte payload:");
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend(std::iter::repeat(b'a').take(124));
    let (op, p) = server_reply(frame(8, &close)).await;
    let code = u16::from_be_bytes([p[0], p[1]]);
    println!("  reply opcode {op}, close code {code}, payload {} bytes (Autobahn 7.3.6 expects 1002 or a dropped connection)", p.len());
}
