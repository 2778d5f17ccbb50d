//! Service hygiene: body limits, timeouts, rate limits, CORS for public reads,
//! and JSON bodies for every error, whoever produced it.
//!
//! [`layers`] puts them around the router, outermost first:
//!
//! 1. [`json_errors`]: rewrites plain-text or empty 4xx/5xx responses (axum's
//!    extractor rejections, 405s) into `{"error":{"code","message"}}`, keeping the status;
//! 2. [`metrics::track`](crate::metrics::track): sees every final status, 429s and timeouts included;
//! 3. [`public_cors`]: `Access-Control-Allow-Origin: *` on GET and HEAD, preflights for GET only;
//! 4. [`rate_limit`]: per-client token bucket for requests without `Authorization`, and
//!    429 to tokens from clients [`AuthFailures`] blocks;
//! 5. [`timeout`]: 503 when a handler takes too long;
//! 6. [`decode_body`]: `Content-Encoding: gzip` request bodies decoded as they are read, 415 for
//!    any other coding;
//! 7. `DefaultBodyLimit`: [`Hygiene::max_body_bytes`] unless a route sets its own; it counts the
//!    decoded bytes.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::convert::Infallible;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::metrics::{Limit, Metrics};

/// Limits of the service; [`Default`] gives the production values.
#[derive(Debug, Clone)]
pub struct Hygiene {
    /// Largest request body of routes that set no limit of their own (JSON writes):
    /// 1 MiB. Uploads set theirs per route.
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered 503 `timeout`: 30 s (zero: no limit).
    pub request_timeout: Duration,
    /// Longest a request to one of [`Hygiene::long_routes`] may take: 1 hour (zero: no limit).
    pub long_request_timeout: Duration,
    /// Route templates (as in [`crate::ROUTES`]) allowed [`Hygiene::long_request_timeout`]:
    /// uploads and exports, whose time grows with their size.
    pub long_routes: Vec<String>,
    /// Requests per minute each client may make without an `Authorization` header,
    /// on average: 600 (0: no limit).
    pub rate_per_minute: u32,
    /// Requests such a client may make at once before the average applies: 120.
    pub rate_burst: u32,
    /// Failed authentications per minute each client may make before [`AuthFailures::check`]
    /// refuses it: 10 (0: no limit).
    pub auth_failures_per_minute: u32,
    /// Take the client's address from the first `X-Forwarded-For` entry: only behind a
    /// proxy that sets it (default false; anyone can send the header).
    pub trust_forwarded_for: bool,
    /// Most clients each limiter remembers; the longest idle are forgotten first: 100,000.
    pub max_clients: usize,
    /// Largest survey upload (`POST /api/imports`), counted after any `Content-Encoding`
    /// is decoded: 2 GiB (a 1,000,000-tree CSV is about 85 MB).
    pub max_import_bytes: usize,
}

impl Default for Hygiene {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            long_request_timeout: Duration::from_secs(3600),
            long_routes: ["/api/imports", "/api/trees/{id}/photos", "/api/export"].map(String::from).to_vec(),
            rate_per_minute: 600,
            rate_burst: 120,
            auth_failures_per_minute: 10,
            trust_forwarded_for: false,
            max_clients: 100_000,
            max_import_bytes: crate::routes::imports::MAX_UPLOAD_BYTES,
        }
    }
}

/// Paths never rate limited: a load balancer's health check must not see 429.
const UNLIMITED_PATHS: &[&str] = &["/healthz"];

/// Path prefixes outside the public limit: map tiles and the map page's own
/// files. One map view asks for dozens of tiles at once and hundreds while
/// panning; tiles come from memory (a cached tile costs microseconds, an
/// uncached one under a millisecond at p99), so a per-request limit made for
/// searches would only break the map.
const UNLIMITED_PREFIXES: &[&str] = &["/tiles/", "/map/"];

/// The address that stands for every client when the peer is unknown (no `ConnectInfo`,
/// as in tests driving the router with `oneshot`): all such requests share one bucket.
pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The client's address, as [`rate_limit`] determined it (a request extension, also
/// an extractor): the first `X-Forwarded-For` entry when [`Hygiene::trust_forwarded_for`],
/// else the peer address, else [`UNKNOWN_CLIENT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<ClientIp>().copied().unwrap_or_else(|| {
            ClientIp(client_ip(&parts.headers, &parts.extensions, state.hygiene.trust_forwarded_for))
        }))
    }
}

