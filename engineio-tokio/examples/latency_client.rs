//! python-engineio's latency client (`examples/client/*/latency_client.py`): sends
//! `ping`, measures the time to the answer, waits a second, and again.
//!
//! ```sh
//! cargo run -p engineio-tokio --example latency &          # the latency server, port 5000
//! cargo run -p engineio-tokio --example latency_client -- http://127.0.0.1:5000
//! ```
//!
//! It stops after `ROUNDS` round trips (default 5; 0 for ever).
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:5000".into());
    let rounds: u64 = std::env::var("ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let mut client = engineio_tokio::connect(&url).await?;
    println!("connected to server");
    let mut round = 0;
    while rounds == 0 || round < rounds {
        let start = Instant::now();
        client.send("ping")?;
        let Some(_pong) = client.recv().await else {
            println!("the server closed the connection");
            break;
        };
        println!(
            "latency is {:.2} ms ({:?})",
            start.elapsed().as_secs_f64() * 1000.0,
            client.transport()
        );
        round += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    client.disconnect().await;
    Ok(())
}
