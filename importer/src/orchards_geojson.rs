//! Orchard GeoJSON files: the form of `data/orchards.geojson`.

use std::collections::HashMap;
use std::io::Read;

use geo_core::{Orchard, OrchardId, VIETNAM};
use geo_types::{Coord, LineString, Polygon};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::problem::{FeatureProblem, shorten};

/// What [`read_orchards_geojson`] found in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct OrchardImport {
    /// The file name given to the reader.
    pub file_name: String,
    /// The orchards, in file order, each validated against [`VIETNAM`].
    pub orchards: Vec<Orchard>,
    /// Things done to make a feature usable (e.g. the smaller parts of a MultiPolygon dropped).
    pub warnings: Vec<FeatureProblem>,
}

/// Reads orchards from a GeoJSON FeatureCollection (a lone Feature is accepted too).
///
/// Each feature's `properties` give `id` (required; the Feature's own `id`
/// member is used when the property is absent), `name` and `province`
/// (required), `owner`, `commune`, `district` (optional text) and
/// `planting_area_code` (text or null). The geometry is the orchard boundary:
/// a Polygon, a MultiPolygon (the largest part is kept, with a warning), or
/// null for an orchard without a surveyed boundary. Positions are `[lon, lat]`;
/// a third (altitude) value is ignored. Every orchard is checked with
/// [`Orchard::validate`] against [`VIETNAM`], and ids must be unique.
///
/// All or nothing: if any feature is wrong the result is
/// [`Error::InvalidFeatures`], listing every problem with the feature's index
/// and the field.
pub fn read_orchards_geojson<R: Read>(mut reader: R, file_name: &str) -> Result<OrchardImport> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(|source| Error::Io { file: file_name.to_string(), source })?;
    parse_orchards_geojson(&bytes, file_name)
}

/// [`read_orchards_geojson`] on bytes already in memory.
pub fn parse_orchards_geojson(bytes: &[u8], file_name: &str) -> Result<OrchardImport> {
    let file = file_name.to_string();
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Empty { file });
    }
    let root: Value = serde_json::from_slice(bytes).map_err(|source| Error::Json { file: file.clone(), source })?;
    let not_geojson = |reason: String| Error::NotGeoJson { file: file.clone(), reason };
    let features: Vec<&Value> = match root.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => match root.get("features") {
            Some(Value::Array(features)) => features.iter().collect(),
            _ => return Err(not_geojson("the FeatureCollection has no \"features\" array".into())),
        },
        Some("Feature") => vec![&root],
        Some(other) => {
            return Err(not_geojson(format!(
                "expected a GeoJSON FeatureCollection of orchard polygons, found type {:?}",
                shorten(other)
            )));
        }
        None => {
            return Err(not_geojson(
                "expected a GeoJSON FeatureCollection of orchard polygons (no \"type\" member)".into(),
            ));
        }
    };

    let mut out = OrchardImport { file_name: file.clone(), orchards: Vec::new(), warnings: Vec::new() };
    let mut problems = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, value) in features.into_iter().enumerate() {
        let mut feature = Feature { file: &file, index, id: None, problems: Vec::new(), warnings: Vec::new() };
        if let Some(orchard) = feature.read(value) {
            match seen.get(orchard.id.as_str()) {
                Some(first) => {
                    let first = *first;
                    feature.problem("id", orchard.id.as_str(), format!("appears again (first in features[{first}])"));
                }
                None => {
                    seen.insert(orchard.id.as_str().to_string(), index);
                    out.orchards.push(orchard);
                }
            }
        }
        problems.append(&mut feature.problems);
        out.warnings.append(&mut feature.warnings);
    }
    if problems.is_empty() { Ok(out) } else { Err(Error::InvalidFeatures { file, problems }) }
}

/// One feature being read: collects its problems.
struct Feature<'a> {
    file: &'a str,
    index: usize,
    id: Option<String>,
    problems: Vec<FeatureProblem>,
    warnings: Vec<FeatureProblem>,
}

/// A value for messages: strings as they are, other JSON compactly.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => shorten(s),
        other => shorten(&other.to_string()),
    }
}

