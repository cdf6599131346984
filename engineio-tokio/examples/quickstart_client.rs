//! python-engineio's quickstart client, in Rust: prints the connection, each message and
//! the disconnection, and answers every message with `{"response": "my response"}`.
//!
//! ```sh
//! cargo run -p engineio-tokio --example quickstart_server &
//! cargo run -p engineio-tokio --example quickstart_client -- http://127.0.0.1:5000
//! ```
//!
//! Two additions make a run end on its own: the client says hello when it connects (the
//! python pair only answers each other, so something must start the exchange), and it
//! disconnects after `MESSAGES` messages (default 5).
use engineio_tokio::{ClientHandler, ClientSender, CloseReason, Handshake, Message};

struct Quickstart {
    received: usize,
    limit: usize,
}

impl ClientHandler for Quickstart {
    fn on_open(&mut self, sender: &ClientSender, handshake: &Handshake) {
        println!("connection established ({})", handshake.sid);
        let _ = sender.send("hello");
    }

    fn on_message(&mut self, sender: &ClientSender, message: Message) {
        println!("message received with {message:?}");
        self.received += 1;
        if self.received >= self.limit {
            sender.close();
        } else {
            let _ = sender.send_json(&serde_json::json!({"response": "my response"}));
        }
    }

    fn on_disconnect(&mut self, reason: &CloseReason) {
        println!("disconnected from server ({reason})");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:5000".into());
    let limit = std::env::var("MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let mut client = engineio_tokio::connect(&url).await?;
    client.run(Quickstart { received: 0, limit }).await; // python's eio.wait()
    Ok(())
}
