//! A client: connects (polling, then upgrade to WebSocket), sends a few messages to an
//! echo server, prints what comes back and the events, then disconnects.
//!
//! ```sh
//! cargo run -p engineio-tokio --example echo &        # a server on 127.0.0.1:3000
//! cargo run -p engineio-tokio --example client -- http://127.0.0.1:3000
//! ```
use std::time::Duration;

use engineio_tokio::{ClientConfig, ClientEvent, ReconnectConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:3000".into());
    let mut config = ClientConfig::new(&url)?;
    // Come back after a server restart, with backoff and jitter.
    config.reconnect = Some(ReconnectConfig::default());
    let mut client = engineio_tokio::connect_with(config).await?;
    println!(
        "connected: sid {:?}, ping every {:?}",
        client.sid(),
        client.handshake().ping_interval
    );
    client.send("hello")?;
    client.send(vec![1u8, 2, 3])?;
    client.send_json(&serde_json::json!({"event": "greeting", "n": 1}))?;
    let mut received = 0;
    while received < 3 {
        match tokio::time::timeout(Duration::from_secs(5), client.next_event()).await {
            Ok(Some(ClientEvent::Message(m))) => {
                received += 1;
                println!("message: {m:?}");
            }
            Ok(Some(event)) => println!("event: {event:?}"),
            Ok(None) => break,
            Err(_) => {
                println!("no answer within 5 s");
                break;
            }
        }
    }
    println!("transport now {:?}", client.transport());
    let reason = client.disconnect().await;
    println!("closed: {reason:?}");
    Ok(())
}