impl Feature<'_> {
    fn entry(&self, field: &str, value: &str, reason: impl Into<String>) -> FeatureProblem {
        FeatureProblem {
            file: self.file.to_string(),
            index: self.index,
            id: self.id.clone(),
            field: field.to_string(),
            value: shorten(value),
            reason: reason.into(),
        }
    }

    fn problem(&mut self, field: &str, value: &str, reason: impl Into<String>) {
        let p = self.entry(field, value, reason);
        self.problems.push(p);
    }

    fn warn(&mut self, field: &str, value: &str, reason: impl Into<String>) {
        let p = self.entry(field, value, reason);
        self.warnings.push(p);
    }

    /// A text property: `None` when absent or null; a problem when not text.
    fn text(&mut self, props: &Map<String, Value>, field: &str) -> Option<String> {
        match props.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(other) => {
                self.problem(field, &show(other), "must be text");
                None
            }
        }
    }

    fn read(&mut self, value: &Value) -> Option<Orchard> {
        let Some(obj) = value.as_object() else {
            self.problem("feature", &show(value), "must be a GeoJSON Feature object");
            return None;
        };
        if obj.get("type").and_then(Value::as_str) != Some("Feature") {
            let found = obj.get("type").map(show).unwrap_or_default();
            self.problem("type", &found, "must be \"Feature\"");
            return None;
        }
        let empty = Map::new();
        let props = match obj.get("properties") {
            Some(Value::Object(p)) => p,
            None | Some(Value::Null) => {
                self.problem("properties", "", "are required (id, name, province, ...)");
                &empty
            }
            Some(other) => {
                self.problem("properties", &show(other), "must be an object");
                &empty
            }
        };

        // The id first, so that later problems name the orchard.
        let id_value = props.get("id").filter(|v| !v.is_null()).or_else(|| obj.get("id"));
        let id = match id_value {
            None | Some(Value::Null) => {
                self.problem("id", "", "is required");
                None
            }
            Some(Value::String(s)) => self.orchard_id(s.trim()),
            Some(Value::Number(n)) => self.orchard_id(&n.to_string()),
            Some(other) => {
                self.problem("id", &show(other), "must be text");
                None
            }
        };

        let name = self.text(props, "name");
        let owner = self.text(props, "owner");
        let commune = self.text(props, "commune");
        let district = self.text(props, "district");
        let province = self.text(props, "province");
        let code = self.text(props, "planting_area_code").filter(|c| !c.is_empty());
        let boundary = self.boundary(obj.get("geometry"));

        let id = id?;
        let failed: Vec<String> = self.problems.iter().map(|p| p.field.clone()).collect();
        let orchard = Orchard {
            id,
            name: name.unwrap_or_default(),
            owner: owner.unwrap_or_default(),
            commune: commune.unwrap_or_default(),
            district: district.unwrap_or_default(),
            province: province.unwrap_or_default(),
            planting_area_code: code,
            gln: None,
            boundary: boundary.flatten(),
        };
        match orchard.validate(&VIETNAM) {
            Ok(()) => {}
            Err(geo_core::Error::Invalid(found)) => {
                for p in found.into_iter().filter(|p| !failed.contains(&p.field)) {
                    self.problem(&p.field, &p.value, p.reason);
                }
            }
            Err(other) => self.problem("feature", "", other.to_string()),
        }
        // An unreadable geometry was reported, so any failure leaves a problem.
        self.problems.is_empty().then_some(orchard)
    }

    fn orchard_id(&mut self, text: &str) -> Option<OrchardId> {
        match OrchardId::new(text) {
            Ok(id) => {
                self.id = Some(id.as_str().to_string());
                Some(id)
            }
            Err(e) => {
                let reason = match e {
                    geo_core::Error::Parse { reason, .. } => reason,
                    other => other.to_string(),
                };
                self.problem("id", text, reason);
                None
            }
        }
    }

    /// The boundary: `Some(None)` for a null geometry, `None` when unreadable (reported).
    fn boundary(&mut self, geometry: Option<&Value>) -> Option<Option<Polygon<f64>>> {
        let geometry = match geometry {
            None | Some(Value::Null) => return Some(None),
            Some(Value::Object(g)) => g,
            Some(other) => {
                self.problem("geometry", &show(other), "must be a GeoJSON geometry object or null");
                return None;
            }
        };
        let kind = geometry.get("type").and_then(Value::as_str).unwrap_or("");
        let coordinates = geometry.get("coordinates").unwrap_or(&Value::Null);
        match kind {
            "Polygon" => self.polygon(coordinates, "geometry").map(Some),
            "MultiPolygon" => {
                let Some(parts) = coordinates.as_array() else {
                    self.problem(
                        "geometry",
                        &show(coordinates),
                        "MultiPolygon coordinates must be an array of polygons",
                    );
                    return None;
                };
                let mut polygons = Vec::with_capacity(parts.len());
                for part in parts {
                    polygons.push(self.polygon(part, "geometry")?);
                }
                let largest = polygons.iter().enumerate().map(|(i, p)| (i, planar_area(p))).fold(
                    None,
                    |best: Option<(usize, f64)>, (i, a)| match best {
                        Some((_, b)) if b >= a => best,
                        _ => Some((i, a)),
                    },
                );
                let Some((keep, _)) = largest else {
                    self.problem("geometry", "", "MultiPolygon has no polygon");
                    return None;
                };
                if polygons.len() > 1 {
                    self.warn(
                        "geometry",
                        "MultiPolygon",
                        format!(
                            "has {} parts; kept the largest (part {keep}) as the boundary and dropped the others",
                            polygons.len()
                        ),
                    );
                }
                Some(Some(polygons.swap_remove(keep)))
            }
            other => {
                self.problem("geometry", other, "must be a Polygon or MultiPolygon (or null)");
                None
            }
        }
    }

    /// A GeoJSON polygon: an array of linear rings, the exterior first.
    fn polygon(&mut self, value: &Value, field: &str) -> Option<Polygon<f64>> {
        let Some(rings) = value.as_array().filter(|r| !r.is_empty()) else {
            self.problem(field, &show(value), "polygon coordinates must be a non-empty array of rings");
            return None;
        };
        let mut out = Vec::with_capacity(rings.len());
        for ring in rings {
            let Some(positions) = ring.as_array() else {
                self.problem(field, &show(ring), "a ring must be an array of [lon, lat] positions");
                return None;
            };
            let mut coords = Vec::with_capacity(positions.len());
            for position in positions {
                let xy = position.as_array().and_then(|p| Some((p.first()?.as_f64()?, p.get(1)?.as_f64()?)));
                let Some((x, y)) = xy else {
                    self.problem(field, &show(position), "a position must be [lon, lat] numbers");
                    return None;
                };
                coords.push(Coord { x, y });
            }
            // geo_types closes rings silently; GeoJSON requires them closed (RFC 7946 3.1.6).
            if coords.len() < 4 {
                self.problem("boundary", &format!("{} positions", coords.len()), "a ring needs at least 4 positions");
                return None;
            }
            if coords.first() != coords.last() {
                self.problem("boundary", "", "ring is not closed (first and last positions differ)");
                return None;
            }
            out.push(LineString(coords));
        }
        let mut rings = out.into_iter();
        let exterior = rings.next()?;
        Some(Polygon::new(exterior, rings.collect()))
    }
}

