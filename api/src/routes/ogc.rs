//! OGC API – Features, Part 1 (conformance classes Core, GeoJSON and OpenAPI
//! 3.0) under `/ogc`, with two collections: `trees` (from the in-memory
//! index) and `orchards` (their boundaries; never the owner).
//!
//! Items are paged with an opaque `cursor` (keyset on the feature id, no
//! offsets), carried by the `next` link together with every other query
//! parameter. Unknown query parameters are refused with 400, as the standard
//! permits, so a typo never silently widens a query. Links are absolute when
//! the request names its host (`Host`, or `X-Forwarded-Host` and
//! `X-Forwarded-Proto` behind a proxy), as clients such as GDAL expect.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use geo_core::{BBox, Orchard, OrchardId, Tree, TreeCode, TreeFilter, TreeId, fold};
use geo_types::{Coord, Polygon};
use serde::Serialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{AppError, Result};
use crate::geojson::{TreeFeature, orchard_feature};
use crate::params::Params;
use crate::routes::orchards::strip_private;

/// Page size of `/items` when `limit` is absent.
pub const DEFAULT_ITEMS_LIMIT: usize = 10;
/// Largest `limit` of `/items`; a larger one is refused with 400.
pub const MAX_ITEMS_LIMIT: usize = 10_000;

/// The one coordinate reference system served: WGS 84 longitude, latitude.
pub const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";
/// Media type of an OpenAPI 3.0 document in JSON.
pub const OPENAPI_MEDIA_TYPE: &str = "application/vnd.oai.openapi+json;version=3.0";
/// The conformance classes implemented.
pub const CONFORMANCE: [&str; 3] = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
];
/// The collections served.
pub const COLLECTIONS: [&str; 2] = ["trees", "orchards"];

/// Query parameters every `/items` request may carry.
pub const ITEMS_PARAMS: [&str; 5] = ["bbox", "limit", "cursor", "datetime", "f"];
/// Equality filters on tree properties beyond [`Params::FILTER_NAMES`]
/// (which already hold `cultivar`, `health` and `orchard`).
pub const TREE_PROPERTY_PARAMS: [&str; 2] = ["planted_year", "code"];
/// Filters of the `orchards` collection: equality on these properties,
/// ignoring case and Vietnamese diacritics.
pub const ORCHARD_FILTER_NAMES: [&str; 5] = ["name", "commune", "district", "province", "planting_area_code"];

const GEOJSON: &str = "application/geo+json";
const JSON: &str = "application/json";

/// The routes of the OGC API (paths as in [`crate::ROUTES`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ogc", get(landing))
        .route("/ogc/conformance", get(conformance))
        .route("/ogc/api", get(api_document))
        .route("/ogc/collections", get(collections))
        .route("/ogc/collections/{collectionId}", get(collection))
        .route("/ogc/collections/{collectionId}/items", get(items))
        .route("/ogc/collections/{collectionId}/items/{featureId}", get(item))
}

/// A collection of this API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collection {
    Trees,
    Orchards,
}

impl Collection {
    fn parse(id: &str) -> Result<Self> {
        match id {
            "trees" => Ok(Collection::Trees),
            "orchards" => Ok(Collection::Orchards),
            other => Err(AppError::NotFound(format!("no collection {other:?}; there are {}", COLLECTIONS.join(", ")))),
        }
    }

    fn id(self) -> &'static str {
        match self {
            Collection::Trees => "trees",
            Collection::Orchards => "orchards",
        }
    }
}

