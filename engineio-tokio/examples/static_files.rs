//! python-engineio's static-file rules (its "Serving static files" section), each one as
//! a `StaticFiles` rule, served on 127.0.0.1:5000:
//!
//! | python `static_files` | here | try |
//! |---|---|---|
//! | `'/': 'latency.html'` | `.file("/", "www/index.html")` | `curl -i localhost:5000/` |
//! | `'/static/style.css': 'static/style.css'` | `.file("/static/style.css", ...)` | `curl -i localhost:5000/static/style.css` |
//! | `'/public': './public'` (a folder) | `.dir("/public", "www/public")` | `curl -i localhost:5000/public/notes.txt` |
//! | `'': 'image.gif'` (default file of folder URLs) | `.default_file("index.html")` | `curl -i localhost:5000/public/` |
//! | `'': {'filename': 'image.gif', 'content_type': 'text/plain'}` | `.default_file_with_type(...)` | `curl -i localhost:5000/public/` |
//! | `'/data': {'filename': 'data.bin', 'content_type': 'application/x-demo'}` | `.file_with_type(...)` | `curl -i localhost:5000/data` |
//! | `'/raw': {'filename': './public', 'content_type': 'text/plain'}` | `.dir_with_type(...)` | `curl -i localhost:5000/raw/index.html` |
//!
//! ```sh
//! cargo run -p engineio-tokio --example static_files
//! ```
//!
//! Unlike python-engineio, no URL can read outside the folders: `..` in any spelling
//! (`%2e%2e`, backslashes) and symbolic links that lead out get 404
//! (`curl -i --path-as-is 'localhost:5000/public/../static_files.rs'`).
use engineio_tokio::{
    Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Socket, StaticFiles, Tokio,
};

struct Echo;

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, _request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        let _ = socket.send(message);
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let www = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/www");
    let files = StaticFiles::new()
        .file("/", format!("{www}/index.html"))
        .file("/static/style.css", format!("{www}/public/style.css"))
        .dir("/public", format!("{www}/public"))
        .file_with_type(
            "/data",
            format!("{www}/public/notes.txt"),
            "application/x-demo",
        )
        .dir_with_type("/raw", format!("{www}/public"), "text/plain")
        .default_file_with_type("index.html", "text/html; charset=utf-8");
    let config = Config::default().with_static_files(files);
    let engine = EngineIo::new(Tokio, Echo, config).expect("valid configuration");
    let port = std::env::var("PORT").unwrap_or_else(|_| "5000".into());
    let server = engineio_tokio::bind(format!("127.0.0.1:{port}"), engine).await?;
    println!("static files on http://{}/", server.local_addr());
    server.await
}