/// Area in square degrees (exterior minus holes): enough to compare parts of one orchard.
fn planar_area(p: &Polygon<f64>) -> f64 {
    let ring_area =
        |r: &LineString<f64>| r.0.windows(2).map(|w| w[0].x * w[1].y - w[1].x * w[0].y).sum::<f64>().abs() / 2.0;
    ring_area(p.exterior()) - p.interiors().iter().map(ring_area).sum::<f64>()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const RING: &str = "[[108.1,12.6],[108.101,12.6],[108.101,12.601],[108.1,12.601],[108.1,12.6]]";

    fn feature(props: &str, geometry: &str) -> String {
        format!("{{\"type\":\"Feature\",\"geometry\":{geometry},\"properties\":{{{props}}}}}")
    }

    fn good_props(id: &str) -> String {
        format!(
            "\"id\":\"{id}\",\"name\":\"Vườn ông Y Blang Niê\",\"owner\":\"Y Blang Niê\",\"commune\":\"Ea Tiêu\",\
             \"district\":\"Cư Kuin\",\"province\":\"Đắk Lắk\",\"planting_area_code\":\"VN-DLOR-0123\""
        )
    }

    fn polygon() -> String {
        format!("{{\"type\":\"Polygon\",\"coordinates\":[{RING}]}}")
    }

    fn collection(features: &[String]) -> String {
        format!("{{\"type\":\"FeatureCollection\",\"features\":[{}]}}", features.join(","))
    }

    fn parse(text: &str) -> Result<OrchardImport> {
        parse_orchards_geojson(text.as_bytes(), "orchards.geojson")
    }

    fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Err(Error::InvalidFeatures { problems, .. }) => problems.iter().map(ToString::to_string).collect(),
            other => panic!("expected invalid features, got {other:?}"),
        }
    }

    #[test]
    fn a_good_collection_gives_orchards() {
        let text = collection(&[feature(&good_props("DL-1"), &polygon()), feature(&good_props("DL-2"), "null")]);
        let import = parse(&text).unwrap();
        assert!(import.warnings.is_empty());
        assert_eq!(import.orchards.len(), 2);
        let o = &import.orchards[0];
        assert_eq!(o.id.as_str(), "DL-1");
        assert_eq!(o.name, "Vườn ông Y Blang Niê");
        assert_eq!((o.commune.as_str(), o.district.as_str(), o.province.as_str()), ("Ea Tiêu", "Cư Kuin", "Đắk Lắk"));
        assert_eq!(o.planting_area_code.as_deref(), Some("VN-DLOR-0123"));
        let ring = &o.boundary.as_ref().unwrap().exterior().0;
        assert_eq!(ring.len(), 5);
        assert_eq!(ring[1], Coord { x: 108.101, y: 12.6 });
        assert_eq!(import.orchards[1].boundary, None);
    }

    #[test]
    fn optional_properties_and_feature_id() {
        let text = "\u{feff}{\"type\":\"Feature\",\"id\":\"DL-9\",\"geometry\":null,\
                    \"properties\":{\"name\":\"Vườn bà Hoa\",\"province\":\"Đắk Lắk\",\"planting_area_code\":null}}";
        let import = parse(text).unwrap();
        let o = &import.orchards[0];
        assert_eq!(o.id.as_str(), "DL-9");
        assert_eq!((o.owner.as_str(), o.planting_area_code.as_deref()), ("", None));
        let empty_code = feature(&good_props("DL-1").replace("VN-DLOR-0123", " "), "null");
        assert_eq!(parse(&empty_code).unwrap().orchards[0].planting_area_code, None);
    }

    #[test]
    fn multipolygon_keeps_the_largest_part_with_a_warning() {
        let small = "[[[108.2,12.7],[108.2001,12.7],[108.2001,12.7001],[108.2,12.7]]]";
        let geometry = format!("{{\"type\":\"MultiPolygon\",\"coordinates\":[{small},[{RING}]]}}");
        let import = parse(&collection(&[feature(&good_props("DL-1"), &geometry)])).unwrap();
        assert_eq!(import.orchards[0].boundary.as_ref().unwrap().exterior().0.len(), 5);
        assert_eq!(import.orchards[0].boundary.as_ref().unwrap().exterior().0[0], Coord { x: 108.1, y: 12.6 });
        assert_eq!(
            import.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "orchards.geojson: features[0] (DL-1): geometry MultiPolygon: has 2 parts; kept the largest (part 1) as the boundary and dropped the others"
            ]
        );
        let single = format!("{{\"type\":\"MultiPolygon\",\"coordinates\":[[{RING}]]}}");
        assert!(parse(&collection(&[feature(&good_props("DL-1"), &single)])).unwrap().warnings.is_empty());
    }

    #[test]
    fn problems_name_the_feature_and_the_field() {
        let open_ring =
            "{\"type\":\"Polygon\",\"coordinates\":[[[108.1,12.6],[108.101,12.6],[108.101,12.601],[108.1,12.601]]]}";
        let features = [
            feature(&good_props("DL-1"), &polygon()),
            feature(&good_props("DL-2").replace("VN-DLOR-0123", "VN DLOR"), &polygon()),
            feature(&good_props("DL-3"), open_ring),
            feature(&good_props("bad id"), &polygon()),
            feature(&good_props("DL-1"), &polygon()),
            feature(&good_props("DL-5").replace("Đắk Lắk", ""), "{\"type\":\"Point\",\"coordinates\":[108.1,12.6]}"),
            feature(
                &good_props("DL-6"),
                "{\"type\":\"Polygon\",\"coordinates\":[[[2.35,48.85],[2.36,48.85],[2.36,48.86],[2.35,48.85]]]}",
            ),
            feature(
                &good_props("DL-7").replace("\"Vườn ông Y Blang Niê\"", "42"),
                "{\"type\":\"Polygon\",\"coordinates\":[[[\"x\",1]]]}",
            ),
            feature(
                &good_props("DL-8"),
                "{\"type\":\"Polygon\",\"coordinates\":[[[108.1,12.6],[108.2,12.6],[108.1,12.6]]]}",
            ),
            "{\"type\":\"Feature\",\"geometry\":null}".to_string(),
            "[1,2]".to_string(),
        ];
        let found = problems(&collection(&features));
        let expected = [
            "orchards.geojson: features[1] (DL-2): planting_area_code VN DLOR: must be 1-40 characters of letters, digits, '-', '.', '/'",
            "orchards.geojson: features[2] (DL-3): boundary: ring is not closed (first and last positions differ)",
            "orchards.geojson: features[3]: id bad id: must be 1-40 characters of A-Z, a-z, 0-9, '-' or '_'",
            "orchards.geojson: features[4] (DL-1): id DL-1: appears again (first in features[0])",
            "orchards.geojson: features[5] (DL-5): geometry Point: must be a Polygon or MultiPolygon (or null)",
            "orchards.geojson: features[5] (DL-5): province: is required",
            "orchards.geojson: features[6] (DL-6): boundary 2.35,48.85: position is outside Vietnam",
            "orchards.geojson: features[7] (DL-7): name 42: must be text",
            "orchards.geojson: features[7] (DL-7): geometry [\"x\",1]: a position must be [lon, lat] numbers",
            "orchards.geojson: features[8] (DL-8): boundary 3 positions: a ring needs at least 4 positions",
            "orchards.geojson: features[9]: properties: are required (id, name, province, ...)",
            "orchards.geojson: features[9]: id: is required",
            "orchards.geojson: features[10]: feature [1,2]: must be a GeoJSON Feature object",
        ];
        assert_eq!(found, expected);
        let message = parse(&collection(&features)).unwrap_err().to_string();
        assert!(
            message.starts_with("orchards.geojson: 13 invalid features: features[1] (DL-2): planting_area_code"),
            "{message}"
        );
        assert!(message.ends_with("; and 3 more"), "{message}");
    }

    #[test]
    fn file_level_errors_name_the_file() {
        let err = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(err("  \n"), "orchards.geojson: the file is empty");
        assert!(
            err("{\"type\":").starts_with("orchards.geojson: not valid JSON: EOF while parsing"),
            "{}",
            err("{\"type\":")
        );
        assert_eq!(
            err("{\"type\":\"Polygon\",\"coordinates\":[]}"),
            "orchards.geojson: expected a GeoJSON FeatureCollection of orchard polygons, found type \"Polygon\""
        );
        assert_eq!(
            err("[]"),
            "orchards.geojson: expected a GeoJSON FeatureCollection of orchard polygons (no \"type\" member)"
        );
        assert_eq!(
            err("{\"type\":\"FeatureCollection\"}"),
            "orchards.geojson: the FeatureCollection has no \"features\" array"
        );
        let deep = "[".repeat(10_000);
        assert!(err(&deep).contains("recursion limit"), "deeply nested JSON is refused, not a stack overflow");
        let empty = parse("{\"type\":\"FeatureCollection\",\"features\":[]}").unwrap();
        assert!(empty.orchards.is_empty());
    }

    #[test]
    fn holes_and_altitudes_are_read() {
        let geometry = "{\"type\":\"Polygon\",\"coordinates\":[\
            [[108.1,12.6,500],[108.101,12.6,500],[108.101,12.601,500],[108.1,12.601,500],[108.1,12.6,500]],\
            [[108.1002,12.6002,0],[108.1003,12.6002,0],[108.1003,12.6003,0],[108.1002,12.6002,0]]]}";
        let import = parse(&collection(&[feature(&good_props("DL-1"), geometry)])).unwrap();
        let b = import.orchards[0].boundary.as_ref().unwrap();
        assert_eq!(b.interiors().len(), 1);
        assert_eq!(b.exterior().0[0], Coord { x: 108.1, y: 12.6 });
    }
}
