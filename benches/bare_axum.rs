//! The limit for `benches/serve-load.sh`: a bare axum handler that reads the webhook body and
//! answers 202, with no signature check and no storage. What any Rust front door on this machine
//! can do at most; TfPilot's `serve` is measured against it.
//!
//! `bare_axum serve PORT` serves on 127.0.0.1:PORT until killed. Run any other way (as
//! `cargo bench` does, with `--bench`) it says so and exits: there is nothing to time on its own.

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;

async fn accept(body: Bytes) -> StatusCode {
    std::hint::black_box(body);
    StatusCode::ACCEPTED
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = match args.as_slice() {
        [command, port] if command == "serve" => port.parse::<u16>().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("port: {e}"))
        })?,
        _ => {
            println!("bare_axum: run `bare_axum serve PORT` (benches/serve-load.sh does)");
            return Ok(());
        }
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            let app = Router::new().route("/webhooks/github", post(accept));
            axum::serve(listener, app).await
        })
}