/// The client's address from a request's headers and extensions (see [`ClientIp`]).
pub fn client_ip(headers: &HeaderMap, extensions: &Extensions, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for {
        let first = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .and_then(|v| v.parse::<IpAddr>().ok().or_else(|| v.parse::<SocketAddr>().ok().map(|s| s.ip())));
        if let Some(ip) = first {
            return ip;
        }
    }
    extensions.get::<ConnectInfo<SocketAddr>>().map_or(UNKNOWN_CLIENT, |ConnectInfo(addr)| addr.ip())
}

/// The key a client is limited by: IPv4 addresses alone, IPv6 by their /64 network
/// (one subscriber's whole allocation; counting single IPv6 addresses would let
/// anyone rotate through 2^64 of them).
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !0xffff_ffff_ffff_ffff)),
        v4 => v4,
    }
}

const SHARDS: usize = 16;
/// How often a shard drops the buckets that have refilled (idle clients).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug)]
struct Shard {
    map: HashMap<IpAddr, Bucket>,
    swept: Instant,
}

/// Token buckets per client key, in shards (one mutex each) of bounded size.
#[derive(Debug)]
struct Buckets {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    per_second: f64,
    burst: f64,
    cap_per_shard: usize,
}

impl Buckets {
    fn new(per_minute: u32, burst: u32, max_clients: usize) -> Self {
        let now = Instant::now();
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard { map: HashMap::new(), swept: now })).collect(),
            hasher: RandomState::new(),
            per_second: f64::from(per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
            cap_per_shard: (max_clients / SHARDS).max(1),
        }
    }

    fn shard(&self, key: IpAddr) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        self.shards[i].lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.last = now;
    }

    /// Time until the bucket has one token again.
    fn wait(&self, bucket: &Bucket) -> Duration {
        Duration::from_secs_f64(((1.0 - bucket.tokens) / self.per_second).clamp(0.0, 86_400.0))
    }

    fn is_idle(&self, bucket: &Bucket, now: Instant) -> bool {
        bucket.tokens + now.saturating_duration_since(bucket.last).as_secs_f64() * self.per_second >= self.burst
    }

    /// The bucket of `key`, created full; makes room (idle first, then the longest
    /// unused) when the shard is full, and sweeps idle buckets now and then.
    fn bucket<'a>(&self, shard: &'a mut Shard, key: IpAddr, now: Instant) -> &'a mut Bucket {
        if now.saturating_duration_since(shard.swept) >= SWEEP_EVERY {
            shard.map.retain(|_, b| !self.is_idle(b, now));
            shard.swept = now;
        }
        if !shard.map.contains_key(&key) && shard.map.len() >= self.cap_per_shard {
            shard.map.retain(|_, b| !self.is_idle(b, now));
            if shard.map.len() >= self.cap_per_shard {
                // Forget the longest unused eighth at once, so that a flood of new
                // addresses costs one scan per many insertions.
                let mut by_age: Vec<(Instant, IpAddr)> = shard.map.iter().map(|(k, b)| (b.last, *k)).collect();
                let n = (by_age.len() / 8).max(1);
                by_age.select_nth_unstable_by_key(n - 1, |(last, _)| *last);
                for (_, k) in &by_age[..n] {
                    shard.map.remove(k);
                }
            }
        }
        shard.map.entry(key).or_insert(Bucket { tokens: self.burst, last: now })
    }

    /// Takes a token, or tells how long until there is one.
    fn take(&self, key: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut shard = self.shard(key);
        let bucket = self.bucket(&mut shard, key, now);
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.wait(bucket))
        }
    }

    /// Whether a token is there, without taking it.
    fn peek(&self, key: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut shard = self.shard(key);
        let Some(bucket) = shard.map.get_mut(&key) else { return Ok(()) };
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 { Ok(()) } else { Err(self.wait(bucket)) }
    }

    /// Takes a token if there is one.
    fn drain(&self, key: IpAddr, now: Instant) {
        let mut shard = self.shard(key);
        let bucket = self.bucket(&mut shard, key, now);
        self.refill(bucket, now);
        bucket.tokens = (bucket.tokens - 1.0).max(0.0);
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).map.len()).sum()
    }
}

