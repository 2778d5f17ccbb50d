//! The smallest useful axum server, used as the yardstick in `scripts/load.sh`:
//! one handler returning a short JSON body, same runtime and release profile
//! as `orchardmap serve`.
//!
//! `cargo run --release -p orchardmap-api --example baseline -- 127.0.0.1:18081`
// A panic in a test, bench or example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18081".into());
    let app = Router::new().route("/", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("baseline on http://{addr}/");
    axum::serve(listener, app).await
}
