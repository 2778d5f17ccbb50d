//! Traceability API: harvest lots, pre-printed tags and their registration,
//! label sheets, QR images, EPCIS events and scan flags.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use geo_core::{
    Cultivar, Health, LonLat, Lot, LotCode, LotTrees, NewLot, NewTree, OrchardId, OrchardLocator, Tree, TreeCode,
    VIETNAM,
};
use serde::Deserialize;
use serde_json::json;
use tiles::print::{EcLevel, LabelKind, SheetOptions};

use crate::AppState;
use crate::auth::{Caller, actor, require_admin, require_surveyor};
use crate::error::{AppError, Result};
use crate::params::Params;
use crate::routes::edit::{resolve, this_year};
use crate::routes::tiles::origin;
use crate::trace::{lot_labels, lot_link, tag_labels, tree_labels, tree_link};

/// Today in Vietnam (UTC+7).
fn today() -> chrono::NaiveDate {
    (Utc::now() + chrono::Duration::hours(7)).date_naive()
}

fn lot_code(raw: &str) -> Result<LotCode> {
    LotCode::parse(raw).map_err(|e| AppError::NotFound(format!("no lot {raw:?}: {e}")))
}

async fn load_lot(state: &AppState, raw: &str) -> Result<Lot> {
    let code = lot_code(raw)?;
    crate::routes::resolver::find_lot(state, &code).await?.ok_or_else(|| AppError::NotFound(format!("no lot {code}")))
}

fn lot_json(state: &AppState, lot: &Lot, base: &str) -> serde_json::Value {
    let link = lot_link(lot);
    json!({
        "lot": lot,
        "url": state.trace.signed_url(base, &link),
        "page": format!("{base}/l/{}", lot.code),
        "labels": format!("{base}/api/labels?lot={}&format=pdf", lot.code),
    })
}

