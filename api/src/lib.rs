//! The orchardmap HTTP API. All HTTP of the project lives in this crate.
//!
//! [`router`] builds the axum router from an [`AppState`] (tests drive it with
//! `tower::ServiceExt::oneshot`); [`Application`] loads the trees, binds the
//! listener (port 0 in tests) and serves until asked to stop.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
mod cache;
mod error;
mod geojson;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod pack;
mod pages;
// Public for the fuzz targets in `fuzz/` (query-string parsing as every route does it).
pub mod params;
mod routes;
pub mod shutdown;
pub mod tilecache;
pub mod trace;

use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use store::Storage;
use tokio::net::TcpListener;

pub use cache::{TreeCache, TreeSet, follow_changes};
pub use error::{AppError, Result};
pub use metrics::Metrics;
pub use middleware::{AuthFailures, ClientIp, Hygiene, RateLimiter};
pub use routes::map::MapSettings;
pub use routes::tiles::{
    Format as TileFormat, MAX_TILE_ZOOM, parse_address as parse_tile_address, render as render_tile,
};
pub use routes::trees::{DEFAULT_LIMIT, MAX_K, MAX_LIMIT, MAX_RADIUS_M};

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Storage>,
    /// Trees in memory with their spatial index.
    pub cache: Arc<TreeCache>,
    /// Where tree photos are kept (`None`: photo uploads are refused).
    pub photos: Option<Arc<store::photos::PhotoStore>>,
    /// Largest photo upload, in bytes.
    pub max_photo_bytes: usize,
    /// Request counts, latencies and the counters handlers update.
    pub metrics: Arc<Metrics>,
    /// Body, time and rate limits (change with [`AppState::with_hygiene`]).
    pub hygiene: Arc<Hygiene>,
    /// The per-client limit on requests without an `Authorization` header.
    pub rate_limiter: Arc<RateLimiter>,
    /// The per-client limit on failed authentications.
    pub auth_failures: Arc<AuthFailures>,
    /// Recently checked tokens (see [`auth::TokenCache`]).
    pub tokens: Arc<auth::TokenCache>,
    /// The map page's basemap and where MapLibre GL JS is served from.
    pub map: Arc<MapSettings>,
    /// Signing keys, public URL and scan counts of the traceability pages.
    pub trace: Arc<trace::Trace>,
}

/// Default largest photo upload: 10 MiB (a phone camera's JPEG is 2-6 MB).
pub const DEFAULT_MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;

impl AppState {
    /// State with defaults for everything but the database and the cache:
    /// no photo folder, default limits ([`Hygiene::default`]), fresh metrics.
    pub fn new(store: Arc<dyn Storage>, cache: Arc<TreeCache>) -> Self {
        let metrics = Arc::new(Metrics::new());
        // Placeholders (limits off), replaced by `with_hygiene`.
        let state = Self {
            store,
            cache,
            photos: None,
            max_photo_bytes: DEFAULT_MAX_PHOTO_BYTES,
            hygiene: Arc::default(),
            rate_limiter: Arc::new(RateLimiter::new(0, 0, 0)),
            auth_failures: Arc::new(AuthFailures::new(0, 0, metrics.clone())),
            tokens: Arc::default(),
            map: Arc::default(),
            trace: Arc::new(trace::Trace::ephemeral(None)),
            metrics,
        };
        state.with_hygiene(Hygiene::default())
    }

    /// The same state with other limits, and new (empty) rate limiters to enforce them.
    pub fn with_hygiene(mut self, hygiene: Hygiene) -> Self {
        self.rate_limiter =
            Arc::new(RateLimiter::new(hygiene.rate_per_minute, hygiene.rate_burst, hygiene.max_clients));
        self.auth_failures =
            Arc::new(AuthFailures::new(hygiene.auth_failures_per_minute, hygiene.max_clients, self.metrics.clone()));
        self.hygiene = Arc::new(hygiene);
        self
    }
}

