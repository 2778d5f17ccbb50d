//! Graceful shutdown: which requests are in flight, and cutting them short when
//! the grace period is over.
//!
//! [`track`] is the outermost middleware of a running [`Application`](crate::Application): it
//! registers every request until its response body has been sent (or dropped), so the server
//! can tell what is still running when it is asked to stop, and what it had to cut short.
//! [`InFlight::cut_short`] makes every handler still running answer 503 `shutting_down` at
//! once: its future is dropped, and with it anything it held, an import's open transaction
//! included (dropping a store `ImportWriter` rolls it back).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

/// A request in flight.
#[derive(Debug, Clone)]
pub struct Running {
    /// Its method.
    pub method: Method,
    /// Its path (no query).
    pub path: String,
    /// How long it has been running.
    pub elapsed: Duration,
}

impl Running {
    /// Whether this is a survey import (`POST /api/imports`), which holds a write transaction.
    pub fn is_import(&self) -> bool {
        self.method == Method::POST && self.path == "/api/imports"
    }
}

impl std::fmt::Display for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({:.1} s)", self.method, self.path, self.elapsed.as_secs_f64())
    }
}

/// The requests in flight, and the switch that cuts them short.
#[derive(Debug)]
pub struct InFlight {
    next: AtomicU64,
    running: Mutex<BTreeMap<u64, (Method, String, Instant)>>,
    cancel: watch::Sender<bool>,
}

impl Default for InFlight {
    fn default() -> Self {
        Self { next: AtomicU64::new(0), running: Mutex::new(BTreeMap::new()), cancel: watch::channel(false).0 }
    }
}

impl InFlight {
    /// The requests in flight now, oldest first.
    pub fn running(&self) -> Vec<Running> {
        let now = Instant::now();
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running
            .values()
            .map(|(method, path, started)| Running {
                method: method.clone(),
                path: path.clone(),
                elapsed: now.saturating_duration_since(*started),
            })
            .collect()
    }

    /// Number of requests in flight.
    pub fn len(&self) -> usize {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether no request is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes every handler still running answer 503 at once (its future is dropped), and
    /// every later one too. Returns what was running. Response bodies already being sent
    /// are not interrupted here: their connections close when the runtime stops.
    pub fn cut_short(&self) -> Vec<Running> {
        let running = self.running();
        self.cancel.send_replace(true);
        running
    }

    fn enter(self: &Arc<Self>, method: &Method, path: &str) -> Guard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.insert(id, (method.clone(), path.to_owned(), Instant::now()));
        Guard { inflight: self.clone(), id }
    }
}

/// Removes its request from [`InFlight`] when dropped.
#[derive(Debug)]
struct Guard {
    inflight: Arc<InFlight>,
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.inflight.running.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

/// A response body that keeps its request registered until it is sent or dropped.
struct Tracked {
    inner: Body,
    _guard: Guard,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware (outermost): registers the request in [`InFlight`] until its body is done, and
/// answers 503 `shutting_down` instead of the handler's answer once [`InFlight::cut_short`]
/// has been called.
pub async fn track(State(inflight): State<Arc<InFlight>>, req: Request, next: Next) -> Response {
    let guard = inflight.enter(req.method(), req.uri().path());
    let mut cancelled = inflight.cancel.subscribe();
    let response = tokio::select! {
        response = next.run(req) => response,
        _ = cancelled.wait_for(|c| *c) => shutting_down(),
    };
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::new(Tracked { inner: body, _guard: guard }))
}

/// The answer of a request cut short by the shutdown.
fn shutting_down() -> Response {
    let body = serde_json::json!({ "error": {
        "code": "shutting_down",
        "message": "the server is shutting down and cut this request short; nothing it was writing was \
                    acknowledged (an import is rolled back unless its commit had begun): retry it on a running server",
    }});
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt as _;

    fn app(inflight: Arc<InFlight>) -> Router {
        Router::new()
            .route("/slow", get(|| async { std::future::pending::<&str>().await }))
            .route("/fast", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(inflight, track))
    }

    #[tokio::test]
    async fn requests_are_registered_until_their_body_is_done_and_cut_short_on_demand() {
        let inflight = Arc::new(InFlight::default());
        let response = app(inflight.clone()).oneshot(Request::get("/fast").body(Body::empty()).unwrap()).await;
        let response = response.unwrap();
        assert_eq!(inflight.len(), 1, "the body is not sent yet");
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"ok");
        assert!(inflight.running().is_empty());
        // Cut short: later requests too are answered 503 at once.
        let other = Arc::new(InFlight::default());
        other.cut_short();
        let response = app(other.clone()).oneshot(Request::get("/slow").body(Body::empty()).unwrap()).await;
        assert_eq!(response.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(other.is_empty());
        assert!(inflight.is_empty());

        let slow = tokio::spawn(app(inflight.clone()).oneshot(Request::get("/slow").body(Body::empty()).unwrap()));
        while inflight.is_empty() {
            tokio::task::yield_now().await;
        }
        let running = inflight.running();
        assert_eq!(running.len(), 1);
        assert_eq!((running[0].method.clone(), running[0].path.as_str()), (Method::GET, "/slow"));
        assert!(!running[0].is_import());
        assert_eq!(inflight.cut_short().len(), 1);
        let response = slow.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        drop(response);
        assert!(inflight.is_empty());
    }
}