/// The limit on requests without an `Authorization` header: a token bucket per client
/// ([`Hygiene::rate_per_minute`], [`Hygiene::rate_burst`]).
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Option<Buckets>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests a minute on average and `burst` at once
    /// per client, remembering at most about `max_clients` clients. `per_minute` 0: no limit.
    pub fn new(per_minute: u32, burst: u32, max_clients: usize) -> Self {
        Self { buckets: (per_minute > 0).then(|| Buckets::new(per_minute, burst, max_clients)) }
    }

    /// Counts one request of `ip`; `Err` tells how long it must wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.buckets.as_ref().map_or(Ok(()), |b| b.take(limit_key(ip), Instant::now()))
    }

    /// Number of clients remembered now.
    pub fn tracked(&self) -> usize {
        self.buckets.as_ref().map_or(0, Buckets::len)
    }
}

/// The limit on failed authentications per client ([`Hygiene::auth_failures_per_minute`],
/// which is also the burst): call [`AuthFailures::check`] before looking a token up and
/// [`AuthFailures::record_failure`] when it is bad, unknown or revoked.
#[derive(Debug)]
pub struct AuthFailures {
    buckets: Option<Buckets>,
    metrics: Arc<Metrics>,
}

impl AuthFailures {
    /// A limiter allowing `per_minute` failures a minute per client (all of them at once),
    /// remembering at most about `max_clients` clients; counts into `metrics`. 0: no limit.
    pub fn new(per_minute: u32, max_clients: usize, metrics: Arc<Metrics>) -> Self {
        Self { buckets: (per_minute > 0).then(|| Buckets::new(per_minute, per_minute, max_clients)), metrics }
    }

    /// `Err(wait)` when `ip` failed too often: answer 429 with `Retry-After` (see
    /// [`too_many_requests`]) without checking its token. Counts refusals in
    /// `orchardmap_rate_limited_total{limit="auth_failures"}`.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let verdict = self.buckets.as_ref().map_or(Ok(()), |b| b.peek(limit_key(ip), Instant::now()));
        if verdict.is_err() {
            self.metrics.rate_limited(Limit::AuthFailures);
        }
        verdict
    }

    /// Records a failed authentication of `ip` (and counts it in `orchardmap_auth_failures_total`).
    pub fn record_failure(&self, ip: IpAddr) {
        self.metrics.auth_failure();
        if let Some(b) = &self.buckets {
            b.drain(limit_key(ip), Instant::now());
        }
    }
}

/// An error response in the API's shape, `{"error":{"code","message"}}`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

/// 429 `rate_limited` with `Retry-After` in whole seconds (at least 1).
pub fn too_many_requests(wait: Duration, message: &str) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// Middleware: records the [`ClientIp`] of every request, and answers 429 to clients
/// without an `Authorization` header that exceed the public rate ([`Hygiene::rate_per_minute`]).
/// Requests with `Authorization` are not counted; they get 429 only while their client is
/// blocked by [`AuthFailures`] (too many bad tokens), before any token lookup.
///
/// The public limit trusts the mere presence of `Authorization`: that holds only as long
/// as every route answers a bad token with 401 and records it with
/// [`AuthFailures::record_failure`].
pub async fn rate_limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let ip = client_ip(req.headers(), req.extensions(), state.hygiene.trust_forwarded_for);
    req.extensions_mut().insert(ClientIp(ip));
    if req.headers().contains_key(header::AUTHORIZATION) {
        if let Err(wait) = state.auth_failures.check(ip) {
            tracing::debug!(%ip, ?wait, "too many failed authentications");
            return too_many_requests(wait, "too many failed authentications from your address; try again later");
        }
        return next.run(req).await;
    }
    let path = req.uri().path();
    if UNLIMITED_PATHS.contains(&path) || UNLIMITED_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return next.run(req).await;
    }
    match state.rate_limiter.check(ip) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            state.metrics.rate_limited(Limit::Public);
            tracing::debug!(%ip, ?wait, "rate limited");
            too_many_requests(
                wait,
                &format!(
                    "too many requests from your address without an API token (limit {} a minute); \
                     try again later or send an Authorization header",
                    state.hygiene.rate_per_minute
                ),
            )
        }
    }
}