/// `scheme://host` of the request, or "" (links then stay relative) when the
/// request does not name a usable host.
fn base_url(headers: &HeaderMap) -> String {
    let text =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.split(',').next().unwrap_or(v).trim());
    let host = text("x-forwarded-host").filter(|h| !h.is_empty()).or_else(|| text(header::HOST.as_str()));
    let Some(host) = host.filter(|h| {
        !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    }) else {
        return String::new();
    };
    let scheme = match text("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

fn respond(content_type: &'static str, body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response()
}

fn respond_json(content_type: &'static str, body: &Value) -> Result<Response> {
    let bytes = serde_json::to_vec(body).map_err(|e| AppError::Internal(format!("cannot encode JSON: {e}")))?;
    Ok(respond(content_type, bytes))
}

/// `f` selects the encoding: only JSON (`json`, `geojson`) is served.
fn check_format(params: &Params) -> Result<()> {
    match params.get("f").map(str::trim) {
        None | Some("" | "json" | "geojson") => Ok(()),
        Some(other) => Err(AppError::bad("f", format!("{other:?} is not served; this API answers json only"))),
    }
}

fn link(href: String, rel: &str, media_type: &str, title: &str) -> Value {
    json!({ "href": href, "rel": rel, "type": media_type, "title": title })
}

/// `GET /ogc`: the landing page.
pub async fn landing(headers: HeaderMap, RawQuery(raw): RawQuery) -> Result<Response> {
    check_format(&Params::parse(raw.as_deref()))?;
    let base = base_url(&headers);
    respond_json(
        JSON,
        &json!({
            "title": "orchardmap",
            "description": "Durian trees surveyed one by one, and the orchards they grow in (OGC API – Features)",
            "links": [
                link(format!("{base}/ogc"), "self", JSON, "This document"),
                link(format!("{base}/api/openapi.json"), "service-desc", OPENAPI_MEDIA_TYPE, "The API definition (OpenAPI 3.0)"),
                link(format!("{base}/"), "service-doc", "text/html", "The service's home page, with examples"),
                link(format!("{base}/ogc/conformance"), "conformance", JSON, "Conformance classes implemented"),
                link(format!("{base}/ogc/collections"), "data", JSON, "The feature collections"),
            ]
        }),
    )
}

/// `GET /ogc/conformance`: the conformance classes implemented.
pub async fn conformance(RawQuery(raw): RawQuery) -> Result<Response> {
    check_format(&Params::parse(raw.as_deref()))?;
    respond_json(JSON, &json!({ "conformsTo": CONFORMANCE }))
}

/// `GET /ogc/api`: the OpenAPI document (the same as `/api/openapi.json`).
pub async fn api_document() -> Response {
    crate::openapi::serve().await
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn bbox_json(b: &BBox) -> Value {
    json!([[b.min_lon, b.min_lat, b.max_lon, b.max_lat]])
}

/// The description of one collection, its extent computed from the data.
fn describe(state: &AppState, which: Collection, base: &str) -> Value {
    let id = which.id();
    let (title, description, spatial, temporal) = match which {
        Collection::Trees => {
            let set = state.cache.read();
            let mut bbox: Option<BBox> = None;
            let mut span: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
            for entry in set.index.iter() {
                let p = entry.location;
                bbox = Some(match bbox {
                    None => BBox { min_lon: p.lon, min_lat: p.lat, max_lon: p.lon, max_lat: p.lat },
                    Some(b) => BBox {
                        min_lon: b.min_lon.min(p.lon),
                        min_lat: b.min_lat.min(p.lat),
                        max_lon: b.max_lon.max(p.lon),
                        max_lat: b.max_lat.max(p.lat),
                    },
                });
                if let Some(tree) = set.get(entry.id) {
                    let t = tree.updated_at;
                    span = Some(span.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
                }
            }
            (
                "Durian trees",
                "Every surveyed durian tree: tag code, cultivar, health, planting year, size, orchard. The time of \
                 a tree (datetime) is when its record last changed (updated_at).",
                bbox,
                span.map_or(json!([[null, null]]), |(lo, hi)| json!([[time(&lo), time(&hi)]])),
            )
        }
        Collection::Orchards => {
            let orchards = state.cache.orchards();
            let corners = orchards
                .values()
                .filter_map(|o| o.boundary.as_ref())
                .flat_map(|p| p.exterior().0.iter().map(|c| geo_core::LonLat::new(c.x, c.y)));
            (
                "Durian orchards",
                "Orchards with their surveyed boundary (null when none was surveyed), place and tree count. \
                 Orchards carry no time of their own: datetime matches every orchard.",
                BBox::around(corners),
                json!([[null, null]]),
            )
        }
    };
    let mut extent = json!({
        "temporal": { "interval": temporal, "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian" }
    });
    if let Some(b) = spatial {
        extent["spatial"] = json!({ "bbox": bbox_json(&b), "crs": CRS84 });
    }
    json!({
        "id": id,
        "title": title,
        "description": description,
        "itemType": "feature",
        "crs": [CRS84],
        "extent": extent,
        "links": [
            link(format!("{base}/ogc/collections/{id}"), "self", JSON, "This collection"),
            link(format!("{base}/ogc/collections/{id}/items"), "items", GEOJSON, title),
        ]
    })
}

/// `GET /ogc/collections`: every collection.
pub async fn collections(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    check_format(&Params::parse(raw.as_deref()))?;
    let base = base_url(&headers);
    let all: Vec<Value> =
        [Collection::Trees, Collection::Orchards].iter().map(|c| describe(&state, *c, &base)).collect();
    respond_json(
        JSON,
        &json!({
            "links": [link(format!("{base}/ogc/collections"), "self", JSON, "The feature collections")],
            "collections": all,
        }),
    )
}

/// `GET /ogc/collections/{collectionId}`: one collection.
pub async fn collection(
    State(state): State<AppState>,
    Path(collection_id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let which = Collection::parse(&collection_id)?;
    check_format(&Params::parse(raw.as_deref()))?;
    respond_json(JSON, &describe(&state, which, &base_url(&headers)))
}

/// A `datetime` condition: `from` inclusive, `until` exclusive; `None` = open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct TimeRange {
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl TimeRange {
    fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| t >= f) && self.until.is_none_or(|u| t < u)
    }
}

/// One end of a `datetime`: an RFC 3339 date-time (an instant: the range is
/// that instant) or a full date (that whole UTC day). Returns (start, end
/// exclusive).
fn time_bounds(raw: &str) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let bad = || {
        AppError::bad(
            "datetime",
            format!(
                "{raw:?} is not an RFC 3339 date-time (2025-03-01T08:00:00Z) or date (2025-03-01); intervals are \
                 start/end with .. for an open end"
            ),
        )
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        let t = t.with_timezone(&Utc);
        return Ok((t, t + chrono::Duration::nanoseconds(1)));
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| bad())?;
    let start = day.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc();
    Ok((start, start + chrono::Duration::days(1)))
}

/// Parses `datetime`: an instant, a date, or an interval `start/end` where
/// either end may be `..` or empty (open), not both.
fn parse_datetime(raw: &str) -> Result<TimeRange> {
    let raw = raw.trim();
    let Some((start, end)) = raw.split_once('/') else {
        let (from, until) = time_bounds(raw)?;
        return Ok(TimeRange { from: Some(from), until: Some(until) });
    };
    let open = |s: &str| s.trim().is_empty() || s.trim() == "..";
    if open(start) && open(end) {
        return Err(AppError::bad("datetime", format!("{raw:?}: an interval needs at least one end")));
    }
    let from = if open(start) { None } else { Some(time_bounds(start.trim())?.0) };
    let until = if open(end) { None } else { Some(time_bounds(end.trim())?.1) };
    if let (Some(f), Some(u)) = (from, until) {
        if f >= u {
            return Err(AppError::bad("datetime", format!("{raw:?}: the interval ends before it starts")));
        }
    }
    Ok(TimeRange { from, until })
}

/// What an `/items` request asks for, common to both collections.
struct ItemsQuery {
    bbox: Option<BBox>,
    limit: usize,
    cursor: Option<String>,
    time: Option<TimeRange>,
}

fn items_query(params: &Params, raw: Option<&str>, allowed: &[&str]) -> Result<ItemsQuery> {
    for (key, _) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if !allowed.contains(&key.as_ref()) {
            return Err(AppError::bad(
                "query",
                format!("unknown parameter {key:?}; this collection takes {}", allowed.join(", ")),
            ));
        }
    }
    check_format(params)?;
    let bbox = match params.get("bbox") {
        None => None,
        Some(_) => Some(params.bbox()?),
    };
    let limit = params.usize_in("limit", DEFAULT_ITEMS_LIMIT, 1, MAX_ITEMS_LIMIT)?;
    let cursor = params.get("cursor").filter(|c| !c.is_empty()).map(str::to_string);
    let time = params.get("datetime").map(parse_datetime).transpose()?;
    Ok(ItemsQuery { bbox, limit, cursor, time })
}

