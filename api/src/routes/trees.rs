//! Tree records and spatial queries.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use geo_core::{BriefFilter, LonLat, Tree, TreeBrief, TreeCode, TreeId, Verdict};
use serde_json::json;

use crate::AppState;
use crate::error::{AppError, Result};
use crate::geojson::{TreeCollection, TreeFeature};
use crate::params::Params;

/// Largest `k` for `/api/trees/nearest`.
pub const MAX_K: usize = 1000;
/// Largest `radius_m` for `/api/trees/within`.
pub const MAX_RADIUS_M: f64 = 5000.0;
/// Largest page size (`limit`).
pub const MAX_LIMIT: usize = 10_000;
/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 100;

fn geojson(body: impl serde::Serialize) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/geo+json")], Json(body)).into_response()
}

/// `GET /api/trees/{id}`: one tree by numeric id or tag code.
/// Answers with its version as `ETag` (send it back in `If-Match` to change
/// the tree); 410 for a removed tree.
pub async fn get_tree(State(state): State<AppState>, Path(key): Path<String>) -> Result<Response> {
    let found = {
        let set = state.cache.read();
        let by_id = key.parse::<i64>().ok().and_then(|id| set.get(TreeId(id)));
        by_id.or_else(|| TreeCode::parse(&key).ok().and_then(|c| set.by_code(&c))).cloned()
    };
    match found {
        Some(tree) => {
            state.metrics.cache_hit("trees");
            let mut response = geojson(TreeFeature::new(&tree, None));
            response.headers_mut().insert(axum::http::header::ETAG, crate::routes::edit::etag(tree.version));
            Ok(response)
        }
        None => match key.parse::<i64>().inspect(|_| state.metrics.cache_miss("trees")) {
            Ok(id) => Err(crate::routes::edit::missing(&state, TreeId(id)).await),
            Err(_) => Err(AppError::NotFound(format!("no tree with id or code {key:?}"))),
        },
    }
}

