//! `GET /api/export`: the trees a query selects, as a GeoJSON, CSV, KML or
//! GeoPackage download, written by the importer's export writers.
//!
//! The body is streamed: the ids of the trees in the box are collected (8
//! bytes each), then a blocking task writes [`CHUNK`] trees at a time,
//! taking the cache's read lock for one chunk only, and hands each chunk to
//! the response through a small channel (so a slow client slows the task
//! down rather than filling memory). A GeoPackage is a SQLite file: it is
//! written to a temporary file first, then streamed from it with its length.

// Until `GET /api/export` is added to the router: then this expectation
// fails the build (unfulfilled) and this line goes.

use std::io::{Read, Write};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use geo_core::{BBox, TreeFilter, TreeId};
use importer::export::{ExportError, ExportFormat, ExportOptions, ExportRow, GpkgWriter, TextExportWriter};
use tokio::sync::mpsc;

use crate::AppState;
use crate::cache::TreeCache;
use crate::error::{AppError, Result};
use crate::params::Params;

/// Trees written per read lock of the cache (and per body chunk of a text format).
pub const CHUNK: usize = 1000;

/// Bytes per body chunk of a GeoPackage.
const FILE_CHUNK: usize = 64 * 1024;

/// Chunks waiting for the client, per export.
const QUEUE: usize = 4;

/// Every position: the box searched when the query gives none.
const WORLD: BBox = BBox { min_lon: -180.0, min_lat: -90.0, max_lon: 180.0, max_lat: 90.0 };

type Chunk = std::result::Result<Bytes, std::io::Error>;

/// Whether this export may include private fields (the orchard owner).
/// Never for now: the endpoint is public.
fn include_private(_state: &AppState) -> bool {
    false
}

/// `GET /api/export?format=geojson|csv|kml|gpkg`: every tree matching the
/// optional `bbox` (`minLon,minLat,maxLon,maxLat`) and the attribute filters
/// of [`Params::tree_filter`], by id, as an attachment
/// (`orchardmap-trees.<ext>`). Without the owner's name (private).
pub async fn export(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let format = match params.get("format").map(str::trim) {
        None | Some("") => return Err(AppError::bad("format", "is required: geojson, csv, kml or gpkg")),
        Some(name) => name
            .parse::<ExportFormat>()
            .map_err(|_| AppError::bad("format", format!("{name:?} is not one of geojson, csv, kml, gpkg")))?,
    };
    let bbox = match params.get("bbox") {
        None | Some("") => None,
        Some(_) => Some(params.bbox()?),
    };
    let selection = Selection { cache: state.cache.clone(), bbox, filter: params.tree_filter()? };
    let options = ExportOptions { include_private: include_private(&state) };

    let (body, length) = if format.is_text() {
        let (tx, rx) = mpsc::channel::<Chunk>(QUEUE);
        tokio::task::spawn_blocking(move || stream_text(&selection, format, options, tx));
        (body_of(rx), None)
    } else {
        let file = tokio::task::spawn_blocking(move || write_gpkg(&selection, options))
            .await
            .map_err(|e| AppError::Internal(format!("GeoPackage export task failed: {e}")))??;
        let length =
            file.as_file().metadata().map_err(|e| AppError::Internal(format!("GeoPackage export: {e}")))?.len();
        let (tx, rx) = mpsc::channel::<Chunk>(QUEUE);
        tokio::task::spawn_blocking(move || stream_file(file, tx));
        (body_of(rx), Some(length))
    };

    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(disposition(format)));
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    Ok(response)
}

fn disposition(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::GeoJson => "attachment; filename=\"orchardmap-trees.geojson\"",
        ExportFormat::Csv => "attachment; filename=\"orchardmap-trees.csv\"",
        ExportFormat::Kml => "attachment; filename=\"orchardmap-trees.kml\"",
        _ => "attachment; filename=\"orchardmap-trees.gpkg\"",
    }
}

/// The response body fed by a channel of chunks; an `Err` chunk aborts the
/// response (the client sees an incomplete transfer, not a short file).
fn body_of(rx: mpsc::Receiver<Chunk>) -> Body {
    Body::from_stream(futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) },
    ))
}

/// Which trees an export takes.
struct Selection {
    cache: Arc<TreeCache>,
    bbox: Option<BBox>,
    filter: TreeFilter,
}

impl Selection {
    /// The ids of the trees in the box, ascending (one read lock; the
    /// attribute filter is applied chunk by chunk as they are written).
    fn ids(&self) -> Vec<TreeId> {
        let mut ids: Vec<TreeId> = self.cache.read().index.in_bbox(&self.bbox.unwrap_or(WORLD)).map(|t| t.id).collect();
        ids.sort_unstable();
        ids
    }

