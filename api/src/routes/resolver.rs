//! The GS1 Digital Link resolver and the public pages it leads to.
//!
//! Identifier URLs: `/t/{code}` and `/414/{gln}/254/{code}` (trees),
//! `/l/{code}` and `/01/{gtin}/10/{lot}` (harvest lots). A request for a
//! linkset (`Accept: application/linkset+json`, `?linkType=linkset|all`) gets
//! the item's links; `?linkType=gs1:…` is redirected to that link; a human
//! request without `lang` is redirected to the page in the reader's language
//! (`Accept-Language`), the signature kept; with `lang` the page is served.
//! Every page view counts one scan of the code.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use geo_core::trace::{DigitalLink, LINK_TYPES, Link};
use geo_core::trust::Verdict;
use geo_core::{Lot, LotCode, Orchard, RecordDetails, Tree, TreeCode};
use serde_json::json;

use crate::AppState;
use crate::error::{AppError, Result};
use crate::pages::{self, Genuineness, MiniMap, PlaceView, Switch};
use crate::pages::{Lang, Msg};
use crate::params::Params;
use crate::routes::tiles::origin;

/// What a resolver request asks for.
struct Ask {
    signature: Option<String>,
    link_type: Option<String>,
    lang: Option<Lang>,
    /// A language switch on a page (not counted as a new scan).
    switched: bool,
    linkset: bool,
    base: String,
    accept_language: Option<String>,
}

fn ask(state: &AppState, raw: Option<&str>, headers: &HeaderMap) -> Ask {
    let params = Params::parse(raw);
    let link_type = params.get("linkType").map(str::to_string);
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let linkset =
        accept.contains("application/linkset+json") || matches!(link_type.as_deref(), Some("linkset") | Some("all"));
    Ask {
        signature: params.get("8030").map(str::to_string),
        link_type: link_type.filter(|t| t != "linkset" && t != "all"),
        lang: params.get("lang").and_then(Lang::from_query),
        switched: params.get("via") == Some("switch"),
        linkset,
        base: state.trace.base(&origin(headers)),
        accept_language: headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map(str::to_string),
    }
}

fn page_lang(ask: &Ask) -> Lang {
    ask.lang.unwrap_or_else(|| Lang::negotiate(ask.accept_language.as_deref()))
}

/// `GET /t/{code}`, `/414/{gln}/254/{code}`, `/l/{code}`, `/01/{gtin}/10/{lot}`: one handler, as
/// the path itself is the identifier ([`DigitalLink::parse_path`] checks it: check digits,
/// qualifier order, character sets).
pub async fn resolve(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let ask = ask(&state, raw.as_deref(), &headers);
    match DigitalLink::parse_path(uri.path()) {
        Ok(DigitalLink::Tree { gln, code }) => {
            let long_form = gln.is_some();
            resolve_tree(&state, gln, code, ask, long_form).await
        }
        Ok(DigitalLink::Lot { gtin, code }) => {
            let long_form = gtin.is_some();
            resolve_lot(&state, gtin, code, ask, long_form).await
        }
        Err(e) => Ok(message(&ask, StatusCode::NOT_FOUND, Msg::BadLink, &e.to_string())),
    }
}

