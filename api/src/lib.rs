//! The orchardmap HTTP API. All HTTP of the project lives in this crate.
//!
//! [`router`] builds the axum router from an [`AppState`] (tests drive it with
//! `tower::ServiceExt::oneshot`); [`Application`] loads the trees, binds the
//! listener (port 0 in tests) and serves until asked to stop.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cache;
mod error;
mod geojson;
mod params;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use store::Storage;
use tokio::net::TcpListener;

pub use cache::{TreeCache, TreeSet, follow_changes};
pub use error::{AppError, Result};
pub use routes::trees::{DEFAULT_LIMIT, MAX_K, MAX_LIMIT, MAX_RADIUS_M};

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Storage>,
    /// Trees in memory with their spatial index.
    pub cache: Arc<TreeCache>,
    /// Whether `POST /api/imports` is open: only on a loopback address until
    /// authentication exists.
    pub imports_open: bool,
}

/// Every route the service serves, as (method, path template in OpenAPI
/// syntax). The router below is checked against it by a test, and so is the
/// OpenAPI document ([`openapi`]): a route missing from either fails the build's tests.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/healthz"),
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
];

/// The routes of the service.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(routes::home::home))
        .route("/healthz", get(routes::healthz))
        .route("/api/trees", get(routes::trees::list_trees))
        .route("/api/trees/nearest", get(routes::trees::nearest))
        .route("/api/trees/within", get(routes::trees::within))
        .route("/api/trees/{id}", get(routes::trees::get_tree))
        .route("/api/orchards/{id}", get(routes::orchards::get_orchard))
        .route(
            "/api/imports",
            axum::routing::post(routes::imports::create_import)
                .layer(axum::extract::DefaultBodyLimit::max(routes::imports::MAX_UPLOAD_BYTES)),
        )
        .fallback(|| async { AppError::NotFound("no such endpoint".into()) })
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// How often to look for trees written by other processes.
    pub follow_every: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self { bind: SocketAddr::from(([127, 0, 0, 1], 8080)), follow_every: Duration::from_millis(500) }
    }
}

/// Errors while starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Loading the trees failed.
    #[error("cannot load trees: {0}")]
    Load(#[from] store::Error),
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
}

impl Application {
    /// Loads every tree into memory and binds the listener.
    pub async fn build(store: Arc<dyn Storage>, config: Config) -> Result<Self, StartError> {
        let cache = Arc::new(TreeCache::load(store.as_ref()).await?);
        let listener =
            TcpListener::bind(config.bind).await.map_err(|source| StartError::Bind { addr: config.bind, source })?;
        let imports_open = config.bind.ip().is_loopback();
        Ok(Self { listener, state: AppState { store, cache, imports_open }, follow_every: config.follow_every })
    }

    /// The address actually bound (tells the port when 0 was asked for).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Number of trees loaded.
    pub fn tree_count(&self) -> usize {
        self.state.cache.read().len()
    }

    /// Serves until `shutdown` completes, following the change log meanwhile.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let follower =
            tokio::spawn(follow_changes(self.state.cache.clone(), self.state.store.clone(), self.follow_every));
        let result = axum::serve(self.listener, router(self.state)).with_graceful_shutdown(shutdown).await;
        follower.abort();
        result
    }
}
