//! From the values of one row to a [`Record`]: coordinates (degrees or
//! projected, swapped or not), every field parsed and validated, every
//! problem reported with its field, value, reason and severity.

use chrono::{DateTime, Datelike, Utc};
use geo_core::{Cultivar, LonLat, NewTree, OrchardId, Region, TreeCode, TreeId, TreeRef};

use super::key::{ContentHasher, external_key};
use super::values::{parse_cultivar, parse_health, parse_number, parse_time, parse_year};
use super::{Context, Field, RawRecord, Record, RecordAt};
use crate::problem::{RowProblem, Severity, shorten};
use crate::text::suggest_cultivar;

/// The text of each field in one row, as written (trimmed when read).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Values<'a> {
    slots: [Option<&'a str>; Field::COUNT],
}

impl<'a> Values<'a> {
    pub(crate) fn new() -> Self {
        Values { slots: [None; Field::COUNT] }
    }

    /// Sets the field's text (trimmed; blank text is no value).
    pub(crate) fn set(&mut self, field: Field, text: &'a str) {
        let text = text.trim();
        self.slots[field.index()] = (!text.is_empty()).then_some(text);
    }

    /// Sets the field unless it already has a value.
    pub(crate) fn offer(&mut self, field: Field, text: &'a str) {
        if self.slots[field.index()].is_none() {
            self.set(field, text);
        }
    }

    /// The trimmed, non-empty text of a field.
    pub(crate) fn get(&self, field: Field) -> Option<&'a str> {
        self.slots[field.index()]
    }
}

/// Values parsed in earlier rows: surveys repeat a few orchards and
/// cultivars row after row, so each text is parsed once.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    orchards: Vec<(String, OrchardId)>,
    cultivars: Vec<(String, Cultivar)>,
}

/// Entries kept per kind of value (most recent first).
const CACHED: usize = 16;

fn remember<T: Clone>(entries: &mut Vec<(String, T)>, text: &str, value: &T) {
    if entries.len() == CACHED {
        entries.pop();
    }
    entries.insert(0, (text.to_owned(), value.clone()));
}

/// The region check is done before [`NewTree::validate`], with its own messages.
const WORLD: Region = Region {
    name: "the world",
    bbox: geo_core::BBox { min_lon: -180.0, min_lat: -90.0, max_lon: 180.0, max_lat: 90.0 },
};

const SWAPPED: &str = "values look like lon,lat; pass --swap-xy if the columns are swapped";
const SWAPPED_PROJECTED: &str =
    "values look like northing,easting (in Vietnam X is often the northing); pass --swap-xy if the columns are swapped";

/// Where a row's position comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Position {
    /// Latitude and longitude columns or properties.
    LatLon { lat: f64, lon: f64 },
    /// Easting and northing (or x = longitude, y = latitude in degrees).
    Xy { x: f64, y: f64 },
    /// A Kobo raw geopoint: always WGS 84.
    Geopoint { lat: f64, lon: f64 },
    /// The geometry of a GeoJSON feature, a GPX waypoint or a KML placemark.
    Geometry { x: f64, y: f64 },
}

impl Position {
    /// `(x, y)`: longitude and latitude, or easting and northing.
    fn xy(self) -> (f64, f64) {
        match self {
            Position::LatLon { lat, lon } | Position::Geopoint { lat, lon } => (lon, lat),
            Position::Xy { x, y } | Position::Geometry { x, y } => (x, y),
        }
    }

    /// The values as the file gives them, for messages.
    fn describe(self) -> String {
        match self {
            Position::LatLon { lat, lon } | Position::Geopoint { lat, lon } => format!("lat {lat}, lon {lon}"),
            Position::Xy { x, y } => format!("x {x}, y {y}"),
            Position::Geometry { x, y } => format!("[{x}, {y}]"),
        }
    }
}

fn in_range(p: LonLat) -> bool {
    (-90.0..=90.0).contains(&p.lat) && (-180.0..=180.0).contains(&p.lon)
}

