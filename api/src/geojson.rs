//! GeoJSON (RFC 7946) shapes of trees and orchards.

use chrono::{DateTime, SecondsFormat, Utc};
use geo_core::{Orchard, Tree};
use serde::Serialize;
use serde_json::{Value, json};

/// A GeoJSON Point geometry.
#[derive(Serialize)]
pub struct PointGeometry {
    #[serde(rename = "type")]
    kind: &'static str,
    coordinates: [f64; 2],
}

/// Tree properties as served.
#[derive(Serialize)]
pub struct TreeProperties<'a> {
    id: i64,
    code: &'a str,
    accuracy_m: Option<f64>,
    cultivar: &'a str,
    planted_year: Option<i32>,
    health: &'static str,
    height_m: Option<f64>,
    girth_cm: Option<f64>,
    orchard: &'a str,
    survey_id: Option<i64>,
    created_at: String,
    updated_at: String,
    version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    distance_m: Option<f64>,
}

/// A tree as a GeoJSON Feature.
#[derive(Serialize)]
pub struct TreeFeature<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: i64,
    geometry: PointGeometry,
    properties: TreeProperties<'a>,
}

fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Rounds a distance to the millimetre: finer digits would only be noise.
fn round_mm(d: f64) -> f64 {
    (d * 1000.0).round() / 1000.0
}

impl<'a> TreeFeature<'a> {
    /// The feature for `tree`, with `distance_m` when it answers a distance query.
    pub fn new(tree: &'a Tree, distance_m: Option<f64>) -> Self {
        Self {
            kind: "Feature",
            id: tree.id.0,
            geometry: PointGeometry { kind: "Point", coordinates: [tree.location.lon, tree.location.lat] },
            properties: TreeProperties {
                id: tree.id.0,
                code: tree.code.as_str(),
                accuracy_m: tree.accuracy_m,
                cultivar: tree.cultivar.as_str(),
                planted_year: tree.planted_year,
                health: tree.health.as_str(),
                height_m: tree.height_m,
                girth_cm: tree.girth_cm,
                orchard: tree.orchard_id.as_str(),
                survey_id: tree.survey_id.map(|s| s.0),
                created_at: timestamp(&tree.created_at),
                updated_at: timestamp(&tree.updated_at),
                version: tree.version,
                distance_m: distance_m.map(round_mm),
            },
        }
    }
}

/// A FeatureCollection of trees with OGC-style paging members.
#[derive(Serialize)]
pub struct TreeCollection<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    features: Vec<TreeFeature<'a>>,
    #[serde(rename = "numberMatched", skip_serializing_if = "Option::is_none")]
    number_matched: Option<usize>,
    #[serde(rename = "numberReturned")]
    number_returned: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<Value>,
}

impl<'a> TreeCollection<'a> {
    /// A collection of `features`; `number_matched` counts all matches across pages.
    pub fn new(features: Vec<TreeFeature<'a>>, number_matched: Option<usize>, links: Vec<Value>) -> Self {
        Self { kind: "FeatureCollection", number_returned: features.len(), features, number_matched, links }
    }
}

/// An orchard as a GeoJSON Feature (geometry null when no boundary was surveyed).
pub fn orchard_feature(orchard: &Orchard, tree_count: u32) -> Value {
    let geometry = orchard.boundary.as_ref().map(|poly| {
        let ring = |ls: &geo_types::LineString<f64>| -> Vec<[f64; 2]> { ls.0.iter().map(|c| [c.x, c.y]).collect() };
        let mut rings = vec![ring(poly.exterior())];
        rings.extend(poly.interiors().iter().map(ring));
        json!({ "type": "Polygon", "coordinates": rings })
    });
    json!({
        "type": "Feature",
        "id": orchard.id.as_str(),
        "geometry": geometry,
        "properties": {
            "id": orchard.id.as_str(),
            "name": orchard.name,
            "owner": orchard.owner,
            "commune": orchard.commune,
            "district": orchard.district,
            "province": orchard.province,
            "planting_area_code": orchard.planting_area_code,
            "gln": orchard.gln,
            "tree_count": tree_count,
        }
    })
}