/// Middleware: answers 503 `timeout` when the handler has not answered within
/// [`Hygiene::request_timeout`] ([`Hygiene::long_request_timeout`] for [`Hygiene::long_routes`]).
pub async fn timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let hygiene = &state.hygiene;
    let long =
        req.extensions().get::<MatchedPath>().is_some_and(|p| hygiene.long_routes.iter().any(|r| r == p.as_str()));
    let limit = if long { hygiene.long_request_timeout } else { hygiene.request_timeout };
    if limit.is_zero() {
        return next.run(req).await;
    }
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%method, %path, ?limit, "request timed out");
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                &format!("the request took longer than {} s; try again, or ask for less", limit.as_secs_f64()),
            )
        }
    }
}

/// Most bytes of a gzip header (its optional name, comment and extra field) read before the
/// body is refused: the header is kept in memory while it is parsed.
const MAX_GZIP_HEADER: usize = 64 * 1024;

/// Why a `Content-Encoding: gzip` request body could not be decoded (the body stream's error,
/// seen by the handler reading it).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BodyDecodeError {
    /// The compressed body is larger than any upload may be.
    pub too_large: bool,
    message: String,
}

impl BodyDecodeError {
    fn corrupt(why: impl std::fmt::Display) -> Self {
        Self { too_large: false, message: format!("the gzip-encoded body cannot be decoded: {why}") }
    }
}

/// Middleware: the `Content-Encoding` of request bodies. None or `identity`: the body as
/// sent. `gzip` (or `x-gzip`): the body is decoded chunk by chunk as the handler reads it
/// (a few tens of KiB at a time, never the whole body), so a route's body limit applies
/// to the decoded bytes and a small body that inflates to gigabytes is refused with 413
/// after at most the limit; `Content-Length` and `Content-Encoding` are removed.
/// Any other coding (`br`, `deflate`, `compress`, a chain of several): 415.
pub async fn decode_body(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let mut codings = Vec::new();
    for value in req.headers().get_all(header::CONTENT_ENCODING) {
        let Ok(value) = value.to_str() else {
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the Content-Encoding header is not readable text",
            );
        };
        codings.extend(
            value.split(',').map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty() && c != "identity"),
        );
    }
    match codings.as_slice() {
        [] => next.run(req).await,
        [coding] if coding == "gzip" || coding == "x-gzip" => {
            req.headers_mut().remove(header::CONTENT_ENCODING);
            req.headers_mut().remove(header::CONTENT_LENGTH);
            // Bounds the compressed bytes too (a stream of empty blocks decodes to nothing).
            let cap = state.hygiene.max_import_bytes.max(state.hygiene.max_body_bytes) as u64;
            let body = std::mem::take(req.body_mut());
            *req.body_mut() = Body::from_stream(gunzip(body, cap));
            next.run(req).await
        }
        _ => error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            &format!(
                "Content-Encoding {:?} is not accepted: send the body as it is, or gzip-compressed",
                codings.join(", ")
            ),
        ),
    }
}

/// A gzip body being decoded (see [`gunzip`]).
struct Gunzip {
    input: axum::body::BodyDataStream,
    /// Compressed bytes received and not yet given to the decoder.
    pending: axum::body::Bytes,
    /// Writes what it decodes into its `Vec`, at most 32 KiB per `write`.
    decoder: flate2::write::GzDecoder<Vec<u8>>,
    /// Compressed bytes read so far, and the most allowed.
    read: u64,
    cap: u64,
    /// Bytes of the current member's header given to the decoder.
    header_bytes: usize,
    /// Decoded bytes handed out since the reader last saw "not ready".
    since_pause: usize,
    ended: bool,
}

/// Decoded bytes handed out before the stream pauses once. A reader such as the multipart
/// parser takes chunks for as long as they are ready: without a pause, a small body that
/// inflates a thousandfold would be taken whole into its buffer before it handles any.
const PAUSE_EVERY: usize = 256 * 1024;