/// Collects the problems of one record and builds it.
pub(crate) struct Builder<'c> {
    ctx: &'c Context,
    at: RecordAt,
    problems: Vec<RowProblem>,
    rejected: bool,
    /// Fields whose value could not be read at all (already reported).
    failed: u32,
    /// The position was reported as unreadable by the format's reader.
    position_reported: bool,
}

impl<'c> Builder<'c> {
    pub(crate) fn new(ctx: &'c Context, at: RecordAt) -> Self {
        Builder { ctx, at, problems: Vec::new(), rejected: false, failed: 0, position_reported: false }
    }

    fn report(&mut self, severity: Severity, field: &str, value: &str, reason: impl Into<String>) {
        self.rejected |= severity == Severity::Rejected;
        self.problems.push(RowProblem {
            file: self.ctx.file.clone(),
            line: self.at.number(),
            field: field.to_owned(),
            value: shorten(value),
            reason: reason.into(),
            severity,
        });
    }

    /// Rejects the record.
    pub(crate) fn reject(&mut self, field: &str, value: &str, reason: impl Into<String>) {
        self.report(Severity::Rejected, field, value, reason);
    }

    /// Rejects the record because its geometry cannot be read.
    pub(crate) fn reject_position(&mut self, field: &str, value: &str, reason: impl Into<String>) {
        self.position_reported = true;
        self.reject(field, value, reason);
    }

    /// Rejects the record because a field could not be read (not UTF-8 ...);
    /// the field then counts as reported, not as missing.
    pub(crate) fn fail(&mut self, field: Field, value: &str, reason: impl Into<String>) {
        self.failed |= 1 << field.index();
        self.reject(field.name(), value, reason);
    }

    fn warn(&mut self, field: &str, value: &str, reason: impl Into<String>) {
        self.report(Severity::Warning, field, value, reason);
    }

    fn has_failed(&self, field: Field) -> bool {
        self.failed & (1 << field.index()) != 0
    }

    fn require(&mut self, field: Field, reason: &str) {
        if !self.has_failed(field) {
            self.reject(field.name(), "", reason);
        }
    }