/// The tree filter of the shared parameters, narrowed by `planted_year`.
fn tree_filter(params: &Params) -> Result<TreeFilter> {
    let mut filter = params.tree_filter()?;
    if let Some(raw) = params.get("planted_year").map(str::trim).filter(|v| !v.is_empty()) {
        let year = raw
            .parse::<i32>()
            .ok()
            .filter(|y| (1900..=2200).contains(y))
            .ok_or_else(|| AppError::bad("planted_year", format!("{raw:?} is not a year (1900..2200)")))?;
        filter.planted_from = Some(filter.planted_from.map_or(year, |f| f.max(year)));
        filter.planted_to = Some(filter.planted_to.map_or(year, |t| t.min(year)));
    }
    Ok(filter)
}

fn tree_code(params: &Params) -> Result<Option<TreeCode>> {
    match params.get("code").map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(raw) => TreeCode::parse(raw).map(Some).map_err(|e| AppError::bad("code", e.to_string())),
    }
}

/// The URL of this items request with `cursor` set to `next` (every other
/// parameter kept, in order).
fn page_url(base: &str, collection: Collection, raw: Option<&str>, cursor: Option<&str>) -> String {
    let mut query: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .filter(|(k, _)| cursor.is_none() || k != "cursor")
        .collect();
    if let Some(c) = cursor {
        query.push(("cursor".into(), c.to_string()));
    }
    let path = format!("{base}/ogc/collections/{}/items", collection.id());
    if query.is_empty() {
        path
    } else {
        format!("{path}?{}", form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish())
    }
}