/// Every route the service serves, as (method, path template in OpenAPI
/// syntax). The router below is checked against it by a test, and so is the
/// OpenAPI document ([`openapi`]): a route missing from either fails the build's tests.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/about"),
    ("GET", "/map/style.json"),
    ("GET", "/map/app.js"),
    ("GET", "/map/app.css"),
    ("GET", "/map/vendor/maplibre-gl.js"),
    ("GET", "/map/vendor/maplibre-gl.css"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/me"),
    ("GET", "/api/users"),
    ("POST", "/api/users"),
    ("DELETE", "/api/users/{name}"),
    ("GET", "/api/trees"),
    ("POST", "/api/trees"),
    ("GET", "/api/trees/nearest"),
    ("GET", "/api/trees/within"),
    ("GET", "/api/trees/{id}"),
    ("PATCH", "/api/trees/{id}"),
    ("DELETE", "/api/trees/{id}"),
    ("GET", "/api/trees/{id}/history"),
    ("GET", "/api/trees/{id}/qr.svg"),
    ("GET", "/api/trees/{id}/qr.png"),
    ("GET", "/api/trees/{id}/records"),
    ("POST", "/api/trees/{id}/records"),
    ("POST", "/api/trees/{id}/photos"),
    ("GET", "/api/photos/{sha256}"),
    ("GET", "/api/orchards"),
    ("POST", "/api/orchards"),
    ("GET", "/api/orchards/{id}"),
    ("PATCH", "/api/orchards/{id}"),
    ("POST", "/api/imports"),
    ("GET", "/api/export"),
    ("GET", "/ogc"),
    ("GET", "/ogc/conformance"),
    ("GET", "/ogc/api"),
    ("GET", "/ogc/collections"),
    ("GET", "/ogc/collections/{collectionId}"),
    ("GET", "/ogc/collections/{collectionId}/items"),
    ("GET", "/ogc/collections/{collectionId}/items/{featureId}"),
    ("GET", "/tiles/trees.json"),
    ("GET", "/tiles/pack"),
    ("GET", "/tiles/trees/{z}/{x}/{y}"),
    ("GET", "/t/{code}"),
    ("GET", "/l/{code}"),
    ("GET", "/414/{gln}/254/{code}"),
    ("GET", "/01/{gtin}/10/{lot}"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/gs1resolver"),
    ("GET", "/api/lots"),
    ("POST", "/api/lots"),
    ("GET", "/api/lots/{code}"),
    ("POST", "/api/lots/{code}/revoke"),
    ("GET", "/api/lots/{code}/qr.svg"),
    ("GET", "/api/lots/{code}/qr.png"),
    ("POST", "/api/tags"),
    ("GET", "/api/tags/{code}"),
    ("POST", "/api/tags/{code}/register"),
    ("GET", "/api/labels"),
    ("GET", "/api/scans/flagged"),
    ("POST", "/api/scans/{code}/place"),
    ("GET", "/api/epcis/events"),
];

/// The routes of the service.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/about", get(routes::home::home))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/tiles/trees.json", get(routes::tiles::tilejson))
        .route("/tiles/pack", get(routes::tiles::pack))
        .route("/tiles/trees/{z}/{x}/{y}", get(routes::tiles::tree_tile))
        .route("/metrics", get(metrics::metrics_handler))
        .route("/api/me", get(routes::users::me))
        .route("/api/users", get(routes::users::list_users).post(routes::users::create_user))
        .route("/api/users/{name}", delete(routes::users::revoke_user))
        .route("/api/trees", get(routes::trees::list_trees).post(routes::edit::create_tree))
        .route("/api/trees/nearest", get(routes::trees::nearest))
        .route("/api/trees/within", get(routes::trees::within))
        .route(
            "/api/trees/{id}",
            get(routes::trees::get_tree).patch(routes::edit::patch_tree).delete(routes::edit::delete_tree),
        )
        .route("/api/trees/{id}/history", get(routes::edit::history))
        .route("/api/trees/{id}/qr.svg", get(routes::lots::tree_qr::<false>))
        .route("/api/trees/{id}/qr.png", get(routes::lots::tree_qr::<true>))
        .route("/t/{code}", get(routes::resolver::resolve))
        .route("/l/{code}", get(routes::resolver::resolve))
        .route("/414/{gln}/254/{code}", get(routes::resolver::resolve))
        .route("/01/{gtin}/10/{lot}", get(routes::resolver::resolve))
        .route("/.well-known/jwks.json", get(routes::resolver::jwks))
        .route("/.well-known/gs1resolver", get(routes::resolver::resolver_description))
        .route("/api/lots", get(routes::lots::list_lots).post(routes::lots::create_lot))
        .route("/api/lots/{code}", get(routes::lots::get_lot))
        .route("/api/lots/{code}/revoke", post(routes::lots::revoke_lot))
        .route("/api/lots/{code}/qr.svg", get(routes::lots::lot_qr::<false>))
        .route("/api/lots/{code}/qr.png", get(routes::lots::lot_qr::<true>))
        .route("/api/tags", post(routes::lots::issue_tags))
        .route("/api/tags/{code}", get(routes::lots::get_tag))
        .route("/api/tags/{code}/register", post(routes::lots::register_tag))
        .route("/api/labels", get(routes::lots::labels))
        .route("/api/scans/flagged", get(routes::lots::flagged))
        .route("/api/scans/{code}/place", post(routes::resolver::share_place))
        .route("/api/epcis/events", get(routes::lots::epcis_events))
        .route("/api/trees/{id}/records", get(routes::records::list_records).post(routes::records::add_record))
        .route(
            "/api/trees/{id}/photos",
            post(routes::records::add_photo).layer(DefaultBodyLimit::max(state.max_photo_bytes.saturating_add(1))),
        )
        .route("/api/photos/{sha256}", get(routes::records::get_photo))
        .route("/api/orchards", get(routes::orchards::list_orchards).post(routes::orchards::create_orchard))
        .route("/api/orchards/{id}", get(routes::orchards::get_orchard).patch(routes::orchards::patch_orchard))
        .route("/api/export", get(routes::export::export))
        .route(
            "/api/imports",
            post(routes::imports::create_import).layer(DefaultBodyLimit::max(state.hygiene.max_import_bytes)),
        )
        .route("/api/openapi.json", get(openapi::serve))
        .merge(routes::ogc::router())
        .merge(routes::map::router())
        .fallback(|| async { AppError::NotFound("no such endpoint".into()) })
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate));
    // Hygiene layers (body limit, timeout, rate limit, CORS, metrics, JSON errors) after
    // every route, so that they cover them all; tracing outermost.
    middleware::layers(routes, &state).layer(tower_http::trace::TraceLayer::new_for_http()).with_state(state)
}