    fn number(&mut self, values: &Values<'_>, field: Field) -> Option<f64> {
        let text = values.get(field)?;
        match parse_number(text, self.ctx.decimal_comma) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(field, text, e.reason());
                None
            }
        }
    }

    /// Where the row says the tree is, before any conversion.
    fn position(&mut self, values: &Values<'_>, geometry: Option<(f64, f64)>) -> Option<Position> {
        if let Some((x, y)) = geometry {
            return Some(Position::Geometry { x, y });
        }
        let pair = |b: &mut Self, a: Field, c: Field| -> Option<(f64, f64)> {
            let (ta, tc) = (values.get(a), values.get(c));
            let (va, vc) = (b.number(values, a), b.number(values, c));
            if ta.is_none() {
                b.require(a, "is required (the row has no value for it)");
            }
            if tc.is_none() {
                b.require(c, "is required (the row has no value for it)");
            }
            Some((va?, vc?))
        };
        if values.get(Field::Lat).is_some() || values.get(Field::Lon).is_some() {
            return pair(self, Field::Lat, Field::Lon).map(|(lat, lon)| Position::LatLon { lat, lon });
        }
        if values.get(Field::X).is_some() || values.get(Field::Y).is_some() {
            return pair(self, Field::X, Field::Y).map(|(x, y)| Position::Xy { x, y });
        }
        if let Some(raw) = values.get(Field::Geopoint) {
            let mut parts = raw.split_whitespace().map(|p| parse_number(p, false));
            return match (parts.next(), parts.next()) {
                (Some(Ok(lat)), Some(Ok(lon))) => Some(Position::Geopoint { lat, lon }),
                _ => {
                    self.fail(Field::Geopoint, raw, "is not a geopoint \"lat lon [altitude accuracy]\"");
                    None
                }
            };
        }
        let unreadable = (1 << Field::Lat.index()) | (1 << Field::Lon.index()) | (1 << Field::Geopoint.index());
        if self.failed & unreadable == 0 && !self.position_reported {
            self.reject(
                "location",
                "",
                "no coordinates: the row has no lat/lon, x/y or geopoint value and no point geometry",
            );
        }
        None
    }

    /// The position in WGS 84, inside the region; rejects the row otherwise,
    /// naming what looks wrong.
    fn place(&mut self, position: Position) -> Option<LonLat> {
        let swap = self.ctx.opts.swap_xy;
        let (mut x, mut y) = position.xy();
        if swap {
            std::mem::swap(&mut x, &mut y);
        }
        let region = &self.ctx.opts.rules.region;
        let crs = self.ctx.crs.as_ref().filter(|_| !matches!(position, Position::Geopoint { .. }));
        if let Some(crs) = crs.filter(|c| !c.is_geographic()) {
            return match crs.to_wgs84(x, y) {
                Ok(p) if in_range(p) && region.bbox.contains(p) => Some(p),
                converted => {
                    let swapped = crs.to_wgs84(y, x).ok().filter(|q| in_range(*q) && region.bbox.contains(*q));
                    let value = position.describe();
                    match (converted, swapped) {
                        (_, Some(_)) if !swap => self.reject("location", &value, SWAPPED_PROJECTED),
                        (Err(e), _) => self.reject("location", &value, e.to_string()),
                        (Ok(p), _) => self.reject(
                            "location",
                            &value,
                            format!(
                                "is lat {:.6}, lon {:.6} in WGS 84, outside {} ({}); is --crs {} right?",
                                p.lat,
                                p.lon,
                                region.name,
                                bounds(region),
                                crs.name()
                            ),
                        ),
                    }
                    None
                }
            };
        }
        let converted = match crs {
            Some(crs) => match crs.to_wgs84(x, y) {
                Ok(p) => p,
                Err(e) => {
                    self.reject("location", &position.describe(), e.to_string());
                    return None;
                }
            },
            None => LonLat::new(x, y),
        };
        if in_range(converted) && region.bbox.contains(converted) {
            return Some(converted);
        }
        let swapped = LonLat::new(converted.lat, converted.lon);
        let value = position.describe();
        if in_range(swapped) && region.bbox.contains(swapped) {
            let reason = if swap {
                "values look like lat,lon already; --swap-xy was given but the columns are not swapped"
            } else {
                SWAPPED
            };
            self.reject("location", &value, reason);
        } else if matches!(position, Position::Xy { .. }) && crs.is_none() && !in_range(converted) {
            self.reject(
                "location",
                &value,
                "x,y look like projected coordinates in metres, not degrees: pass --crs with their system \
                 (e.g. --crs EPSG:9218 for VN-2000 / TM-3 108°30' in Đắk Lắk)",
            );
        } else if !(-90.0..=90.0).contains(&converted.lat) {
            self.reject("lat", &converted.lat.to_string(), "latitude must be within -90..90");
        } else if !(-180.0..=180.0).contains(&converted.lon) {
            self.reject("lon", &converted.lon.to_string(), "longitude must be within -180..180");
        } else {
            self.reject("location", &value, format!("is outside {} ({})", region.name, bounds(region)));
        }
        None
    }

    fn accuracy(&mut self, accuracy: f64) {
        let rules = &self.ctx.opts.rules;
        let (warn_m, reject_m) = (rules.accuracy_warn_m, rules.accuracy_reject_m);
        if accuracy < 0.0 {
            self.reject("accuracy_m", &accuracy.to_string(), "GPS accuracy must be 0 or more metres");
        } else if accuracy > reject_m {
            let reason = format!("GPS accuracy is worse than {reject_m} m: survey this tree again");
            self.reject("accuracy_m", &accuracy.to_string(), reason);
        } else if accuracy > warn_m {
            self.warn("accuracy_m", &accuracy.to_string(), format!("GPS accuracy is worse than {warn_m} m"));
        }
    }

    fn cultivar(&mut self, cache: &mut Cache, values: &Values<'_>) -> Option<Cultivar> {
        let Some(text) = values.get(Field::Cultivar) else {
            self.require(Field::Cultivar, "is required");
            return None;
        };
        let cultivar = match cache.cultivars.iter().find(|(t, _)| t == text) {
            Some((_, c)) => c.clone(),
            None => {
                let c = parse_cultivar(text);
                remember(&mut cache.cultivars, text, &c);
                c
            }
        };
        if !cultivar.is_known() && cultivar.as_str().chars().count() <= 60 {
            let reason = match suggest_cultivar(text) {
                Some(known) => format!("is not a known cultivar; did you mean {known}?"),
                None => format!("is not a known cultivar (known: {})", geo_core::KNOWN_CULTIVARS.join(", ")),
            };
            self.warn("cultivar", text, reason);
        }
        Some(cultivar)
    }

    fn orchard(&mut self, cache: &mut Cache, values: &Values<'_>) -> Option<OrchardId> {
        let text = values.get(Field::Orchard)?;
        if let Some((_, id)) = cache.orchards.iter().find(|(t, _)| t == text) {
            return Some(id.clone());
        }
        match OrchardId::new(text) {
            Ok(id) => {
                remember(&mut cache.orchards, text, &id);
                Some(id)
            }
            Err(_) => {
                self.reject("orchard", text, "is not an orchard id (1-40 characters of A-Z, a-z, 0-9, '-' or '_')");
                None
            }
        }
    }

    fn surveyed_at(&mut self, values: &Values<'_>) -> Option<DateTime<Utc>> {
        let (field, text, naive_is_utc) = match (values.get(Field::SurveyedAt), values.get(Field::SubmittedAt)) {
            (Some(t), _) => (Field::SurveyedAt, t, false),
            (None, Some(t)) => (Field::SubmittedAt, t, true),
            (None, None) => return None,
        };
        let this_year = self.ctx.opts.rules.this_year;
        match parse_time(text, naive_is_utc) {
            Some(t) if t.year() > this_year => {
                self.reject(field.name(), text, format!("is in the future (this year is {this_year})"));
                None
            }
            Some(t) => Some(t),
            None => {
                self.reject(
                    field.name(),
                    text,
                    "is not a date (e.g. 2024-03-15T08:30:00+07:00, 2024-03-15 08:30 or 15/03/2024 08:30, \
                     taken as Vietnam time)",
                );
                None
            }
        }
    }

    /// The record of something that is not a tree at all (not valid JSON, a
    /// polygon): only the problems reported so far, keyed by its content.
    pub(crate) fn finish_unreadable(self, content: &[u8], raw: RawRecord) -> Record {
        let mut h = ContentHasher::new();
        h.part(b"unreadable");
        h.part(content);
        Record {
            at: self.at,
            key: h.finish(),
            tree: None,
            orchard: None,
            target: None,
            surveyed_at: None,
            external_id: None,
            problems: self.problems,
            raw,
        }
    }

    /// Builds the record from its values and, for formats with one, its
    /// point geometry `(x, y)`; `feature_id` is the format's own record id.
    pub(crate) fn finish(
        mut self,
        cache: &mut Cache,
        values: &Values<'_>,
        geometry: Option<(f64, f64)>,
        feature_id: Option<&str>,
        raw: RawRecord,
    ) -> Record {
        let this_year = self.ctx.opts.rules.this_year;
        // A control character (a NUL byte, an escape) is never part of a survey value: PostgreSQL
        // cannot store a NUL at all, and the rest would reach pages and exports as garbage.
        for field in Field::ALL {
            if let Some(text) = values.get(field).filter(|t| t.chars().any(|c| c.is_control() && c != '\t')) {
                self.fail(field, text, "contains a control character (such as U+0000); the file may be damaged");
            }
        }
        let location = self.position(values, geometry).and_then(|p| self.place(p));

        let mut accuracy = self.number(values, Field::Accuracy);
        if accuracy.is_none() && !self.has_failed(Field::Accuracy) {
            // A Kobo geopoint's fourth value.
            accuracy = values
                .get(Field::Geopoint)
                .and_then(|g| g.split_whitespace().nth(3))
                .and_then(|a| parse_number(a, false).ok());
        }
        if let Some(a) = accuracy {
            self.accuracy(a);
        }

        let cultivar = self.cultivar(cache, values);
        let planted_year = values.get(Field::PlantedYear).and_then(|t| {
            let year = parse_year(t);
            if year.is_none() {
                self.reject("planted_year", t, "is not a year (a whole number such as 2018)");
            }
            year
        });
        let health = match values.get(Field::Health) {
            None => {
                self.require(Field::Health, "is required (good, fair, poor or dead; tốt, khá, yếu or chết)");
                None
            }
            Some(t) => {
                let h = parse_health(t);
                if h.is_none() {
                    self.reject("health", t, "must be good, fair, poor or dead (tốt, khá, yếu or chết)");
                }
                h
            }
        };
        let orchard = self.orchard(cache, values);

        let mut target = None;
        let mut code = None;
        if let Some(t) = values.get(Field::TreeId) {
            match t.parse::<i64>() {
                Ok(id) if id > 0 => target = Some(TreeRef::Id(TreeId(id))),
                _ => self.reject("tree_id", t, "is not a tree id (a whole number above 0)"),
            }
        }
        if let Some(t) = values.get(Field::Code) {
            match TreeCode::parse(t) {
                Ok(c) => {
                    target.get_or_insert(TreeRef::Code(c));
                    code = Some(c);
                }
                Err(e) => self.reject("code", t, e.to_string()),
            }
        }
        let surveyed_at = self.surveyed_at(values);
        let height_m = self.number(values, Field::Height);
        let girth_cm = self.number(values, Field::Girth);
        let external_id = values.get(Field::ExternalId).or(feature_id).map(str::to_owned);

        let mut tree = None;
        if let (Some(location), Some(cultivar), Some(health)) = (location, cultivar, health) {
            let candidate = NewTree {
                code,
                location,
                accuracy_m: accuracy,
                cultivar,
                planted_year,
                health,
                height_m,
                girth_cm,
                orchard_id: match orchard.clone().or_else(|| self.ctx.opts.default_orchard.clone()) {
                    Some(id) => id,
                    None => self.ctx.unassigned.clone(),
                },
                survey_id: None,
            };
            if let Err(geo_core::Error::Invalid(problems)) = candidate.validate(&WORLD, this_year) {
                for p in problems {
                    if !self.problems.iter().any(|q| q.field == p.field) {
                        self.reject(&p.field, &p.value, p.reason);
                    }
                }
            }
            tree = Some(candidate);
        }
        if self.rejected {
            tree = None;
        }

        let key = external_id.as_deref().and_then(external_key).unwrap_or_else(|| {
            let mut h = ContentHasher::new();
            for field in Field::ALL {
                if let Some(text) = values.get(field) {
                    h.part(&[field.index() as u8]);
                    h.part(text.as_bytes());
                }
            }
            if let Some((x, y)) = geometry {
                h.part(b"geometry");
                h.part(&x.to_bits().to_le_bytes());
                h.part(&y.to_bits().to_le_bytes());
            }
            h.finish()
        });
        Record { at: self.at, key, tree, orchard, target, surveyed_at, external_id, problems: self.problems, raw }
    }
}

fn bounds(region: &Region) -> String {
    let b = region.bbox;
    format!("lat {}..{}, lon {}..{}", b.min_lat, b.max_lat, b.min_lon, b.max_lon)
}