/// A page of features with the members OGC API – Features asks for.
#[derive(Serialize)]
struct Page<F: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    features: Vec<F>,
    #[serde(rename = "numberMatched")]
    number_matched: usize,
    #[serde(rename = "numberReturned")]
    number_returned: usize,
    #[serde(rename = "timeStamp")]
    time_stamp: String,
    links: Vec<Value>,
}

fn page_links(base: &str, which: Collection, raw: Option<&str>, next: Option<&str>) -> Vec<Value> {
    let mut links = vec![
        link(page_url(base, which, raw, None), "self", GEOJSON, "This page"),
        link(format!("{base}/ogc/collections/{}", which.id()), "collection", JSON, "The collection"),
    ];
    if let Some(cursor) = next {
        links.push(link(page_url(base, which, raw, Some(cursor)), "next", GEOJSON, "Next page"));
    }
    links
}

/// `GET /ogc/collections/{collectionId}/items`: features, filtered and paged.
pub async fn items(
    State(state): State<AppState>,
    Path(collection_id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let which = Collection::parse(&collection_id)?;
    let params = Params::parse(raw.as_deref());
    let base = base_url(&headers);
    let body = match which {
        Collection::Trees => {
            let allowed: Vec<&str> = ITEMS_PARAMS
                .iter()
                .chain(Params::FILTER_NAMES.iter())
                .chain(TREE_PROPERTY_PARAMS.iter())
                .copied()
                .collect();
            let query = items_query(&params, raw.as_deref(), &allowed)?;
            let filter = tree_filter(&params)?;
            let code = tree_code(&params)?;
            tree_page(&state, &query, &filter, code, &base, raw.as_deref())?
        }
        Collection::Orchards => {
            let allowed: Vec<&str> = ITEMS_PARAMS.iter().chain(ORCHARD_FILTER_NAMES.iter()).copied().collect();
            let query = items_query(&params, raw.as_deref(), &allowed)?;
            orchard_page(&state, &query, &params, &base, raw.as_deref())?
        }
    };
    Ok(respond(GEOJSON, body))
}

fn tree_page(
    state: &AppState,
    query: &ItemsQuery,
    filter: &TreeFilter,
    code: Option<TreeCode>,
    base: &str,
    raw: Option<&str>,
) -> Result<Vec<u8>> {
    let after = match &query.cursor {
        None => i64::MIN,
        Some(c) => {
            c.parse::<i64>().map_err(|_| AppError::bad("cursor", format!("{c:?} is not a cursor from a next link")))?
        }
    };
    let orchards = state.cache.orchards();
    let set = state.cache.read();
    let keep = |id: TreeId| -> bool {
        let Some(tree) = set.get(id) else { return false };
        if code.is_some_and(|c| tree.code != c) || query.time.is_some_and(|t| !t.contains(tree.updated_at)) {
            return false;
        }
        if filter.is_empty() {
            return true;
        }
        let orchard = if filter.needs_orchard() { orchards.get(&tree.orchard_id).map(|o| o.as_ref()) } else { None };
        filter.matches(tree, orchard)
    };
    let candidates: Box<dyn Iterator<Item = TreeId> + '_> = match &query.bbox {
        Some(b) => Box::new(set.index.in_bbox(b).map(|e| e.id)),
        None => Box::new(set.index.iter().map(|e| e.id)),
    };
    let mut matched = 0;
    let mut ids: Vec<TreeId> = Vec::new();
    for id in candidates {
        if !keep(id) {
            continue;
        }
        matched += 1;
        if id.0 > after {
            ids.push(id);
        }
    }
    let limit = query.limit;
    // The smallest limit + 1 ids, without sorting all of them.
    if ids.len() > limit + 1 {
        ids.select_nth_unstable(limit);
        ids.truncate(limit + 1);
    }
    ids.sort_unstable();
    let mut next = None;
    if ids.len() > limit {
        ids.truncate(limit);
        next = ids.last().map(|id| id.0.to_string());
    }
    let trees: Vec<&Arc<Tree>> = ids.iter().filter_map(|id| set.get(*id)).collect();
    let features: Vec<TreeFeature<'_>> = trees.iter().map(|t| TreeFeature::new(t, None)).collect();
    let page = Page {
        kind: "FeatureCollection",
        number_returned: features.len(),
        features,
        number_matched: matched,
        time_stamp: time(&Utc::now()),
        links: page_links(base, Collection::Trees, raw, next.as_deref()),
    };
    serde_json::to_vec(&page).map_err(|e| AppError::Internal(format!("cannot encode JSON: {e}")))
}