impl Gunzip {
    /// The next piece of decoded body; `None` at its end.
    async fn next_chunk(&mut self) -> Result<Option<axum::body::Bytes>, BodyDecodeError> {
        use futures_util::StreamExt as _;
        use std::io::Write as _;
        loop {
            let out = std::mem::take(self.decoder.get_mut());
            if !out.is_empty() {
                self.since_pause += out.len();
                if self.since_pause >= PAUSE_EVERY {
                    self.since_pause = 0;
                    tokio::task::yield_now().await;
                }
                return Ok(Some(out.into()));
            }
            if self.ended {
                return Ok(None);
            }
            if self.pending.is_empty() {
                match self.input.next().await {
                    Some(Ok(chunk)) => {
                        self.read += chunk.len() as u64;
                        if self.read > self.cap {
                            return Err(BodyDecodeError {
                                too_large: true,
                                message: format!("the gzip-encoded body is larger than {} bytes", self.cap),
                            });
                        }
                        self.pending = chunk;
                    }
                    Some(Err(e)) => return Err(BodyDecodeError::corrupt(format!("the body broke off: {e}"))),
                    None => {
                        // Writes out what is left and checks the length and CRC of the last member.
                        self.decoder.try_finish().map_err(BodyDecodeError::corrupt)?;
                        self.ended = true;
                    }
                }
                continue;
            }
            let in_header = self.decoder.header().is_none();
            let step = self.pending.len().min(64 * 1024);
            let n = self.decoder.write(&self.pending[..step]).map_err(BodyDecodeError::corrupt)?;
            if in_header {
                self.header_bytes += n;
                if self.decoder.header().is_none() && self.header_bytes > MAX_GZIP_HEADER {
                    return Err(BodyDecodeError::corrupt(format!("a gzip header longer than {MAX_GZIP_HEADER} bytes")));
                }
            }
            if n == 0 {
                // The member is complete and more bytes follow: another member (RFC 1952, 2.2).
                self.decoder.try_finish().map_err(BodyDecodeError::corrupt)?;
                let out = std::mem::take(self.decoder.get_mut());
                self.decoder = flate2::write::GzDecoder::new(Vec::new());
                self.header_bytes = 0;
                if !out.is_empty() {
                    return Ok(Some(out.into()));
                }
                continue;
            }
            let _ = self.pending.split_to(n);
        }
    }
}

/// The decoded bytes of a gzip `body` (one or more members), as a stream of chunks; an
/// error (corrupt data, more than `cap` compressed bytes) ends it.
fn gunzip(
    body: Body,
    cap: u64,
) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, BodyDecodeError>> + Send + 'static {
    let state = Gunzip {
        input: body.into_data_stream(),
        pending: axum::body::Bytes::new(),
        decoder: flate2::write::GzDecoder::new(Vec::new()),
        read: 0,
        cap,
        header_bytes: 0,
        since_pause: 0,
        ended: false,
    };
    futures_util::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        match state.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(state))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// Headers a cross-origin reader may send.
const CORS_ALLOW_HEADERS: &str = "if-none-match, accept, accept-language";
/// Response headers a cross-origin reader may see besides the safelisted ones.
const CORS_EXPOSE_HEADERS: &str = "etag, link, retry-after, content-disposition";

/// Middleware: CORS for public reads only. GET and HEAD responses carry
/// `Access-Control-Allow-Origin: *`; a preflight asking for GET or HEAD is answered
/// 204 here; any other request (a preflight for PATCH, POST, DELETE, ...) gets no CORS
/// header at all, so browsers refuse cross-origin writes (the preflight itself reaches
/// the router, which answers 405).
///
/// Hand-written rather than `tower_http::cors::CorsLayer`: that layer answers *every*
/// OPTIONS request itself, a PATCH preflight included, with `Access-Control-Allow-Origin`.
pub async fn public_cors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if method == Method::OPTIONS && req.headers().contains_key(header::ORIGIN) {
        let asked = req.headers().get(header::ACCESS_CONTROL_REQUEST_METHOD);
        if asked.is_some_and(|m| m == "GET" || m == "HEAD") {
            let mut response = StatusCode::NO_CONTENT.into_response();
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD"));
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(CORS_ALLOW_HEADERS));
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
            return response;
        }
    }
    let mut response = next.run(req).await;
    if method == Method::GET || method == Method::HEAD {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(CORS_EXPOSE_HEADERS));
    }
    response
}

/// Largest error body [`json_errors`] reads to use as the message.
const MAX_ERROR_TEXT: usize = 16 * 1024;

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        let essence = v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        essence == "application/json" || essence.ends_with("+json")
    })
}

/// An HTML page made for people (the resolver's "unknown code" pages): kept as it is.
fn is_page(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"))
}