/// Default of [`Config::shutdown_timeout`]: 30 s.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// After the grace period, how long cut-short handlers get to drop what they hold (an
/// import's transaction) before the server stops waiting for their connections.
const CUT_SHORT_WAIT: Duration = Duration::from_secs(1);

/// Longest the last write of scan counts may wait for the database at shutdown.
const LAST_FLUSH_WAIT: Duration = Duration::from_secs(3);

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// How often to look for trees written by other processes.
    pub follow_every: Duration,
    /// Folder for tree photos (`None`: photo uploads are refused).
    pub photo_dir: Option<std::path::PathBuf>,
    /// Largest photo upload, in bytes.
    pub max_photo_bytes: usize,
    /// Body, time and rate limits.
    pub hygiene: Hygiene,
    /// The map page's basemap and MapLibre folder.
    pub map: MapSettings,
    /// Bound of the rendered-tile cache, in bytes.
    pub tile_cache_bytes: usize,
    /// The signing-key file (`None`: a key made up for this process only).
    pub key_file: Option<std::path::PathBuf>,
    /// The base URL printed in QR codes (`None`: the origin of each request).
    pub public_url: Option<String>,
    /// After the shutdown signal, how long requests in flight may take to finish before they
    /// are cut short (see [`Application::run_until`]).
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            follow_every: Duration::from_millis(500),
            photo_dir: None,
            max_photo_bytes: DEFAULT_MAX_PHOTO_BYTES,
            hygiene: Hygiene::default(),
            map: MapSettings::default(),
            tile_cache_bytes: tilecache::DEFAULT_TILE_CACHE_BYTES,
            key_file: None,
            public_url: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