fn message(ask: &Ask, status: StatusCode, title: Msg, detail: &str) -> Response {
    let lang = page_lang(ask);
    let switch = Switch { vi: "?lang=vi".into(), en: "?lang=en".into(), zh: "?lang=zh".into() };
    let explained = match title {
        Msg::BadLink => pages::t(lang, Msg::BadLinkDetail),
        _ => pages::t(lang, Msg::UnknownCodeDetail),
    };
    let detail = format!("{explained} ({detail})");
    let mut r = Html(pages::message_page(lang, &switch, status.as_u16(), title, &detail)).into_response();
    *r.status_mut() = status;
    r
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept, Accept-Language"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `path?lang=xx&8030=sig` (query values are URL-safe: a language code, base64url).
fn page_href(path: &str, lang: Lang, signature: Option<&str>, switched: bool) -> String {
    let mut href = format!("{path}?lang={}", lang.code());
    if let Some(sig) = signature {
        href.push_str("&8030=");
        href.push_str(&form_urlencoded::byte_serialize(sig.as_bytes()).collect::<String>());
    }
    if switched {
        href.push_str("&via=switch");
    }
    href
}

fn switch(path: &str, signature: Option<&str>) -> Switch {
    Switch {
        vi: page_href(path, Lang::Vi, signature, true),
        en: page_href(path, Lang::En, signature, true),
        zh: page_href(path, Lang::Zh, signature, true),
    }
}

fn genuineness(v: &Verdict) -> Genuineness {
    match v {
        Verdict::Genuine { .. } => Genuineness::Genuine,
        Verdict::Unsigned => Genuineness::Unsigned,
        Verdict::Tampered => Genuineness::Tampered,
        Verdict::Revoked { .. } => Genuineness::Revoked,
    }
}

/// The linkset of an item, or the redirect for one link type.
fn links_response(anchor: &str, links: &[Link<'_>], ask: &Ask) -> Option<Response> {
    if ask.linkset {
        let mut r = axum::Json(geo_core::trace::linkset(anchor, links)).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/linkset+json"));
        r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept, Accept-Language"));
        return Some(r);
    }
    let wanted = ask.link_type.as_deref()?;
    let Some(kind) = geo_core::trace::link_type(wanted) else {
        let names: Vec<&str> = LINK_TYPES.iter().map(|t| t.name).collect();
        return Some(
            AppError::bad("linkType", format!("{wanted:?} is not offered; use one of {}, linkset", names.join(", ")))
                .into_response(),
        );
    };
    links.iter().find(|l| l.rel == kind.name).map(|l| redirect(&l.href))
}

/// What is answered without the page: the linkset, a link type's redirect, or (a GS1 long form, or
/// no `lang` yet) the redirect to the page in the reader's language, the signature kept.
fn before_page(anchor: &str, links: &[Link<'_>], ask: &Ask, path: &str, long_form: bool) -> Option<Response> {
    if let Some(r) = links_response(anchor, links, ask) {
        return Some(r);
    }
    (ask.lang.is_none() || long_form)
        .then(|| redirect(&page_href(path, page_lang(ask), ask.signature.as_deref(), false)))
}

/// A link with no language of its own.
fn plain_link<'a>(rel: &'a str, href: String, title: &'a str, media_type: &'a str) -> Link<'a> {
    Link { rel, href, title, hreflang: None, media_type }
}

fn lang_page_links<'a>(base: &str, path: &str, sig: Option<&str>, titles: [&'a str; 3]) -> Vec<Link<'a>> {
    [Lang::Vi, Lang::En, Lang::Zh]
        .into_iter()
        .zip(titles)
        .map(|(lang, title)| Link {
            rel: "gs1:pip",
            href: format!("{base}{}", page_href(path, lang, sig, false)),
            title,
            hreflang: Some(lang.code()),
            media_type: "text/html",
        })
        .collect()
}