/// True when the polygon and the box share a point (exact for straight edges).
fn polygon_meets_bbox(polygon: &Polygon<f64>, b: &BBox) -> bool {
    let exterior = &polygon.exterior().0;
    let Some(env) = BBox::around(exterior.iter().map(|c| geo_core::LonLat::new(c.x, c.y))) else { return false };
    if env.max_lon < b.min_lon || env.min_lon > b.max_lon || env.max_lat < b.min_lat || env.min_lat > b.max_lat {
        return false;
    }
    let rings = || std::iter::once(polygon.exterior()).chain(polygon.interiors().iter());
    // A vertex of the polygon in the box.
    if rings().flat_map(|r| r.0.iter()).any(|c| b.contains(geo_core::LonLat::new(c.x, c.y))) {
        return true;
    }
    // A corner of the box in the polygon.
    if point_in_polygon(polygon, Coord { x: b.min_lon, y: b.min_lat }) {
        return true;
    }
    // An edge of the polygon crossing an edge of the box.
    let corners = [
        Coord { x: b.min_lon, y: b.min_lat },
        Coord { x: b.max_lon, y: b.min_lat },
        Coord { x: b.max_lon, y: b.max_lat },
        Coord { x: b.min_lon, y: b.max_lat },
    ];
    rings().any(|ring| {
        ring.0.windows(2).any(|edge| (0..4).any(|i| segments_cross(edge[0], edge[1], corners[i], corners[(i + 1) % 4])))
    })
}

fn ring_contains(ring: &[Coord<f64>], p: Coord<f64>) -> bool {
    let mut inside = false;
    for edge in ring.windows(2) {
        let (a, b) = (edge[0], edge[1]);
        if (a.y > p.y) != (b.y > p.y) && p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x {
            inside = !inside;
        }
    }
    inside
}

