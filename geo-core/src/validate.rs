//! Record validation: every problem at once, each naming its field and value.

use crate::bbox::BBox;
use crate::error::{Error, Problem, Result};
use crate::geodesy::LonLat;
use crate::model::{NewTree, Orchard, Tree};

/// The area where trees are accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// Name used in messages.
    pub name: &'static str,
    /// Bounding box in WGS 84.
    pub bbox: BBox,
}

/// Vietnam's mainland and islands, generously boxed.
pub const VIETNAM: Region =
    Region { name: "Vietnam", bbox: BBox { min_lon: 102.0, min_lat: 8.0, max_lon: 117.5, max_lat: 23.5 } };

/// Earliest planting year we accept: durian trees live long, but not that long.
const EARLIEST_PLANTING: i32 = 1900;

fn check_location(p: LonLat, region: &Region, out: &mut Vec<Problem>) {
    // A point that lands in the region once its parts are exchanged was almost
    // certainly entered as lat,lon: say so, but never swap silently.
    let hint = if region.bbox.contains(LonLat::new(p.lat, p.lon)) && !region.bbox.contains(p) {
        " (values look like lat,lon swapped)"
    } else {
        ""
    };
    let mut ok = true;
    if !p.lat.is_finite() || !(-90.0..=90.0).contains(&p.lat) {
        out.push(Problem::new("lat", p.lat, format!("latitude must be within -90..90{hint}")));
        ok = false;
    }
    if !p.lon.is_finite() || !(-180.0..=180.0).contains(&p.lon) {
        out.push(Problem::new("lon", p.lon, format!("longitude must be within -180..180{hint}")));
        ok = false;
    }
    if ok && !region.bbox.contains(p) {
        out.push(Problem::new(
            "location",
            format!("{},{}", p.lon, p.lat),
            format!("lon,lat is outside {} ({}){hint}", region.name, region.bbox),
        ));
    }
}

fn check_positive(field: &str, v: Option<f64>, max: f64, out: &mut Vec<Problem>) {
    if let Some(v) = v {
        if !v.is_finite() || v <= 0.0 || v > max {
            out.push(Problem::new(field, v, format!("must be a number above 0 and at most {max}")));
        }
    }
}

struct Fields<'a> {
    location: LonLat,
    accuracy_m: Option<f64>,
    cultivar: &'a str,
    planted_year: Option<i32>,
    height_m: Option<f64>,
    girth_cm: Option<f64>,
}

fn check_fields(f: &Fields<'_>, region: &Region, this_year: i32) -> Vec<Problem> {
    let mut out = Vec::new();
    check_location(f.location, region, &mut out);
    if let Some(a) = f.accuracy_m {
        if !a.is_finite() || a < 0.0 {
            out.push(Problem::new("accuracy_m", a, "GPS accuracy must be 0 or more metres"));
        }
    }
    if f.cultivar.trim().is_empty() {
        out.push(Problem::new("cultivar", "", "is required"));
    } else if f.cultivar.chars().count() > 60 {
        out.push(Problem::new("cultivar", f.cultivar, "is longer than 60 characters"));
    }
    if let Some(y) = f.planted_year {
        if y > this_year {
            out.push(Problem::new("planted_year", y, format!("is in the future (this year is {this_year})")));
        } else if y < EARLIEST_PLANTING {
            out.push(Problem::new("planted_year", y, format!("is before {EARLIEST_PLANTING}")));
        }
    }
    check_positive("height_m", f.height_m, 60.0, &mut out);
    check_positive("girth_cm", f.girth_cm, 1000.0, &mut out);
    out
}

fn finish(problems: Vec<Problem>) -> Result<()> {
    if problems.is_empty() { Ok(()) } else { Err(Error::Invalid(problems)) }
}

impl NewTree {
    /// Checks every field; `Err(Error::Invalid)` lists all problems found.
    ///
    /// `this_year` is passed in (rather than read from the clock) so the check is pure.
    pub fn validate(&self, region: &Region, this_year: i32) -> Result<()> {
        finish(check_fields(
            &Fields {
                location: self.location,
                accuracy_m: self.accuracy_m,
                cultivar: self.cultivar.as_str(),
                planted_year: self.planted_year,
                height_m: self.height_m,
                girth_cm: self.girth_cm,
            },
            region,
            this_year,
        ))
    }
}

impl Tree {
    /// Checks every field of a stored tree, as [`NewTree::validate`] does.
    pub fn validate(&self, region: &Region, this_year: i32) -> Result<()> {
        let mut problems = check_fields(
            &Fields {
                location: self.location,
                accuracy_m: self.accuracy_m,
                cultivar: self.cultivar.as_str(),
                planted_year: self.planted_year,
                height_m: self.height_m,
                girth_cm: self.girth_cm,
            },
            region,
            this_year,
        );
        if self.version < 1 {
            problems.push(Problem::new("version", self.version, "must be 1 or more"));
        }
        if self.updated_at < self.created_at {
            problems.push(Problem::new("updated_at", self.updated_at, "is before created_at"));
        }
        finish(problems)
    }
}