/// Errors while starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Loading the trees failed.
    #[error("cannot load trees: {0}")]
    Load(#[from] store::Error),
    /// The signing-key file cannot be read or created.
    #[error("signing keys: {0}")]
    Keys(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A loaded, bound server, ready to run.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    follow_every: Duration,
    shutdown_timeout: Duration,
}

impl Application {
    /// Loads every tree into memory and binds the listener.
    pub async fn build(store: Arc<dyn Storage>, config: Config) -> Result<Self, StartError> {
        let cache = Arc::new(TreeCache::load(store.as_ref()).await?.with_tile_cache_bytes(config.tile_cache_bytes));
        let listener =
            TcpListener::bind(config.bind).await.map_err(|source| StartError::Bind { addr: config.bind, source })?;
        let mut state = AppState::new(store, cache).with_hygiene(config.hygiene.clone());
        state.photos = config.photo_dir.clone().map(|dir| Arc::new(store::photos::PhotoStore::new(dir)));
        state.max_photo_bytes = config.max_photo_bytes;
        state.map = Arc::new(config.map.clone());
        state.trace = Arc::new(match &config.key_file {
            Some(path) => trace::Trace::from_key_file(path, config.public_url.clone()).map_err(StartError::Keys)?,
            None => trace::Trace::ephemeral(config.public_url.clone()),
        });
        Ok(Self { listener, state, follow_every: config.follow_every, shutdown_timeout: config.shutdown_timeout })
    }

    /// The address actually bound (tells the port when 0 was asked for).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Number of trees loaded.
    pub fn tree_count(&self) -> usize {
        self.state.cache.read().len()
    }

    /// Serves until `shutdown` completes, following the change log meanwhile; then stops
    /// gracefully within a bounded time.
    ///
    /// When `shutdown` completes the listener is closed (new connections are refused) and the
    /// requests in flight get [`Config::shutdown_timeout`] to finish, response bodies included.
    /// Those still running then are cut short ([`shutdown::InFlight::cut_short`]): their
    /// handlers answer 503 and drop what they hold, so a survey import's transaction is rolled
    /// back, not committed half-way. The scan counts are written last. Returns at most about
    /// 7 s after the timeout (1 s for the cut-short connections, then at most 3 s for a write of
    /// scan counts under way and 3 s for the last one); a connection still sending a body then is closed when the caller
    /// shuts its runtime down (use `Runtime::shutdown_timeout`: the runtime's blocking threads
    /// must not hold the process either).
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let follower =
            tokio::spawn(follow_changes(self.state.cache.clone(), self.state.store.clone(), self.follow_every));
        let (trace, store) = (self.state.trace.clone(), self.state.store.clone());
        let (stop_keeper, keeper_stop) = tokio::sync::watch::channel(false);
        let keeper = tokio::spawn(trace::keep_up(trace.clone(), store.clone(), Duration::from_secs(2), keeper_stop));
        let inflight = Arc::new(shutdown::InFlight::default());
        let app = router(self.state)
            .layer(axum::middleware::from_fn_with_state(inflight.clone(), shutdown::track))
            .into_make_service_with_connect_info::<SocketAddr>();
        let grace = self.shutdown_timeout;
        let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
        let watched = inflight.clone();
        let signal = async move {
            shutdown.await;
            let running = watched.running();
            if running.is_empty() {
                tracing::info!("no longer accepting connections; no request in flight");
            } else {
                let list = running.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                tracing::info!(
                    in_flight = running.len(),
                    timeout_s = grace.as_secs_f64(),
                    "no longer accepting connections; waiting for the requests in flight: {list}"
                );
            }
            let _ = signalled.send(());
        };
        let server = axum::serve(self.listener, app).with_graceful_shutdown(signal).into_future();
        tokio::pin!(server);
        let deadline = async {
            if on_signal.await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            result = &mut server => {
                tracing::info!("every request in flight finished");
                result
            }
            () = deadline => {
                let cut = inflight.cut_short();
                let imports = cut.iter().filter(|r| r.is_import()).count();
                let list = cut.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                tracing::warn!(
                    cut_short = cut.len(),
                    imports,
                    timeout_s = grace.as_secs_f64(),
                    "shutdown timeout reached: cut short {} request(s): {list}{}",
                    cut.len(),
                    if imports > 0 {
                        "; the import's transaction is dropped: rolled back unless its commit had begun"
                    } else {
                        ""
                    }
                );
                // The handlers are dropped at once; give their connections a moment to send the 503.
                let _ = tokio::time::timeout(CUT_SHORT_WAIT, &mut server).await;
                Ok(())
            }
        };
        follower.abort();
        // The keeper stops between two writes, never during one (its batch would be lost).
        let _ = stop_keeper.send(true);
        if tokio::time::timeout(LAST_FLUSH_WAIT, keeper).await.is_err() {
            tracing::warn!("the scan-count writer did not stop in time");
        }
        match tokio::time::timeout(LAST_FLUSH_WAIT, trace.scans.flush(store.as_ref())).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(rows = n, "scan counts written"),
            Ok(Err(e)) => tracing::warn!(error = %e, "scan counts not written at shutdown"),
            Err(_) => tracing::warn!("scan counts not written at shutdown: the database did not answer in time"),
        }
        result
    }
}
