//! The blocking client: no async code at all in the caller.
//!
//! ```sh
//! cargo run -p engineio-smol --example smol_echo &
//! cargo run -p engineio-smol --example blocking_client -- http://127.0.0.1:3000
//! ```
use std::time::Duration;

use engineio_smol::blocking::Client;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:3000".into());
    let mut client = Client::connect(&url)?;
    println!("connected: sid {:?}", client.sid());
    for i in 0..3 {
        client.send(format!("message {i}"))?;
        match client.recv_timeout(Duration::from_secs(5)) {
            Some(reply) => println!("reply: {reply:?}"),
            None => println!("no reply within 5 s"),
        }
    }
    println!("closed: {:?}", client.disconnect());
    Ok(())
}