async fn resolve_tree(
    state: &AppState,
    gln: Option<String>,
    code: TreeCode,
    ask: Ask,
    long_form: bool,
) -> Result<Response> {
    let tree = state.cache.read().by_code(&code).cloned();
    let Some(tree) = tree else {
        return unassigned_tag(state, code, &ask).await;
    };
    let orchard = state.cache.orchard(&tree.orchard_id);
    let orchard_gln = orchard.as_ref().and_then(|o| o.gln.clone());
    if long_form && gln != orchard_gln {
        return Ok(message(
            &ask,
            StatusCode::NOT_FOUND,
            Msg::BadLink,
            &format!("GLN {} / {code}", gln.unwrap_or_default()),
        ));
    }
    let path = format!("/t/{code}");
    let sig = ask.signature.as_deref();
    let anchor = DigitalLink::Tree { gln: orchard_gln.clone(), code }.url(&ask.base);
    let mut links = lang_page_links(&ask.base, &path, sig, ["Cây sầu riêng", "Durian tree", "榴莲树"]);
    links.push(plain_link(
        "gs1:traceability",
        format!("{}/api/trees/{}/records", ask.base, tree.id),
        "Care records",
        "application/json",
    ));
    links.push(plain_link(
        "gs1:epcis",
        format!("{}/api/epcis/events?tree={code}", ask.base),
        "EPCIS events",
        "application/ld+json",
    ));
    links.push(plain_link("gs1:locationInfo", format!("{}/#tree={code}", ask.base), "Map", "text/html"));
    if let Some(r) = before_page(&anchor, &links, &ask, &path, long_form) {
        return Ok(r);
    }
    let lang = page_lang(&ask);
    let candidates: Vec<DigitalLink> =
        [None, orchard_gln].into_iter().map(|gln| DigitalLink::Tree { gln, code }).collect();
    let verdict = state.trace.verdict(&candidates, sig);
    let tally = count_scan(state, code.as_str(), ask.switched).await;
    let flags = geo_core::scan::assess(geo_core::scan::Subject::Tree, &tally);
    let records = state.trace.diary(state.store.as_ref(), tree.id).await?;
    let photo_url = records.iter().rev().find_map(|r| match &r.details {
        RecordDetails::Photo { sha256, .. } => Some(format!("/api/photos/{sha256}?size=thumb")),
        _ => None,
    });
    let recent = records
        .iter()
        .rev()
        .filter(|r| !matches!(r.details, RecordDetails::Photo { .. }))
        .take(10)
        .map(|r| pages::RecordView { date: r.date, kind: r.details.kind().to_string(), summary: summary(&r.details) })
        .collect();
    let page = pages::TreePage {
        code: code.as_str().to_string(),
        cultivar: tree.cultivar.as_str().to_string(),
        planted_year: tree.planted_year,
        health: tree.health,
        height_m: tree.height_m,
        place: place(orchard.as_deref(), &tree.orchard_id),
        map: MiniMap {
            boundary: boundary(orchard.as_deref()),
            points: vec![],
            highlight: Some((tree.location.lon, tree.location.lat)),
            full_map_href: format!("/#tree={code}"),
        },
        records: recent,
        photo_url: photo_url.filter(|_| state.photos.is_some()),
        genuineness: genuineness(&verdict),
        flags: flags.iter().map(geo_core::scan::flag_text).collect(),
        scans: tally.scans,
        switch: switch(&path, sig),
        canonical_url: anchor,
        qr_svg_href: format!("/api/trees/{code}/qr.svg"),
    };
    Ok(html_page(with_place_button(pages::tree_page(&page, lang), code.as_str(), lang)))
}

/// The opt-in "share my approximate place" button under a page (the only
/// script on tree and lot pages): the phone's position is reduced to a
/// ~11 km cell by the server and kept only as that cell.
fn with_place_button(page: String, code: &str, lang: Lang) -> String {
    let (label, thanks) = match lang {
        Lang::Vi => ("Chia sẻ vị trí gần đúng (≈10 km) để giúp phát hiện tem giả", "Cảm ơn bạn."),
        Lang::En => ("Share your approximate place (≈10 km) to help spot copied labels", "Thank you."),
        Lang::Zh => ("分享您的大致位置（约10公里）以帮助识别伪造标签", "谢谢。"),
    };
    let snippet = format!(
        "<p class=\"share\"><button type=\"button\" class=\"secondary wide\" id=\"share-place\">{label}</button></p>\
<script>(function(){{var b=document.getElementById('share-place');if(!b||!navigator.geolocation){{if(b)b.hidden=true;return;}}\
b.addEventListener('click',function(){{b.disabled=true;navigator.geolocation.getCurrentPosition(function(p){{\
fetch('/api/scans/{code}/place',{{method:'POST',headers:{{'content-type':'application/json'}},\
body:JSON.stringify({{lat:p.coords.latitude,lon:p.coords.longitude}})}}).then(function(){{b.textContent={thanks:?};}});\
}},function(){{b.disabled=false;}},{{enableHighAccuracy:false,maximumAge:600000,timeout:20000}});}});}})();</script>",
        label = pages::escape(label),
    );
    match page.rfind("<footer").or_else(|| page.rfind("</body>")) {
        Some(at) => format!("{}{snippet}{}", &page[..at], &page[at..]),
        None => page + &snippet,
    }
}