/// `POST /api/lots`: a farmer (for their orchards), volunteer or admin creates
/// a harvest lot. The trees must be in the lot's orchard; `whole_orchard`
/// takes every tree it has now. 201 with the lot and its signed URL.
pub async fn create_lot(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response> {
    let user = caller.require()?;
    let new: NewLot = serde_json::from_slice(&body).map_err(|e| AppError::bad("body", format!("is not a lot: {e}")))?;
    if !user.may_tend(&new.orchard_id) {
        return Err(AppError::Forbidden(format!(
            "orchard {} is not assigned to account {}",
            new.orchard_id, user.name
        )));
    }
    let orchard = match state.cache.orchard(&new.orchard_id) {
        Some(o) => (*o).clone(),
        None => state
            .store
            .orchard(&new.orchard_id)
            .await?
            .ok_or_else(|| AppError::bad("orchard_id", format!("orchard {} does not exist", new.orchard_id)))?,
    };
    new.validate(&orchard, today()).map_err(AppError::invalid)?;
    let tree_ids = {
        let set = state.cache.read();
        match &new.trees {
            LotTrees::WholeOrchard => {
                let ids: Vec<_> = set
                    .index
                    .iter()
                    .filter_map(|e| set.get(e.id))
                    .filter(|t| t.orchard_id == new.orchard_id)
                    .map(|t| t.id)
                    .collect();
                if ids.is_empty() {
                    return Err(AppError::bad("trees", format!("orchard {} has no trees", new.orchard_id)));
                }
                ids
            }
            LotTrees::Trees(ids) => {
                for id in ids {
                    match set.get(*id) {
                        None => return Err(AppError::bad("trees", format!("tree {id} does not exist"))),
                        Some(t) if t.orchard_id != new.orchard_id => {
                            return Err(AppError::bad(
                                "trees",
                                format!("tree {id} is in orchard {}, not {}", t.orchard_id, new.orchard_id),
                            ));
                        }
                        Some(_) => {}
                    }
                }
                ids.clone()
            }
        }
    };
    let lot = state.store.create_lot(&new, &tree_ids, &actor(&user)).await?;
    tracing::info!(lot = %lot.code, trees = lot.tree_ids.len(), by = %user.name, "lot created");
    let base = state.trace.base(&origin(&headers));
    Ok((StatusCode::CREATED, Json(lot_json(&state, &lot, &base))).into_response())
}

/// `GET /api/lots?orchard=`: lots, newest first.
pub async fn list_lots(State(state): State<AppState>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let orchard = params
        .get("orchard")
        .map(|o| OrchardId::new(o).map_err(|e| AppError::bad("orchard", e.to_string())))
        .transpose()?;
    let lots = state.store.lots(orchard.as_ref()).await?;
    let base = state.trace.base(&origin(&headers));
    let lots: Vec<_> = lots.iter().map(|l| lot_json(&state, l, &base)).collect();
    Ok(Json(json!({ "lots": lots })).into_response())
}

/// `GET /api/lots/{code}`.
pub async fn get_lot(State(state): State<AppState>, Path(code): Path<String>, headers: HeaderMap) -> Result<Response> {
    let lot = load_lot(&state, &code).await?;
    let base = state.trace.base(&origin(&headers));
    Ok(Json(lot_json(&state, &lot, &base)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    reason: String,
}

/// `POST /api/lots/{code}/revoke` (admin) `{"reason": ...}`: its labels show "revoked" from now on.
pub async fn revoke_lot(
    State(state): State<AppState>,
    Path(code): Path<String>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<Response> {
    let user = require_admin(caller)?;
    let r: Revoke = serde_json::from_slice(&body).map_err(|e| AppError::bad("body", format!("{e}")))?;
    if r.reason.trim().is_empty() || r.reason.chars().count() > 500 {
        return Err(AppError::bad("reason", "give a reason of 1 to 500 characters"));
    }
    let code = lot_code(&code)?;
    let lot = state.store.revoke_lot(code.id(), r.reason.trim(), &actor(&user)).await?;
    let lot = lot.ok_or_else(|| AppError::NotFound(format!("no lot {code}")))?;
    Ok(Json(json!({ "lot": lot })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Issue {
    count: u32,
}

/// `POST /api/tags` (volunteer, admin) `{"count": N}`: reserves N tag codes; 201 with
/// the codes and the sheet to print.
pub async fn issue_tags(State(state): State<AppState>, caller: Caller, body: axum::body::Bytes) -> Result<Response> {
    let user = require_surveyor(caller)?;
    let r: Issue = serde_json::from_slice(&body).map_err(|e| AppError::bad("body", format!("{e}")))?;
    let batch = state.store.issue_tags(r.count, &actor(&user)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "batch": batch.batch,
            "codes": batch.codes,
            "issued_at": batch.issued_at,
            "labels": format!("/api/labels?batch={}&format=pdf", batch.batch),
        })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    lon: f64,
    lat: f64,
    #[serde(default)]
    accuracy_m: Option<f64>,
    cultivar: String,
    #[serde(default)]
    planted_year: Option<i32>,
    health: Health,
    #[serde(default)]
    height_m: Option<f64>,
    #[serde(default)]
    orchard: Option<String>,
    #[serde(default)]
    reassign: bool,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/tags/{code}/register` (volunteer, admin): puts an issued tag on
/// the tree standing at the phone's position. The orchard is the one given or
/// the one whose boundary holds the position. A tag already on a tree: 409,
/// unless an admin sends `"reassign": true` (the tree's record then takes the
/// new values; recorded in its history and in the tag's assignments).
pub async fn register_tag(
    State(state): State<AppState>,
    Path(code): Path<String>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<Response> {
    let user = require_surveyor(caller)?;
    let code = TreeCode::parse(&code).map_err(|e| AppError::NotFound(format!("no tag {code:?}: {e}")))?;
    let r: Register =
        serde_json::from_slice(&body).map_err(|e| AppError::bad("body", format!("is not a registration: {e}")))?;
    if state.store.tag(&code).await?.is_none() {
        return Err(AppError::NotFound(format!("tag {code} was never issued (orchardmap tags issue)")));
    }
    let location = LonLat::new(r.lon, r.lat);
    let orchard_id = match &r.orchard {
        Some(o) => OrchardId::new(o.as_str()).map_err(|e| AppError::bad("orchard", e.to_string()))?,
        None => {
            let orchards = state.cache.orchards();
            let locator = OrchardLocator::new(orchards.values().map(|o| o.as_ref()));
            locator.locate(location).cloned().ok_or_else(|| {
                AppError::bad(
                    "orchard",
                    format!("position {:.6}, {:.6} is inside no known orchard: choose the orchard", r.lat, r.lon),
                )
            })?
        }
    };
    if state.cache.orchard(&orchard_id).is_none() && state.store.orchard(&orchard_id).await?.is_none() {
        return Err(AppError::bad("orchard", format!("orchard {orchard_id} does not exist")));
    }
    let new = NewTree {
        code: Some(code),
        location,
        accuracy_m: r.accuracy_m,
        cultivar: Cultivar::new(&r.cultivar),
        planted_year: r.planted_year,
        health: r.health,
        height_m: r.height_m,
        girth_cm: None,
        orchard_id,
        survey_id: None,
    };
    new.validate(&VIETNAM, this_year()).map_err(AppError::invalid)?;
    let who = actor(&user);
    let existing = state.cache.read().by_code(&code).cloned();
    let (tree, reassign, status) = match existing {
        None => match state.store.create_tree(new, &who).await {
            Ok(tree) => (tree, false, StatusCode::CREATED),
            Err(store::Error::DuplicateCode(_)) => {
                return Err(AppError::Conflict(format!(
                    "tag {code} is already on a tree; only an admin can re-assign it"
                )));
            }
            Err(e) => return Err(e.into()),
        },
        Some(current) => {
            if !r.reassign {
                return Err(AppError::Conflict(format!(
                    "tag {code} is already on tree {}; only an admin can re-assign it (\"reassign\": true)",
                    current.id
                )));
            }
            if !user.is_admin() {
                return Err(AppError::Forbidden(format!("re-assigning tag {code} needs an admin account")));
            }
            let edited = Tree {
                location: new.location,
                accuracy_m: new.accuracy_m,
                cultivar: new.cultivar,
                planted_year: new.planted_year,
                health: new.health,
                height_m: new.height_m,
                orchard_id: new.orchard_id,
                ..Tree::clone(&current)
            };
            (state.store.edit_tree(&edited, &who).await?, true, StatusCode::OK)
        }
    };
    state.cache.apply(tree.clone());
    state
        .store
        .record_tag_assignment(&store::TagAssignment {
            code,
            tree_id: tree.id,
            reassign,
            by: user.name.clone(),
            by_user: Some(user.id),
            at: Utc::now(),
            note: r.note.filter(|n| !n.trim().is_empty()),
        })
        .await?;
    tracing::info!(tree = %tree.id, %code, reassign, by = %user.name, "tag registered");
    Ok((status, Json(json!({ "tree": tree, "page": format!("/t/{code}?lang=vi"), "reassigned": reassign })))
        .into_response())
}

/// `GET /api/tags/{code}`: an issued tag, the tree carrying it, and who assigned it.
pub async fn get_tag(State(state): State<AppState>, Path(code): Path<String>) -> Result<Response> {
    let code = TreeCode::parse(&code).map_err(|e| AppError::NotFound(format!("no tag {code:?}: {e}")))?;
    let tag =
        state.store.tag(&code).await?.ok_or_else(|| AppError::NotFound(format!("tag {code} was never issued")))?;
    let tree = state.cache.read().by_code(&code).map(|t| t.id);
    let assignments: Vec<_> = state
        .store
        .tag_assignments(&code)
        .await?
        .into_iter()
        .map(|a| json!({"tree_id": a.tree_id, "action": if a.reassign {"reassign"} else {"assign"}, "by": a.by, "at": a.at, "note": a.note}))
        .collect();
    Ok(Json(json!({
        "code": code, "batch": tag.batch, "issued_at": tag.issued_at, "issued_by": tag.issued_by,
        "tree_id": tree, "assignments": assignments,
    }))
    .into_response())
}

/// QR options from the query: `ec` (L, M, Q, H) and `size` (pixels per module for PNG, total pixels for SVG).
fn qr_options(raw: Option<&str>, default: EcLevel) -> Result<(EcLevel, Option<u32>)> {
    let params = Params::parse(raw);
    let ec = match params.get("ec") {
        None | Some("") => default,
        Some(v) => v.parse().map_err(|_| AppError::bad("ec", format!("{v:?} is not one of L, M, Q, H")))?,
    };
    let size = match params.get("size") {
        None | Some("") => None,
        Some(v) => Some(v.parse::<u32>().map_err(|_| AppError::bad("size", format!("{v:?} is not a whole number")))?),
    };
    Ok((ec, size))
}

fn qr_response(url: &str, ec: EcLevel, size: Option<u32>, png: bool) -> Result<Response> {
    let (bytes, kind): (Vec<u8>, &'static str) = if png {
        let module = size.unwrap_or(8);
        if !(1..=40).contains(&module) {
            return Err(AppError::bad("size", format!("{module} pixels per module: use 1 to 40")));
        }
        (tiles::print::qr_png(url, ec, module).map_err(|e| AppError::bad("id", e.to_string()))?, "image/png")
    } else {
        if let Some(px) = size {
            if !(16..=4096).contains(&px) {
                return Err(AppError::bad("size", format!("{px} pixels: use 16 to 4096")));
            }
        }
        let svg = tiles::print::qr_svg(url, ec, size).map_err(|e| AppError::bad("id", e.to_string()))?;
        (svg.into_bytes(), "image/svg+xml")
    };
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    if let Ok(v) = HeaderValue::from_str(url) {
        h.insert("x-qr-content", v);
    }
    Ok(r)
}

/// `GET /api/trees/{id}/qr.svg|qr.png?ec=&size=` (`PNG` picks the format): the tree's tag, its
/// signed link, level Q by default; `size` is pixels per module for PNG (default 8), the total
/// width for SVG.
pub async fn tree_qr<const PNG: bool>(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let id = resolve(&state, &key)?;
    let tree = state.cache.read().get(id).cloned();
    let Some(tree) = tree else { return Err(crate::routes::edit::missing(&state, id).await) };
    let orchard = state.cache.orchard(&tree.orchard_id);
    let (ec, size) = qr_options(raw.as_deref(), LabelKind::TreeTag.default_ec())?;
    let url = state.trace.signed_url(&state.trace.base(&origin(&headers)), &tree_link(&tree, orchard.as_deref()));
    qr_response(&url, ec, size, PNG)
}

/// `GET /api/lots/{code}/qr.svg|qr.png?ec=&size=`: a lot's label, level M by default.
pub async fn lot_qr<const PNG: bool>(
    State(state): State<AppState>,
    Path(code): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let lot = load_lot(&state, &code).await?;
    let (ec, size) = qr_options(raw.as_deref(), LabelKind::FruitLabel.default_ec())?;
    let url = state.trace.signed_url(&state.trace.base(&origin(&headers)), &lot_link(&lot));
    qr_response(&url, ec, size, PNG)
}

/// Most labels one sheet request prints.
pub const MAX_LABELS: usize = 5_000;

/// `GET /api/labels?orchard=ID | batch=N | lot=CODE [&count=N] &format=pdf|svg [&ec=]` (signed-in):
/// A4 sheets of tree tags (an orchard's trees by code, or a batch of
/// pre-printed tags) or of fruit labels for a lot (`count`, default its boxes).
pub async fn labels(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let user = caller.require()?;
    let params = Params::parse(raw.as_deref());
    let pdf = match params.get("format") {
        None | Some("") | Some("pdf") => true,
        Some("svg") => false,
        Some(other) => return Err(AppError::bad("format", format!("{other:?} is not one of pdf, svg"))),
    };
    let base = state.trace.base(&origin(&headers));
    let (labels, kind, title) = if let Some(o) = params.get("orchard") {
        let id = OrchardId::new(o).map_err(|e| AppError::bad("orchard", e.to_string()))?;
        if !user.may_tend(&id) {
            return Err(AppError::Forbidden(format!("orchard {id} is not assigned to account {}", user.name)));
        }
        let orchard = state.cache.orchard(&id).ok_or_else(|| AppError::NotFound(format!("no orchard {id}")))?;
        let set = state.cache.read();
        let mut trees: Vec<&Tree> =
            set.index.iter().filter_map(|e| set.get(e.id)).filter(|t| t.orchard_id == id).map(|t| t.as_ref()).collect();
        trees.sort_by_key(|t| t.code);
        if trees.len() > MAX_LABELS {
            return Err(AppError::TooLarge(format!(
                "orchard {id} has {} trees; print at most {MAX_LABELS} at a time",
                trees.len()
            )));
        }
        let labels = tree_labels(&state.trace, &base, &trees, Some(&orchard));
        (labels, LabelKind::TreeTag, format!("{} ({id})", orchard.name))
    } else if let Some(b) = params.get("batch") {
        if !user.may_survey() {
            return Err(AppError::Forbidden("pre-printed tags are for volunteer and admin accounts".into()));
        }
        let batch: i64 = b.parse().map_err(|_| AppError::bad("batch", format!("{b:?} is not a batch number")))?;
        let codes = state.store.tag_batch(batch).await?;
        if codes.is_empty() {
            return Err(AppError::NotFound(format!("no tag batch {batch}")));
        }
        (tag_labels(&state.trace, &base, &codes), LabelKind::TreeTag, format!("tags, batch {batch}"))
    } else if let Some(code) = params.get("lot") {
        let lot = load_lot(&state, code).await?;
        if !user.may_tend(&lot.orchard_id) {
            return Err(AppError::Forbidden(format!(
                "orchard {} is not assigned to account {}",
                lot.orchard_id, user.name
            )));
        }
        let count = params.usize_in("count", lot.boxes.map_or(40, |b| b as usize), 1, MAX_LABELS)?;
        let orchard = state.cache.orchard(&lot.orchard_id);
        let labels = lot_labels(&state.trace, &base, &lot, orchard.as_deref(), count);
        (labels, LabelKind::FruitLabel, format!("lot {}", lot.code))
    } else {
        return Err(AppError::bad("orchard", "give orchard=ID, batch=N or lot=CODE"));
    };
    let ec = match params.get("ec") {
        None | Some("") => None,
        Some(v) => {
            Some(v.parse::<EcLevel>().map_err(|_| AppError::bad("ec", format!("{v:?} is not one of L, M, Q, H")))?)
        }
    };
    let opts = SheetOptions { kind, ec, title: Some(title) };
    let render = move || {
        if pdf {
            tiles::print::sheet_pdf(&labels, &opts)
        } else {
            tiles::print::sheet_svg(&labels, &opts).map(String::into_bytes)
        }
    };
    let bytes = tokio::task::spawn_blocking(render)
        .await
        .map_err(|e| AppError::Internal(format!("label task failed: {e}")))?
        .map_err(|e| AppError::bad("labels", e.to_string()))?;
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(if pdf { "application/pdf" } else { "image/svg+xml" }));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(r)
}

/// `GET /api/scans/flagged` (admin): the most scanned codes whose counts look
/// like copied labels, with why.
pub async fn flagged(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    require_admin(caller)?;
    let _ = state.trace.scans.flush(state.store.as_ref()).await;
    let mut out = Vec::new();
    for (code, _) in state.store.most_scanned(1_000).await? {
        let counts = state.store.scan_counts(&code).await?;
        let tally = crate::trace::tally_of(&crate::trace::rows_of(&counts));
        let subject = if let Ok(lc) = LotCode::parse(&code) {
            match state.store.lot(lc.id()).await? {
                Some(l) => geo_core::scan::Subject::Lot { boxes: l.boxes },
                None => continue,
            }
        } else {
            geo_core::scan::Subject::Tree
        };
        let flags = geo_core::scan::assess(subject, &tally);
        if !flags.is_empty() {
            out.push(json!({
                "code": code,
                "scans": tally.scans,
                "places": tally.places,
                "first": tally.first,
                "last": tally.last,
                "flags": flags,
                "why": flags.iter().map(geo_core::scan::flag_text).collect::<Vec<_>>(),
            }));
        }
    }
    Ok(Json(json!({ "flagged": out })).into_response())
}

/// `GET /api/epcis/events?tree=CODE | lot=CODE | orchard=ID`: EPCIS 2.0 JSON-LD
/// document with the tree commissioning, harvest and packing events of the item.
pub async fn epcis_events(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    use geo_core::epcis::{Commissioning, Event, Harvest, Packing};
    let params = Params::parse(raw.as_deref());
    let base = state.trace.base(&origin(&headers));
    let orchard_uri = |id: &OrchardId| -> String {
        match state.cache.orchard(id).and_then(|o| o.gln.clone()) {
            Some(gln) => format!("{base}/414/{gln}"),
            None => format!("{base}/api/orchards/{id}"),
        }
    };
    let commission = |t: &Tree| -> Event {
        let orchard = state.cache.orchard(&t.orchard_id);
        Event::Commissioning(Commissioning {
            tree_uri: tree_link(t, orchard.as_deref()).url(&base),
            at: t.created_at,
            orchard_uri: orchard_uri(&t.orchard_id),
            recorded_at: t.created_at,
        })
    };
    let mut events = Vec::new();
    let lot_events = |lot: &Lot, trees: &[std::sync::Arc<Tree>]| -> Vec<Event> {
        let lot_uri = lot_link(lot).url(&base);
        let tree_uris =
            trees.iter().map(|t| tree_link(t, state.cache.orchard(&t.orchard_id).as_deref()).url(&base)).collect();
        vec![
            Event::Harvest(Harvest {
                lot_uri: lot_uri.clone(),
                tree_uris,
                weight_kg: lot.weight_kg,
                harvest_date: lot.harvest_date,
                at: lot.created_at,
                orchard_uri: orchard_uri(&lot.orchard_id),
                recorded_at: lot.created_at,
                has_gtin: lot.gtin.is_some(),
            }),
            Event::Packing(Packing {
                lot_uri: lot_uri.clone(),
                parent_uri: format!("{lot_uri}#packed"),
                boxes: lot.boxes,
                weight_kg: lot.weight_kg,
                packing_house: lot.packing_house.clone(),
                at: lot.created_at,
                recorded_at: lot.created_at,
                has_gtin: lot.gtin.is_some(),
            }),
        ]
    };
    if let Some(code) = params.get("tree") {
        let code = TreeCode::parse(code).map_err(|e| AppError::bad("tree", e.to_string()))?;
        let tree =
            state.cache.read().by_code(&code).cloned().ok_or_else(|| AppError::NotFound(format!("no tree {code}")))?;
        events.push(commission(&tree));
    } else if let Some(code) = params.get("lot") {
        let lot = load_lot(&state, code).await?;
        let trees: Vec<_> = {
            let set = state.cache.read();
            lot.tree_ids.iter().filter_map(|id| set.get(*id).cloned()).collect()
        };
        events.extend(trees.iter().map(|t| commission(t)));
        events.extend(lot_events(&lot, &trees));
    } else if let Some(o) = params.get("orchard") {
        let id = OrchardId::new(o).map_err(|e| AppError::bad("orchard", e.to_string()))?;
        let trees: Vec<_> = {
            let set = state.cache.read();
            set.index.iter().filter_map(|e| set.get(e.id)).filter(|t| t.orchard_id == id).cloned().collect()
        };
        if trees.len() > 50_000 {
            return Err(AppError::TooLarge(format!("orchard {id} has {} trees; ask per lot or per tree", trees.len())));
        }
        events.extend(trees.iter().map(|t| commission(t)));
        for lot in state.store.lots(Some(&id)).await? {
            let lot_trees: Vec<_> =
                trees.iter().filter(|t| lot.tree_ids.binary_search(&t.id).is_ok()).cloned().collect();
            events.extend(lot_events(&lot, &lot_trees));
        }
    } else {
        return Err(AppError::bad("tree", "give tree=CODE, lot=CODE or orchard=ID"));
    }
    let doc = geo_core::epcis::document(&events, Utc::now());
    let mut r = Json(doc).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/ld+json"));
    Ok(r)
}