    /// Feeds every selected tree to `f`, [`CHUNK`] trees per read lock,
    /// then [`Step::ChunkDone`] with the lock released.
    fn each<E>(&self, mut f: impl FnMut(Step<'_>) -> std::result::Result<(), E>) -> std::result::Result<(), E> {
        let orchards = self.cache.orchards();
        for chunk in self.ids().chunks(CHUNK) {
            {
                let set = self.cache.read();
                for id in chunk {
                    // A tree removed since the ids were taken is skipped; one
                    // changed is checked again.
                    let Some(tree) = set.get(*id) else { continue };
                    let orchard = orchards.get(&tree.orchard_id).map(|o| &**o);
                    if self.bbox.is_none_or(|b| b.contains(tree.location)) && self.filter.matches(tree, orchard) {
                        f(Step::Row(ExportRow::new(tree, orchard)))?;
                    }
                }
            }
            f(Step::ChunkDone)?;
        }
        Ok(())
    }
}

/// What [`Selection::each`] hands over.
enum Step<'a> {
    /// A tree to write (the cache is read-locked).
    Row(ExportRow<'a>),
    /// A chunk is done and the lock released: time to send.
    ChunkDone,
}

/// Collects what it is given and sends it as one chunk on `flush`, which
/// the writer calls between chunks, outside the cache's lock.
struct ChannelWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<Chunk>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| client_gone())
    }
}

fn client_gone() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client closed the connection")
}

