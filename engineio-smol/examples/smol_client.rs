//! An async client on smol: connects (polling, then upgrade to WebSocket), sends a few
//! messages to an echo server, prints the replies and events, then disconnects.
//!
//! ```sh
//! cargo run -p engineio-smol --example smol_echo &
//! cargo run -p engineio-smol --example smol_client -- http://127.0.0.1:3000
//! ```
use std::time::Duration;

use engineio_smol::{ClientConfig, ClientEvent};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(async {
        let url = std::env::args()
            .nth(1)
            .unwrap_or_else(|| "http://127.0.0.1:3000".into());
        let mut client = engineio_smol::connect_with(ClientConfig::new(&url)?).await?;
        println!("connected: sid {:?}", client.sid());
        client.send("hello")?;
        client.send(vec![1u8, 2, 3])?;
        let mut received = 0;
        while received < 2 {
            let next = smol::future::or(async { client.next_event().await.map(Some) }, async {
                async_io::Timer::after(Duration::from_secs(5)).await;
                Some(None)
            })
            .await;
            match next {
                Some(Some(ClientEvent::Message(m))) => {
                    received += 1;
                    println!("message: {m:?}");
                }
                Some(Some(event)) => println!("event: {event:?}"),
                Some(None) => {
                    println!("no answer within 5 s");
                    break;
                }
                None => break,
            }
        }
        println!("closed: {:?}", client.disconnect().await);
        Ok(())
    })
}