fn error_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        408 => "timeout",
        409 => "conflict",
        411 => "length_required",
        413 => "too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        422 => "invalid",
        429 => "rate_limited",
        431 => "headers_too_large",
        501 => "not_implemented",
        503 => "unavailable",
        504 => "timeout",
        s if s >= 500 => "internal",
        _ => "bad_request",
    }
}

/// Middleware: every 4xx/5xx response that is not JSON already, nor an HTML page (axum's plain-text
/// extractor rejections: 400, 413, 415, 422; its empty 405; a 408) becomes
/// `{"error":{"code","message"}}` with the same status and headers. 4xx messages keep
/// the original text; 5xx messages are opaque and the text is logged.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || is_json(response.headers())
        || is_page(response.headers())
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_ERROR_TEXT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let reason = status.canonical_reason().unwrap_or("error").to_ascii_lowercase();
    let message = if status.is_server_error() {
        if !text.is_empty() {
            tracing::error!(%status, cause = %text, "request failed");
        }
        reason
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        // axum adds `Allow` outside every layer, after this runs: name it rather than copy it.
        match parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()) {
            Some(allowed) => format!("{method} is not allowed here; allowed: {allowed}"),
            None => format!("{method} is not allowed here; the Allow header lists the methods that are"),
        }
    } else if text.is_empty() {
        reason
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::json!({ "error": { "code": error_code(status), "message": message } });
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// Puts every hygiene layer around `router` (all its routes and its fallback), in the
/// order given in the [module documentation](self). Add the routes first: a layer
/// covers only the routes already there.
pub fn layers(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    router
        .layer(DefaultBodyLimit::max(state.hygiene.max_body_bytes))
        .layer(from_fn_with_state(state.clone(), decode_body))
        .layer(from_fn_with_state(state.clone(), timeout))
        .layer(from_fn_with_state(state.clone(), rate_limit))
        .layer(from_fn(public_cors))
        .layer(from_fn_with_state(state.metrics.clone(), crate::metrics::track))
        .layer(from_fn(json_errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn bucket_allows_the_burst_then_refills_at_the_rate() {
        let b = Buckets::new(60, 3, 1000);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(b.take(A, t0).is_ok());
        }
        let wait = b.take(A, t0).err();
        assert_eq!(wait, Some(Duration::from_secs(1)));
        assert!(b.take(B, t0).is_ok(), "other clients have their own bucket");
        assert!(b.take(A, t0 + Duration::from_millis(500)).is_err());
        assert!(b.take(A, t0 + Duration::from_millis(1500)).is_ok());
    }

    #[test]
    fn memory_stays_bounded() {
        let b = Buckets::new(60, 10, SHARDS * 8);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let _ = b.take(IpAddr::V4(Ipv4Addr::from(i)), t0 + Duration::from_micros(u64::from(i)));
        }
        assert!(b.len() <= SHARDS * 8, "{}", b.len());
        // Idle buckets are swept.
        let later = t0 + SWEEP_EVERY + Duration::from_secs(60);
        let _ = b.take(A, later);
        assert!(b.len() < SHARDS * 8);
    }

    #[test]
    fn auth_failures_block_after_the_allowance() {
        let f = AuthFailures::new(2, 100, Arc::new(Metrics::new()));
        assert!(f.check(A).is_ok());
        f.record_failure(A);
        assert!(f.check(A).is_ok());
        f.record_failure(A);
        let wait = f.check(A).err().unwrap_or_default();
        assert!(wait > Duration::from_secs(20) && wait <= Duration::from_secs(30), "{wait:?}");
        assert!(f.check(B).is_ok());
        assert!(AuthFailures::new(0, 100, Arc::new(Metrics::new())).check(A).is_ok());
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap_or(A);
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap_or(B);
        assert_eq!(limit_key(a), limit_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap_or(B);
        assert_eq!(limit_key(mapped), A);
    }

    #[test]
    fn forwarded_for_is_used_only_when_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.7, 10.0.0.1"));
        let mut ext = Extensions::new();
        ext.insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 4000))));
        assert_eq!(client_ip(&headers, &ext, true), IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)));
        assert_eq!(client_ip(&headers, &ext, false), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(client_ip(&HeaderMap::new(), &Extensions::new(), true), UNKNOWN_CLIENT);
    }
}