fn point_in_polygon(polygon: &Polygon<f64>, p: Coord<f64>) -> bool {
    ring_contains(&polygon.exterior().0, p) && !polygon.interiors().iter().any(|hole| ring_contains(&hole.0, p))
}

fn segments_cross(a: Coord<f64>, b: Coord<f64>, c: Coord<f64>, d: Coord<f64>) -> bool {
    let orient = |p: Coord<f64>, q: Coord<f64>, r: Coord<f64>| (q.x - p.x) * (r.y - p.y) - (q.y - p.y) * (r.x - p.x);
    let (d1, d2, d3, d4) = (orient(c, d, a), orient(c, d, b), orient(a, b, c), orient(a, b, d));
    ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0)) && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0))
}

/// An orchard as an OGC feature: no owner, ever (the API has no session here).
fn public_orchard(orchard: &Orchard, tree_count: u32) -> Value {
    let mut feature = orchard_feature(orchard, tree_count);
    strip_private(&mut feature);
    feature
}

fn orchard_page(
    state: &AppState,
    query: &ItemsQuery,
    params: &Params,
    base: &str,
    raw: Option<&str>,
) -> Result<Vec<u8>> {
    let wanted: Vec<(&str, String)> = ORCHARD_FILTER_NAMES
        .iter()
        .filter_map(|name| params.get(name).map(str::trim).filter(|v| !v.is_empty()).map(|v| (*name, fold(v))))
        .collect();
    let orchards = state.cache.orchards();
    let mut all: Vec<&Arc<Orchard>> = orchards
        .values()
        .filter(|o| query.bbox.as_ref().is_none_or(|b| o.boundary.as_ref().is_some_and(|p| polygon_meets_bbox(p, b))))
        .filter(|o| {
            wanted.iter().all(|(name, value)| {
                let have = match *name {
                    "name" => o.name.as_str(),
                    "commune" => o.commune.as_str(),
                    "district" => o.district.as_str(),
                    "province" => o.province.as_str(),
                    _ => o.planting_area_code.as_deref().unwrap_or_default(),
                };
                fold(have) == *value
            })
        })
        .collect();
    // `datetime` is checked but matches every orchard: orchards carry no time
    // (OGC API – Features 1.0, 7.15.4).
    let _ = query.time;
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let matched = all.len();
    let after: Option<&str> = query.cursor.as_deref();
    let rest: Vec<&Arc<Orchard>> = all.into_iter().filter(|o| after.is_none_or(|c| o.id.as_str() > c)).collect();
    let next = (rest.len() > query.limit).then(|| rest[query.limit - 1].id.as_str().to_string());
    let set = state.cache.read();
    let features: Vec<Value> =
        rest.iter().take(query.limit).map(|o| public_orchard(o, set.orchard_tree_count(&o.id))).collect();
    drop(set);
    let page = Page {
        kind: "FeatureCollection",
        number_returned: features.len(),
        features,
        number_matched: matched,
        time_stamp: time(&Utc::now()),
        links: page_links(base, Collection::Orchards, raw, next.as_deref()),
    };
    serde_json::to_vec(&page).map_err(|e| AppError::Internal(format!("cannot encode JSON: {e}")))
}