impl Orchard {
    /// Checks names and the boundary polygon (closed ring of at least 4 valid positions).
    pub fn validate(&self, region: &Region) -> Result<()> {
        let mut out = Vec::new();
        if self.name.trim().is_empty() {
            out.push(Problem::new("name", "", "is required"));
        }
        if self.province.trim().is_empty() {
            out.push(Problem::new("province", "", "is required"));
        }
        if let Some(code) = &self.planting_area_code {
            let ok = !code.is_empty()
                && code.len() <= 40
                && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '/');
            if !ok {
                out.push(Problem::new(
                    "planting_area_code",
                    code,
                    "must be 1-40 characters of letters, digits, '-', '.', '/'",
                ));
            }
        }
        if let Some(gln) = &self.gln {
            if !crate::gs1::valid_gln(gln) {
                out.push(Problem::new("gln", gln, "must be a 13-digit GS1 GLN with a valid check digit"));
            }
        }
        if let Some(poly) = &self.boundary {
            let ring = &poly.exterior().0;
            if ring.len() < 4 {
                out.push(Problem::new(
                    "boundary",
                    format!("{} positions", ring.len()),
                    "a ring needs at least 4 positions",
                ));
            } else if ring.first() != ring.last() {
                out.push(Problem::new("boundary", "", "ring is not closed (first and last positions differ)"));
            }
            if ring.len() >= 4 {
                use geo::algorithm::Validation;
                for problem in poly.validation_errors() {
                    out.push(Problem::new("boundary", "", problem.to_string()));
                }
            }
            if let Some(c) = ring.iter().find(|c| !region.bbox.contains(LonLat::new(c.x, c.y))) {
                out.push(Problem::new(
                    "boundary",
                    format!("{},{}", c.x, c.y),
                    format!("position is outside {}", region.name),
                ));
            }
        }
        finish(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cultivar, Health, OrchardId};

    fn draft() -> NewTree {
        NewTree {
            code: None,
            location: LonLat::new(108.05, 12.68),
            accuracy_m: Some(3.5),
            cultivar: Cultivar::new("ri 6"),
            planted_year: Some(2018),
            health: Health::Good,
            height_m: Some(6.0),
            girth_cm: None,
            orchard_id: OrchardId::new("DL-001").unwrap(),
            survey_id: None,
        }
    }

    #[test]
    fn good_record_passes_and_cultivar_is_normalised() {
        let t = draft();
        assert_eq!(t.cultivar.as_str(), "Ri6");
        t.validate(&VIETNAM, 2026).unwrap();
    }

    #[test]
    fn every_problem_is_reported_with_field_and_value() {
        let mut t = draft();
        t.location = LonLat::new(108.05, 95.0);
        t.planted_year = Some(2031);
        t.height_m = Some(-2.0);
        t.cultivar = Cultivar::new("  ");
        let Err(Error::Invalid(problems)) = t.validate(&VIETNAM, 2026) else { panic!("expected invalid") };
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["lat", "cultivar", "planted_year", "height_m"]);
        assert_eq!(problems[0].value, "95");
        assert!(problems[2].to_string().contains("2031"));
    }

    #[test]
    fn self_intersecting_boundaries_are_refused() {
        use geo_types::{LineString, Polygon};
        let orchard = |ring: Vec<(f64, f64)>| Orchard {
            id: OrchardId::new("A").unwrap(),
            name: "A".into(),
            owner: String::new(),
            commune: String::new(),
            district: String::new(),
            province: "Đắk Lắk".into(),
            planting_area_code: None,
            gln: None,
            boundary: Some(Polygon::new(LineString::from(ring), vec![])),
        };
        let square = vec![(108.0, 12.0), (108.01, 12.0), (108.01, 12.01), (108.0, 12.01), (108.0, 12.0)];
        orchard(square).validate(&VIETNAM).unwrap();
        let bow_tie = vec![(108.0, 12.0), (108.01, 12.01), (108.01, 12.0), (108.0, 12.01), (108.0, 12.0)];
        let err = orchard(bow_tie).validate(&VIETNAM).unwrap_err().to_string();
        assert!(err.contains("boundary") && err.contains("self-intersection"), "{err}");
    }

    #[test]
    fn swapped_coordinates_are_named_not_fixed() {
        let mut t = draft();
        t.location = LonLat::new(12.68, 108.05);
        let err = t.validate(&VIETNAM, 2026).unwrap_err().to_string();
        assert!(err.contains("lat,lon swapped"), "{err}");
        let mut t = draft();
        t.location = LonLat::new(2.35, 48.85);
        let err = t.validate(&VIETNAM, 2026).unwrap_err().to_string();
        assert!(err.contains("outside Vietnam") && !err.contains("swapped"), "{err}");
    }
}