fn html_page(body: String) -> Response {
    let mut r = Html(body).into_response();
    let h = r.headers_mut();
    // Counted views: never from a shared cache.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::VARY, HeaderValue::from_static("Accept, Accept-Language"));
    r
}

async fn count_scan(state: &AppState, code: &str, switched: bool) -> geo_core::scan::ScanTally {
    if switched {
        if let Some(t) = state.trace.scans.held(code) {
            return t;
        }
    }
    match state.trace.scans.count(state.store.as_ref(), code, None, Utc::now()).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, code, "cannot read scan counts");
            geo_core::scan::ScanTally { scans: 0, places: 0, first: None, last: None, max_per_hour: 0 }
        }
    }
}

/// A record's details in a line (product names and numbers, language-neutral).
fn summary(d: &RecordDetails) -> String {
    match d {
        RecordDetails::Observation { health } => health.map(|h| h.as_str().to_string()).unwrap_or_default(),
        RecordDetails::Fertiliser { product, amount_kg } => match amount_kg {
            Some(kg) => format!("{product}, {kg} kg"),
            None => product.clone(),
        },
        RecordDetails::Spray { product, dose, phi_days, target } => {
            let mut s = format!("{product} {dose}, PHI {phi_days} d");
            if let Some(t) = target {
                s.push_str(&format!(" ({t})"));
            }
            s
        }
        RecordDetails::Flowering { percent } => percent.map(|p| format!("{p}%")).unwrap_or_default(),
        RecordDetails::FruitSet { fruit_count } => fruit_count.to_string(),
        RecordDetails::Harvest { fruit_count, weight_kg } => format!("{fruit_count} × / {weight_kg} kg"),
        RecordDetails::Photo { .. } => String::new(),
    }
}

fn place(orchard: Option<&Orchard>, orchard_id: &geo_core::OrchardId) -> PlaceView {
    match orchard {
        Some(o) => PlaceView {
            orchard_name: o.name.clone(),
            commune: o.commune.clone(),
            district: o.district.clone(),
            province: o.province.clone(),
            planting_area_code: o.planting_area_code.clone(),
        },
        None => PlaceView {
            orchard_name: orchard_id.as_str().to_string(),
            commune: String::new(),
            district: String::new(),
            province: String::new(),
            planting_area_code: None,
        },
    }
}

fn boundary(orchard: Option<&Orchard>) -> Vec<(f64, f64)> {
    orchard
        .and_then(|o| o.boundary.as_ref())
        .map(|p| p.exterior().0.iter().map(|c| (c.x, c.y)).collect())
        .unwrap_or_default()
}

/// A code no tree has: the registration page for an issued tag, else "unknown".
async fn unassigned_tag(state: &AppState, code: TreeCode, ask: &Ask) -> Result<Response> {
    if ask.linkset || ask.link_type.is_some() {
        return Err(AppError::NotFound(format!("no tree has tag {code} yet")));
    }
    if state.store.tag(&code).await?.is_none() {
        return Ok(message(ask, StatusCode::NOT_FOUND, Msg::UnknownCode, code.as_str()));
    }
    let lang = page_lang(ask);
    let page = pages::RegisterPage {
        code: code.as_str().to_string(),
        cultivars: geo_core::KNOWN_CULTIVARS.iter().map(|c| c.to_string()).collect(),
        this_year: crate::routes::edit::this_year(),
        register_endpoint: format!("/api/tags/{code}/register"),
        switch: switch(&format!("/t/{code}"), ask.signature.as_deref()),
        assigned: false,
    };
    Ok(html_page(pages::register_page(&page, lang)))
}