/// `GET /ogc/collections/{collectionId}/items/{featureId}`: one feature (a
/// tree by id or tag code, an orchard by id); 404 when there is none.
pub async fn item(
    State(state): State<AppState>,
    Path((collection_id, feature_id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let which = Collection::parse(&collection_id)?;
    check_format(&Params::parse(raw.as_deref()))?;
    let base = base_url(&headers);
    let not_found = || AppError::NotFound(format!("no feature {feature_id:?} in collection {}", which.id()));
    let mut feature = match which {
        Collection::Trees => {
            let set = state.cache.read();
            let by_id = feature_id.parse::<i64>().ok().and_then(|id| set.get(TreeId(id)));
            let tree = by_id
                .or_else(|| TreeCode::parse(&feature_id).ok().and_then(|c| set.by_code(&c)))
                .ok_or_else(not_found)?;
            serde_json::to_value(TreeFeature::new(tree, None))
                .map_err(|e| AppError::Internal(format!("cannot encode JSON: {e}")))?
        }
        Collection::Orchards => {
            let id = OrchardId::new(feature_id.as_str()).map_err(|_| not_found())?;
            let orchard = state.cache.orchard(&id).ok_or_else(not_found)?;
            let count = state.cache.read().orchard_tree_count(&id);
            public_orchard(&orchard, count)
        }
    };
    let id = feature.get("id").map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let collection_url = format!("{base}/ogc/collections/{}", which.id());
    feature["links"] = json!([
        link(format!("{collection_url}/items/{}", id.unwrap_or_default()), "self", GEOJSON, "This feature"),
        link(collection_url, "collection", JSON, "The collection"),
    ]);
    respond_json(GEOJSON, &feature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_core::LonLat;

    #[test]
    fn datetime_forms() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let r = parse_datetime("2025-03-01T08:00:00Z").unwrap();
        assert!(r.contains(t("2025-03-01T08:00:00Z")));
        assert!(!r.contains(t("2025-03-01T08:00:00.001Z")));
        let r = parse_datetime("2025-03-01").unwrap();
        assert!(r.contains(t("2025-03-01T23:59:59Z")) && !r.contains(t("2025-03-02T00:00:00Z")));
        let r = parse_datetime("../2025-03-01T00:00:00+07:00").unwrap();
        assert!(r.contains(t("2000-01-01T00:00:00Z")) && r.contains(t("2025-02-28T17:00:00Z")));
        assert!(!r.contains(t("2025-02-28T17:00:01Z")));
        let r = parse_datetime("2025-01-01/..").unwrap();
        assert!(r.contains(t("2030-01-01T00:00:00Z")) && !r.contains(t("2024-12-31T23:59:59Z")));
        let r = parse_datetime("2025-01-01/2025-01-31").unwrap();
        assert!(r.contains(t("2025-01-31T12:00:00Z")) && !r.contains(t("2025-02-01T00:00:00Z")));
        assert!(parse_datetime("/2025-01-01").is_ok());
        for bad in ["yesterday", "../..", "/", "2025-02-01/2025-01-01", "2025-13-01", "2025-01-01T00:00:00"] {
            let e = parse_datetime(bad).unwrap_err().to_string();
            assert!(e.starts_with("datetime:"), "{bad}: {e}");
        }
    }

    #[test]
    fn polygon_and_box() {
        let ring = [
            LonLat::new(0.0, 0.0),
            LonLat::new(10.0, 0.0),
            LonLat::new(10.0, 10.0),
            LonLat::new(0.0, 10.0),
            LonLat::new(0.0, 0.0),
        ];
        let p = geo_core::polygon_from_ring(&ring);
        let b = |a: f64, b: f64, c: f64, d: f64| BBox { min_lon: a, min_lat: b, max_lon: c, max_lat: d };
        assert!(polygon_meets_bbox(&p, &b(2.0, 2.0, 3.0, 3.0)), "box inside");
        assert!(polygon_meets_bbox(&p, &b(-1.0, -1.0, 11.0, 11.0)), "polygon inside");
        assert!(polygon_meets_bbox(&p, &b(-1.0, 4.0, 11.0, 5.0)), "crossing, no vertex inside either");
        assert!(!polygon_meets_bbox(&p, &b(11.0, 0.0, 12.0, 10.0)), "beside");
        // A triangle whose envelope meets the box but not the triangle.
        let tri = geo_core::polygon_from_ring(&[
            LonLat::new(0.0, 0.0),
            LonLat::new(10.0, 0.0),
            LonLat::new(0.0, 10.0),
            LonLat::new(0.0, 0.0),
        ]);
        assert!(!polygon_meets_bbox(&tri, &b(8.0, 8.0, 9.0, 9.0)));
    }

    #[test]
    fn base_url_from_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(base_url(&h), "");
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert_eq!(base_url(&h), "http://127.0.0.1:8080");
        h.insert("x-forwarded-host", HeaderValue::from_static("map.example.org"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(base_url(&h), "https://map.example.org");
        h.insert("x-forwarded-host", HeaderValue::from_static("evil/\"host"));
        assert_eq!(base_url(&h), "");
    }
}