/// `GET /api/trees`: search. Every part is optional and they combine:
/// - where: `bbox=minLon,minLat,maxLon,maxLat`, and/or a point `lon`,`lat`
///   with an optional `radius_m` (without a radius, trees are taken nearest
///   first until the page is full);
/// - what: the attribute filters of [`Params::tree_filter`];
/// - order: `sort=distance` (the default when a point is given; each feature
///   then has `distance_m`) or `sort=id`;
/// - paging: `limit` (1..=10000, default 100) and the opaque `cursor` of the
///   `next` link. `numberMatched` counts every match (not given when trees
///   are taken nearest-first without a radius: that would mean every tree).
pub async fn list_trees(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let bbox = match params.get("bbox") {
        None | Some("") => None,
        Some(_) => Some(params.bbox()?),
    };
    let point = if params.get("lon").is_some() || params.get("lat").is_some() { Some(params.point()?) } else { None };
    let radius = match params.get("radius_m") {
        None | Some("") => None,
        Some(_) if point.is_none() => return Err(AppError::bad("radius_m", "needs lon and lat")),
        Some(_) => Some(params.f64_in("radius_m", 0.0, MAX_RADIUS_M)?),
    };
    let by_distance = match params.get("sort") {
        None | Some("") => point.is_some(),
        Some("distance") if point.is_some() => true,
        Some("distance") => return Err(AppError::bad("sort", "distance needs lon and lat")),
        Some("id") => false,
        Some(other) => return Err(AppError::bad("sort", format!("{other:?} is not one of id, distance"))),
    };
    if point.is_some() && radius.is_none() && bbox.is_none() && !by_distance {
        return Err(AppError::bad("sort", "sort=id with a point needs radius_m or bbox to bound the search"));
    }
    let limit = params.usize_in("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?;
    let filter = params.tree_filter()?;
    let cursor = params.get("cursor").filter(|c| !c.is_empty());
    let orchards = state.cache.orchards();
    let set = state.cache.read();
    let keep = |id: TreeId| -> Option<&Arc<Tree>> {
        let tree = set.get(id)?;
        if filter.is_empty() {
            return Some(tree);
        }
        let orchard = if filter.needs_orchard() { orchards.get(&tree.orchard_id).map(|o| o.as_ref()) } else { None };
        filter.matches(tree, orchard).then_some(tree)
    };
    // Most candidates are settled by the brief in their index entry, without
    // fetching the tree (a cache miss each in a map of a million).
    let briefs = BriefFilter::new(&filter, &set.cultivars);
    let admits = |id: TreeId, brief: &TreeBrief| match briefs.admits(brief) {
        Verdict::Yes => true,
        Verdict::No => false,
        Verdict::Ask => keep(id).is_some(),
    };
    let in_box = |at: LonLat| bbox.as_ref().is_none_or(|b| b.contains(at));

    let mut page: Vec<(&Arc<Tree>, Option<f64>)> = Vec::with_capacity(limit.min(1024));
    let mut matched: Option<usize> = None;
    let mut next: Option<String> = None;
    if let (Some(at), true) = (point, by_distance) {
        // Keyset on (distance, id): the cursor is the last feature's pair.
        let after = match cursor {
            None => None,
            Some(c) => Some(parse_distance_cursor(c)?),
        };
        let past = |d: f64, id: TreeId| after.is_none_or(|(ad, aid)| (d, id.0) > (ad, aid));
        match radius {
            Some(r) => {
                let mut count = 0;
                for n in set.index.within_radius(at, r) {
                    if !in_box(n.location) || !admits(n.id, &n.brief) {
                        continue;
                    }
                    count += 1;
                    if past(n.distance_m, n.id) && page.len() <= limit {
                        if let Some(tree) = set.get(n.id) {
                            page.push((tree, Some(n.distance_m)));
                        }
                    }
                }
                matched = Some(count);
            }
            None => {
                for n in set.index.nearest_iter(at) {
                    if !in_box(n.location) || !past(n.distance_m, n.id) || !admits(n.id, &n.brief) {
                        continue;
                    }
                    let Some(tree) = set.get(n.id) else { continue };
                    page.push((tree, Some(n.distance_m)));
                    if page.len() > limit {
                        break;
                    }
                }
            }
        }
        if page.len() > limit {
            page.truncate(limit);
            if let Some((t, Some(d))) = page.last() {
                next = Some(format!("d{d}_{}", t.id));
            }
        }
    } else {
        let after = match cursor {
            None => i64::MIN,
            Some(c) => c
                .parse::<i64>()
                .map_err(|_| AppError::bad("cursor", format!("{c:?} is not a cursor from a next link")))?,
        };
        let candidates: Box<dyn Iterator<Item = (TreeId, TreeBrief)> + '_> = match (&bbox, point, radius) {
            (_, Some(at), Some(r)) => Box::new(
                set.index.within_radius(at, r).into_iter().filter(|n| in_box(n.location)).map(|n| (n.id, n.brief)),
            ),
            (Some(b), _, _) => Box::new(set.index.in_bbox(b).map(|e| (e.id, e.brief))),
            (None, _, _) => Box::new(set.index.iter().map(|e| (e.id, e.brief))),
        };
        let mut ids: Vec<TreeId> = Vec::new();
        let mut count = 0;
        for (id, brief) in candidates {
            if !admits(id, &brief) {
                continue;
            }
            count += 1;
            if id.0 > after {
                ids.push(id);
            }
        }
        matched = Some(count);
        // The smallest limit + 1 ids, without sorting all of them.
        if ids.len() > limit + 1 {
            ids.select_nth_unstable(limit);
            ids.truncate(limit + 1);
        }
        ids.sort_unstable();
        if ids.len() > limit {
            ids.truncate(limit);
            next = ids.last().map(|id| id.0.to_string());
        }
        let distance = |t: &Tree| point.map(|at| geo_core::distance_m(at, t.location));
        page.extend(ids.into_iter().filter_map(|id| set.get(id)).map(|t| (t, distance(t))));
    }
    let features: Vec<TreeFeature<'_>> = page.iter().map(|(t, d)| TreeFeature::new(t, *d)).collect();
    let mut links = vec![];
    if let Some(cursor) = next {
        let mut query: Vec<(String, String)> = form_urlencoded::parse(raw.as_deref().unwrap_or_default().as_bytes())
            .into_owned()
            .filter(|(k, _)| k != "cursor")
            .collect();
        query.push(("cursor".into(), cursor));
        let encoded = form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
        links.push(json!({ "rel": "next", "type": "application/geo+json", "href": format!("/api/trees?{encoded}") }));
    }
    Ok(geojson(TreeCollection::new(features, matched, links)))
}

fn parse_distance_cursor(c: &str) -> Result<(f64, i64)> {
    let bad = || AppError::bad("cursor", format!("{c:?} is not a cursor from a next link"));
    let (d, id) = c.strip_prefix('d').and_then(|rest| rest.split_once('_')).ok_or_else(bad)?;
    Ok((d.parse::<f64>().ok().filter(|d| d.is_finite()).ok_or_else(bad)?, id.parse::<i64>().map_err(|_| bad())?))
}

/// `GET /api/trees/nearest?lon=&lat=&k=`: the k nearest trees, nearest first, with `distance_m`.
pub async fn nearest(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let at = params.point()?;
    let k = params.usize_in("k", 1, 1, MAX_K)?;
    let set = state.cache.read();
    let features: Vec<TreeFeature<'_>> = set
        .index
        .nearest(at, k)
        .into_iter()
        .filter_map(|n| set.get(n.id).map(|t| TreeFeature::new(t, Some(n.distance_m))))
        .collect();
    Ok(geojson(TreeCollection::new(features, None, vec![])))
}

/// `GET /api/trees/within?lon=&lat=&radius_m=&limit=`: trees within a radius, nearest first.
pub async fn within(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let at = params.point()?;
    let radius = params.f64_in("radius_m", 0.0, MAX_RADIUS_M)?;
    let limit = params.usize_in("limit", MAX_LIMIT, 1, MAX_LIMIT)?;
    let set = state.cache.read();
    let found = set.index.within_radius(at, radius);
    let matched = found.len();
    let features: Vec<TreeFeature<'_>> = found
        .into_iter()
        .take(limit)
        .filter_map(|n| set.get(n.id).map(|t| TreeFeature::new(t, Some(n.distance_m))))
        .collect();
    Ok(geojson(TreeCollection::new(features, Some(matched), vec![])))
}