/// A lot by code, from the database.
pub async fn find_lot(state: &AppState, code: &LotCode) -> Result<Option<Lot>> {
    Ok(state.store.lot(code.id()).await?)
}

async fn resolve_lot(
    state: &AppState,
    gtin: Option<String>,
    code: LotCode,
    ask: Ask,
    long_form: bool,
) -> Result<Response> {
    let Some(lot) = find_lot(state, &code).await? else {
        return Ok(message(&ask, StatusCode::NOT_FOUND, Msg::UnknownCode, code.as_str()));
    };
    if long_form && gtin != lot.gtin {
        return Ok(message(
            &ask,
            StatusCode::NOT_FOUND,
            Msg::BadLink,
            &format!("GTIN {} / {code}", gtin.unwrap_or_default()),
        ));
    }
    let path = format!("/l/{code}");
    let sig = ask.signature.as_deref();
    let anchor = DigitalLink::Lot { gtin: lot.gtin.clone(), code: code.clone() }.url(&ask.base);
    let mut links = lang_page_links(&ask.base, &path, sig, ["Lô sầu riêng", "Durian harvest lot", "榴莲批次"]);
    links.push(Link {
        rel: "gs1:traceability",
        href: format!("{}{}#trace", ask.base, page_href(&path, Lang::En, sig, false)),
        title: "Trees, sprays and pre-harvest intervals",
        hreflang: Some("en"),
        media_type: "text/html",
    });
    links.push(Link {
        rel: "gs1:certificationInfo",
        href: format!("{}{}#lab", ask.base, page_href(&path, Lang::En, sig, false)),
        title: "Laboratory results and planting-area code",
        hreflang: Some("en"),
        media_type: "text/html",
    });
    links.push(plain_link(
        "gs1:epcis",
        format!("{}/api/epcis/events?lot={code}", ask.base),
        "EPCIS events",
        "application/ld+json",
    ));
    if let Some(r) = before_page(&anchor, &links, &ask, &path, long_form) {
        return Ok(r);
    }
    let lang = page_lang(&ask);
    let candidates: Vec<DigitalLink> =
        [None, lot.gtin.clone()].into_iter().map(|gtin| DigitalLink::Lot { gtin, code: code.clone() }).collect();
    let verdict = if lot.revoked_at.is_some() {
        Verdict::Revoked { kid: String::new() }
    } else {
        state.trace.verdict(&candidates, sig)
    };
    let tally = count_scan(state, code.as_str(), ask.switched).await;
    let flags = geo_core::scan::assess(geo_core::scan::Subject::Lot { boxes: lot.boxes }, &tally);
    let orchard = match state.cache.orchard(&lot.orchard_id) {
        Some(o) => Some(o),
        None => state.store.orchard(&lot.orchard_id).await?.map(std::sync::Arc::new),
    };
    let (trees, cultivars, points) = lot_trees(state, &lot);
    let mut records = Vec::new();
    for t in trees.iter().take(5_000) {
        records.extend(state.trace.diary(state.store.as_ref(), t.id).await?.iter().cloned());
    }
    let phi = geo_core::phi_checks(&records, lot.harvest_date);
    let page = pages::LotPage {
        code: code.as_str().to_string(),
        place: place(orchard.as_deref(), &lot.orchard_id),
        map: MiniMap {
            boundary: boundary(orchard.as_deref()),
            points,
            highlight: None,
            full_map_href: format!("/#orchard={}", lot.orchard_id),
        },
        harvest_date: lot.harvest_date,
        weight_kg: lot.weight_kg,
        boxes: lot.boxes,
        packing_house: lot.packing_house.clone(),
        domestic: lot.domestic,
        cultivars,
        tree_count: lot.tree_ids.len(),
        lab_results: lot.lab_results.clone(),
        phi,
        genuineness: genuineness(&verdict),
        revoked_reason: lot.revoked_reason.clone(),
        flags: flags.iter().map(geo_core::scan::flag_text).collect(),
        scans: tally.scans,
        switch: switch(&path, sig),
        canonical_url: anchor,
        gtin: lot.gtin.clone(),
    };
    Ok(html_page(with_place_button(pages::lot_page(&page, lang), code.as_str(), lang)))
}