/// Writes a text export into the channel (on a blocking thread).
fn stream_text(selection: &Selection, format: ExportFormat, options: ExportOptions, tx: mpsc::Sender<Chunk>) {
    let out = ChannelWriter { buf: Vec::with_capacity(FILE_CHUNK), tx: tx.clone() };
    let result = (|| -> std::result::Result<(), ExportError> {
        let mut writer = TextExportWriter::new(format, out, options, format!("export.{}", format.extension()))?;
        writer.begin()?;
        selection.each(|step| match step {
            Step::Row(row) => writer.write(&row),
            Step::ChunkDone => writer.flush(),
        })?;
        let mut out = writer.finish()?;
        out.flush().map_err(|source| ExportError::Io { file: "export".into(), source })
    })();
    match result {
        Ok(()) => {}
        Err(ExportError::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            tracing::debug!("export: the client went away");
        }
        Err(e) => {
            tracing::error!(error = %e, "export failed while streaming");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    }
}

/// Writes a GeoPackage to a temporary file (on a blocking thread).
fn write_gpkg(selection: &Selection, options: ExportOptions) -> Result<tempfile::NamedTempFile> {
    let internal = |e: &dyn std::fmt::Display| AppError::Internal(format!("GeoPackage export: {e}"));
    let file =
        tempfile::Builder::new().prefix("orchardmap-export-").suffix(".gpkg").tempfile().map_err(|e| internal(&e))?;
    let mut writer = GpkgWriter::create(file.path(), options).map_err(|e| internal(&e))?;
    selection
        .each(|step| match step {
            Step::Row(row) => writer.write(&row),
            Step::ChunkDone => Ok(()),
        })
        .map_err(|e| internal(&e))?;
    writer.finish().map_err(|e| internal(&e))?;
    Ok(file)
}

/// Sends a file into the channel in chunks; the file is deleted afterwards.
fn stream_file(file: tempfile::NamedTempFile, tx: mpsc::Sender<Chunk>) {
    let mut reader = match file.reopen() {
        Ok(reader) => reader,
        Err(e) => {
            tracing::error!(error = %e, path = %file.path().display(), "export: cannot read the GeoPackage back");
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    loop {
        let mut buf = vec![0; FILE_CHUNK];
        let chunk = match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                Ok(Bytes::from(buf))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!(error = %e, path = %file.path().display(), "export: cannot read the GeoPackage back");
                Err(e)
            }
        };
        let failed = chunk.is_err();
        if tx.blocking_send(chunk).is_err() || failed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use geo_core::{Cultivar, Health, LonLat, NewTree, Orchard, OrchardId};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    const ORIGIN: LonLat = LonLat::new(108.05, 12.68);

    /// `n` trees on a grid 1 m apart in one orchard (every fourth poor).
    async fn state(dir: &tempfile::TempDir, n: usize) -> AppState {
        let store = store::open(dir.path().join("export.db").to_str().unwrap()).await.unwrap();
        let orchard = Orchard {
            id: OrchardId::new("DL-TEST-001").unwrap(),
            name: "Vườn \"thử\" <b>nghiệm</b> & co, Đắk".into(),
            owner: "Y Blang Niê".into(),
            commune: "Ea Tiêu".into(),
            district: "Cư Kuin".into(),
            province: "Đắk Lắk".into(),
            planting_area_code: Some("VN-DLOR-0001".into()),
            gln: None,
            boundary: None,
        };
        let trees = (0..n)
            .map(|i| NewTree {
                code: None,
                location: ORIGIN.offset_m((i % 50) as f64, (i / 50) as f64),
                accuracy_m: Some(3.0),
                cultivar: Cultivar::new("Ri6"),
                planted_year: Some(2015),
                health: if i % 4 == 3 { Health::Poor } else { Health::Good },
                height_m: None,
                girth_cm: None,
                orchard_id: orchard.id.clone(),
                survey_id: None,
            })
            .collect();
        store.import(store::ImportBatch { survey: None, orchards: vec![orchard], trees }).await.unwrap();
        let cache = Arc::new(TreeCache::load(store.as_ref()).await.unwrap());
        AppState::new(store, cache)
    }

    async fn call(state: &AppState, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let app = axum::Router::new().route("/api/export", get(export)).with_state(state.clone());
        let resp = app.oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, headers, bytes)
    }

    #[tokio::test]
    async fn text_formats_stream_every_selected_tree() {
        let dir = tempfile::tempdir().unwrap();
        // More than two chunks.
        let state = state(&dir, 2 * CHUNK + 500).await;

        let (status, headers, body) = call(&state, "/api/export?format=geojson").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/geo+json");
        assert_eq!(headers[header::CONTENT_DISPOSITION], "attachment; filename=\"orchardmap-trees.geojson\"");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let features = json["features"].as_array().unwrap();
        assert_eq!(features.len(), 2 * CHUNK + 500);
        let ids: Vec<i64> = features.iter().map(|f| f["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "by id");
        assert_eq!(features[0]["properties"]["orchard_name"], "Vườn \"thử\" <b>nghiệm</b> & co, Đắk");
        assert!(!String::from_utf8(body).unwrap().contains("Y Blang Niê"), "the owner is private");

        // Filters and box: poor trees of the first 10 m x 10 m.
        let far = ORIGIN.offset_m(9.5, 9.5);
        let uri = format!(
            "/api/export?format=csv&health=poor&commune=ea%20tieu&bbox={},{},{},{}",
            ORIGIN.lon, ORIGIN.lat, far.lon, far.lat
        );
        let (status, headers, body) = call(&state, &uri).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
        let text = String::from_utf8(body).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with("id,code,lon,lat,") && !header.contains("owner"), "{header}");
        // The first 8 columns have no comma in this data: health is the 8th.
        let health: Vec<&str> = lines.map(|l| l.split(',').nth(7).unwrap()).collect();
        // Rows 0..9 of the grid, columns 0..9: 100 trees, a quarter of them poor.
        assert_eq!(health, vec!["poor"; 25]);

        let (status, headers, body) = call(&state, "/api/export?format=kml&health=dead").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/vnd.google-earth.kml+xml");
        let text = String::from_utf8(body).unwrap();
        assert!(text.ends_with("</Document>\n</kml>\n") && !text.contains("<Placemark"), "{text}");
    }

    #[tokio::test]
    async fn geopackage_comes_whole_with_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(&dir, 1500).await;
        let (status, headers, body) = call(&state, "/api/export?format=gpkg&health=good").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/geopackage+sqlite3");
        assert_eq!(headers[header::CONTENT_DISPOSITION], "attachment; filename=\"orchardmap-trees.gpkg\"");
        assert_eq!(headers[header::CONTENT_LENGTH], body.len().to_string().as_str());
        assert_eq!(&body[..16], b"SQLite format 3\0");
        assert_eq!(&body[60..64], &10300u32.to_be_bytes(), "user_version");
        assert_eq!(&body[68..72], b"GPKG", "application_id");
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("Y Blang Niê"), "the owner is private");
    }

    #[tokio::test]
    async fn format_is_required_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(&dir, 3).await;
        for (uri, want) in [
            ("/api/export", "format: is required"),
            ("/api/export?format=shp", "format: \"shp\" is not one of"),
            ("/api/export?format=csv&bbox=1,2,3", "bbox:"),
            ("/api/export?format=csv&health=sick", "health:"),
        ] {
            let (status, _, body) = call(&state, uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let message = json["error"]["message"].as_str().unwrap();
            assert!(message.starts_with(want), "{uri}: {message}");
        }
    }
}