/// A lot's trees held in memory, its cultivars with counts (most first), and up to 500 map points.
type LotTrees = (Vec<std::sync::Arc<Tree>>, Vec<pages::CultivarCount>, Vec<(f64, f64)>);

/// The lot's trees held in memory, its cultivars with counts (most first), and up to 500 map points.
fn lot_trees(state: &AppState, lot: &Lot) -> LotTrees {
    let set = state.cache.read();
    let trees: Vec<std::sync::Arc<Tree>> = lot.tree_ids.iter().filter_map(|id| set.get(*id).cloned()).collect();
    drop(set);
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for t in &trees {
        *counts.entry(t.cultivar.as_str().to_string()).or_insert(0) += 1;
    }
    let mut cultivars: Vec<pages::CultivarCount> =
        counts.into_iter().map(|(cultivar, trees)| pages::CultivarCount { cultivar, trees }).collect();
    cultivars.sort_by(|a, b| b.trees.cmp(&a.trees).then_with(|| a.cultivar.cmp(&b.cultivar)));
    let step = trees.len().div_ceil(500).max(1);
    let points = trees.iter().step_by(step).map(|t| (t.location.lon, t.location.lat)).collect();
    (trees, cultivars, points)
}

/// `GET /.well-known/jwks.json`: the public keys that sign labels.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut r = axum::Json(state.trace.public_keys().to_jwks()).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json"));
    r
}

/// `GET /.well-known/gs1resolver`: what this resolver serves.
pub async fn resolver_description(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = state.trace.base(&origin(&headers));
    axum::Json(json!({
        "name": "orchardmap resolver",
        "resolverRoot": base,
        "supportedPrimaryKeys": ["01", "414"],
        "supportedQualifiers": { "01": ["10"], "414": ["254"] },
        "shortForms": {
            "/t/{code}": "a tree without an orchard GLN (same as /414/{gln}/254/{code} when the orchard has one)",
            "/l/{code}": "a harvest lot without a GTIN (same as /01/{gtin}/10/{lot} when it has one)"
        },
        "linkTypeDefaultCanBeLinkset": false,
        "supportedLinkType": LINK_TYPES.iter().map(|t| json!({"name": t.name, "uri": t.uri, "serves": t.serves})).collect::<Vec<_>>(),
        "linksetMediaType": "application/linkset+json",
        "languages": ["vi", "en", "zh"],
        "signature": {
            "dataAttribute": "8030",
            "algorithm": "Ed25519 over the identifier path, base64url",
            "jwks_uri": format!("{base}/.well-known/jwks.json")
        },
        "epcis": format!("{base}/api/epcis/events"),
    }))
    .into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SharedPlace {
    lat: f64,
    lon: f64,
}

/// `POST /api/scans/{code}/place` `{"lat","lon"}`: a reader of a tree or lot
/// page shares where they are; only the ~11 km cell is kept (no time finer
/// than the hour, nothing about the reader). 204.
pub async fn share_place(
    State(state): State<AppState>,
    Path(code): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let p: SharedPlace = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad("body", format!("expected {{\"lat\", \"lon\"}}: {e}")))?;
    let Some(place) = geo_core::scan::coarse_place(p.lon, p.lat) else {
        return Err(AppError::bad("lat", format!("{}, {} is not a position", p.lat, p.lon)));
    };
    let code = if let Ok(c) = TreeCode::parse(&code) {
        if state.cache.read().by_code(&c).is_none() {
            return Err(AppError::NotFound(format!("no tree {c}")));
        }
        c.as_str().to_string()
    } else {
        let c = LotCode::parse(&code).map_err(|_| AppError::NotFound(format!("no tree or lot {code:?}")))?;
        if find_lot(&state, &c).await?.is_none() {
            return Err(AppError::NotFound(format!("no lot {c}")));
        }
        c.as_str().to_string()
    };
    state.trace.scans.report_place(state.store.as_ref(), &code, place, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
