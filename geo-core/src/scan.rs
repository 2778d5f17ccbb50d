//! Scan counting and counterfeit flags for QR codes, without personal data.
//!
//! A scan is kept only as a coarse hour ([`coarse_hour`]) and a coarse place
//! ([`coarse_place`], a cell of 0.1° ≈ 11 km): enough to see a code copied onto
//! many labels (scanned too often, in too many places, or in bursts), too coarse
//! to follow a person. No device, address or exact position is needed.
//!
//! A signature proves who issued a code, not that a label is the original: a
//! copied label verifies just as well. [`assess`] compares a code's [`ScanTally`]
//! with what an honest label sees and returns the [`ScanFlag`]s it raises; the
//! thresholds are choices, documented on the constants below.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use geo_core::scan::{self, ScanFlag, Subject};
//!
//! let t = Utc.with_ymd_and_hms(2026, 6, 10, 8, 30, 0).unwrap();
//! let place = scan::coarse_place(108.0512, 12.6803);
//! assert_eq!(place.as_deref(), Some("108.0,12.6"));
//! let tally = scan::tally((0..45).map(|_| (t, place.as_deref())));
//! let flags = scan::assess(Subject::Lot { boxes: Some(10) }, &tally);
//! assert_eq!(flags, vec![ScanFlag::MoreScansThanBoxes { scans: 45, boxes: 10, limit: 40 }]);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Timelike, Utc};
use serde::Serialize;

/// Size of a coarse place cell in degrees of longitude and latitude: 0.1°, about
/// 11.1 km north–south and 10.2–10.9 km east–west in Vietnam (8.5°–23.4° N).
pub const PLACE_CELL_DEG: f64 = 0.1;

/// Expected scans per box of a lot: packer, trader and buyer may each scan it.
pub const LOT_SCANS_PER_BOX: u64 = 3;
/// Scans a lot may have beyond [`LOT_SCANS_PER_BOX`] × boxes (the farmer checking
/// the label, a buyer scanning twice, an inspector).
pub const LOT_SCANS_SLACK: u64 = 10;
/// Most scans of a lot whose number of boxes is unknown.
pub const LOT_MAX_SCANS_WITHOUT_BOXES: u64 = 500;
/// Most scans of a tree tag: tags are scanned by the farmer and survey
/// volunteers, not by the public.
pub const TREE_MAX_SCANS: u64 = 200;
/// Most coarse places a tree tag is scanned from: a tree does not move, so more
/// than a few cells (the farmer's home, a neighbouring cell, a GPS error) means copies.
pub const TREE_MAX_PLACES: u32 = 3;
/// Most coarse places a lot is scanned from: fruit travels from the orchard through
/// packing houses and traders to markets, but not to dozens of places.
pub const LOT_MAX_PLACES: u32 = 25;
/// Most scans of any code within one hour: more is a batch of copied labels being
/// checked, or a script.
pub const MAX_SCANS_PER_HOUR: u64 = 100;

/// `t` truncated to the hour (the only time kept of a scan).
pub fn coarse_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_minute(0).and_then(|t| t.with_second(0)).and_then(|t| t.with_nanosecond(0)).unwrap_or(t)
}

/// The 0.1° × 0.1° cell ([`PLACE_CELL_DEG`], about 11 km) holding a position, named
/// by its south-west corner as `"lon,lat"` with one decimal: (108.0512, 12.6803) →
/// `"108.0,12.6"`, (-0.05, -0.05) → `"-0.1,-0.1"`. A cell includes its south and west
/// edges. Longitude 180 is the same meridian as -180; latitude 90 belongs to the
/// cell below it. `None` for non-finite or out-of-range coordinates.
pub fn coarse_place(lon: f64, lat: f64) -> Option<String> {
    if !lon.is_finite() || !lat.is_finite() || !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
        return None;
    }
    // Integer cell indices, so formatting never shows float noise; a small epsilon
    // keeps values written with one decimal (12.6 = 12.5999…) in their own cell.
    let cell = |v: f64| ((v / PLACE_CELL_DEG) + 1e-9).floor() as i32;
    let mut x = cell(lon);
    if x >= 1800 {
        x = -1800;
    }
    let y = cell(lat).min(899);
    Some(format!("{},{}", tenths(x), tenths(y)))
}

/// A cell index as degrees with one decimal.
fn tenths(i: i32) -> String {
    let sign = if i < 0 { "-" } else { "" };
    let a = i.unsigned_abs();
    format!("{sign}{}.{}", a / 10, a % 10)
}

/// What is known of a code's scans.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanTally {
    /// Number of scans.
    pub scans: u64,
    /// Distinct coarse places ([`coarse_place`]) scanned from.
    pub places: u32,
    /// The first scan's coarse hour.
    pub first: Option<DateTime<Utc>>,
    /// The last scan's coarse hour.
    pub last: Option<DateTime<Utc>>,
    /// Most scans within one coarse hour.
    pub max_per_hour: u64,
}

/// The tally of scans given as (time, coarse place) pairs; a scan without a place
/// counts as a scan but not as a place. Times are reduced to [`coarse_hour`].
pub fn tally<'a>(scans: impl IntoIterator<Item = (DateTime<Utc>, Option<&'a str>)>) -> ScanTally {
    let mut per_hour: BTreeMap<DateTime<Utc>, u64> = BTreeMap::new();
    let mut places: BTreeSet<&str> = BTreeSet::new();
    let mut count = 0u64;
    for (t, place) in scans {
        count += 1;
        *per_hour.entry(coarse_hour(t)).or_default() += 1;
        if let Some(p) = place {
            places.insert(p);
        }
    }
    ScanTally {
        scans: count,
        places: u32::try_from(places.len()).unwrap_or(u32::MAX),
        first: per_hour.keys().next().copied(),
        last: per_hour.keys().next_back().copied(),
        max_per_hour: per_hour.values().copied().max().unwrap_or(0),
    }
}

/// What a code stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A tree tag.
    Tree,
    /// A harvest lot's label, with its number of boxes if known.
    Lot {
        /// Boxes packed (labels printed), if known.
        boxes: Option<u32>,
    },
}

/// A sign that a code may have been copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScanFlag {
    /// A lot scanned more than [`LOT_SCANS_PER_BOX`] × boxes + [`LOT_SCANS_SLACK`] times.
    MoreScansThanBoxes {
        /// Scans so far.
        scans: u64,
        /// Boxes of the lot.
        boxes: u32,
        /// The most scans expected.
        limit: u64,
    },
    /// A code scanned more often than its kind ever is ([`TREE_MAX_SCANS`],
    /// [`LOT_MAX_SCANS_WITHOUT_BOXES`]).
    TooManyScans {
        /// Scans so far.
        scans: u64,
        /// The most scans expected.
        limit: u64,
    },
    /// A code scanned from more coarse places than expected ([`TREE_MAX_PLACES`],
    /// [`LOT_MAX_PLACES`]).
    TooManyPlaces {
        /// Distinct coarse places.
        places: u32,
        /// The most places expected.
        limit: u32,
    },
    /// More than [`MAX_SCANS_PER_HOUR`] scans within one hour.
    Burst {
        /// Most scans within one hour.
        per_hour: u64,
        /// The most expected.
        limit: u64,
    },
}

/// The most scans expected of a lot with `boxes` boxes: 3 × boxes + 10.
pub fn lot_scan_limit(boxes: u32) -> u64 {
    u64::from(boxes).saturating_mul(LOT_SCANS_PER_BOX).saturating_add(LOT_SCANS_SLACK)
}

/// The flags `tally` raises for a code standing for `subject`, in the order: scan
/// count, places, burst. Each limit is the largest value that raises no flag.
pub fn assess(subject: Subject, tally: &ScanTally) -> Vec<ScanFlag> {
    let mut flags = Vec::new();
    let scans = tally.scans;
    match subject {
        Subject::Lot { boxes: Some(boxes) } => {
            let limit = lot_scan_limit(boxes);
            if scans > limit {
                flags.push(ScanFlag::MoreScansThanBoxes { scans, boxes, limit });
            }
        }
        Subject::Lot { boxes: None } => {
            if scans > LOT_MAX_SCANS_WITHOUT_BOXES {
                flags.push(ScanFlag::TooManyScans { scans, limit: LOT_MAX_SCANS_WITHOUT_BOXES });
            }
        }
        Subject::Tree => {
            if scans > TREE_MAX_SCANS {
                flags.push(ScanFlag::TooManyScans { scans, limit: TREE_MAX_SCANS });
            }
        }
    }
    let place_limit = match subject {
        Subject::Tree => TREE_MAX_PLACES,
        Subject::Lot { .. } => LOT_MAX_PLACES,
    };
    if tally.places > place_limit {
        flags.push(ScanFlag::TooManyPlaces { places: tally.places, limit: place_limit });
    }
    if tally.max_per_hour > MAX_SCANS_PER_HOUR {
        flags.push(ScanFlag::Burst { per_hour: tally.max_per_hour, limit: MAX_SCANS_PER_HOUR });
    }
    flags
}

/// A flag in plain English, for the farmer's or the buyer's screen.
pub fn flag_text(flag: &ScanFlag) -> String {
    match flag {
        ScanFlag::MoreScansThanBoxes { scans, boxes, limit } => format!(
            "This label was scanned {scans} times, but its lot has only {boxes} boxes \
             (at most {limit} scans expected). Some labels may be copies."
        ),
        ScanFlag::TooManyScans { scans, limit } => {
            format!("This code was scanned {scans} times, more than the {limit} expected. Some labels may be copies.")
        }
        ScanFlag::TooManyPlaces { places, limit } => format!(
            "This code was scanned in {places} different areas (about 11 km across each), \
             more than the {limit} expected. Some labels may be copies."
        ),
        ScanFlag::Burst { per_hour, limit } => format!(
            "This code was scanned {per_hour} times within one hour, more than the {limit} expected. \
             Some labels may be copies."
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 10, h, m, s).unwrap()
    }

    fn tally_of(scans: u64, places: u32, max_per_hour: u64) -> ScanTally {
        ScanTally { scans, places, first: None, last: None, max_per_hour }
    }

    #[test]
    fn coarse_hour_truncates() {
        let exact = t(8, 59, 59) + chrono::Duration::nanoseconds(999_999_999);
        assert_eq!(coarse_hour(exact), t(8, 0, 0));
        assert_eq!(coarse_hour(t(8, 0, 0)), t(8, 0, 0));
        assert_eq!(coarse_hour(t(0, 0, 1)), t(0, 0, 0));
        // Before the epoch too.
        let old = Utc.with_ymd_and_hms(1969, 12, 31, 23, 30, 5).unwrap();
        assert_eq!(coarse_hour(old), Utc.with_ymd_and_hms(1969, 12, 31, 23, 0, 0).unwrap());
    }

    #[test]
    fn coarse_place_cells() {
        assert_eq!(coarse_place(108.0512, 12.6803).as_deref(), Some("108.0,12.6"));
        assert_eq!(coarse_place(108.0999, 12.6999).as_deref(), Some("108.0,12.6"));
        assert_eq!(coarse_place(108.1, 12.7).as_deref(), Some("108.1,12.7"));
        // Values written with one decimal stay in their own cell despite float error.
        assert_eq!(coarse_place(106.3, 10.3).as_deref(), Some("106.3,10.3"));
        assert_eq!(coarse_place(0.0, 0.0).as_deref(), Some("0.0,0.0"));
        assert_eq!(coarse_place(-0.05, -0.05).as_deref(), Some("-0.1,-0.1"));
        assert_eq!(coarse_place(-73.98, 40.75).as_deref(), Some("-74.0,40.7"));
        assert_eq!(coarse_place(180.0, 90.0).as_deref(), Some("-180.0,89.9"));
        assert_eq!(coarse_place(-180.0, -90.0).as_deref(), Some("-180.0,-90.0"));
    }

    #[test]
    fn coarse_place_rejects_invalid_coordinates() {
        assert_eq!(coarse_place(f64::NAN, 12.0), None);
        assert_eq!(coarse_place(108.0, f64::INFINITY), None);
        assert_eq!(coarse_place(180.01, 12.0), None);
        assert_eq!(coarse_place(108.0, -90.5), None);
        assert_eq!(coarse_place(108.0, 91.0), None);
    }

    #[test]
    fn places_about_11_km_apart_differ() {
        // Buôn Ma Thuột and a farm 15 km north are different places; two trees 50 m apart are not.
        assert_ne!(coarse_place(108.05, 12.67), coarse_place(108.05, 12.81));
        assert_eq!(coarse_place(108.0512, 12.6803), coarse_place(108.0516, 12.6807));
    }

    #[test]
    fn tally_counts_hours_and_places() {
        let scans = vec![
            (t(8, 5, 0), Some("108.0,12.6")),
            (t(8, 55, 0), Some("108.0,12.6")),
            (t(8, 59, 0), None),
            (t(10, 1, 0), Some("106.6,10.7")),
        ];
        let tally = tally(scans);
        assert_eq!(
            tally,
            ScanTally { scans: 4, places: 2, first: Some(t(8, 0, 0)), last: Some(t(10, 0, 0)), max_per_hour: 3 }
        );
        assert_eq!(super::tally(Vec::new()), ScanTally::default());
    }

    #[test]
    fn lot_with_boxes_at_and_around_the_limit() {
        let lot = Subject::Lot { boxes: Some(10) };
        assert_eq!(lot_scan_limit(10), 40);
        assert!(assess(lot, &tally_of(39, 1, 1)).is_empty());
        assert!(assess(lot, &tally_of(40, 1, 1)).is_empty());
        assert_eq!(
            assess(lot, &tally_of(41, 1, 1)),
            vec![ScanFlag::MoreScansThanBoxes { scans: 41, boxes: 10, limit: 40 }]
        );
        // No boxes recorded as packed: only the slack.
        let empty = Subject::Lot { boxes: Some(0) };
        assert!(assess(empty, &tally_of(10, 1, 1)).is_empty());
        assert_eq!(assess(empty, &tally_of(11, 1, 1)).len(), 1);
        // Huge box counts do not overflow.
        assert_eq!(lot_scan_limit(u32::MAX), 3 * u64::from(u32::MAX) + 10);
    }

    #[test]
    fn lot_without_boxes_at_and_around_the_limit() {
        let lot = Subject::Lot { boxes: None };
        assert!(assess(lot, &tally_of(499, 1, 1)).is_empty());
        assert!(assess(lot, &tally_of(500, 1, 1)).is_empty());
        assert_eq!(assess(lot, &tally_of(501, 1, 1)), vec![ScanFlag::TooManyScans { scans: 501, limit: 500 }]);
    }

    #[test]
    fn tree_scans_at_and_around_the_limit() {
        assert!(assess(Subject::Tree, &tally_of(199, 1, 1)).is_empty());
        assert!(assess(Subject::Tree, &tally_of(200, 1, 1)).is_empty());
        assert_eq!(
            assess(Subject::Tree, &tally_of(201, 1, 1)),
            vec![ScanFlag::TooManyScans { scans: 201, limit: 200 }]
        );
        // A lot may be scanned 201 times when it has enough boxes.
        assert!(assess(Subject::Lot { boxes: Some(100) }, &tally_of(201, 1, 1)).is_empty());
    }

    #[test]
    fn places_at_and_around_the_limits() {
        assert!(assess(Subject::Tree, &tally_of(5, 2, 1)).is_empty());
        assert!(assess(Subject::Tree, &tally_of(5, 3, 1)).is_empty());
        assert_eq!(assess(Subject::Tree, &tally_of(5, 4, 1)), vec![ScanFlag::TooManyPlaces { places: 4, limit: 3 }]);
        let lot = Subject::Lot { boxes: Some(100) };
        assert!(assess(lot, &tally_of(50, 4, 1)).is_empty());
        assert!(assess(lot, &tally_of(50, 24, 1)).is_empty());
        assert!(assess(lot, &tally_of(50, 25, 1)).is_empty());
        assert_eq!(assess(lot, &tally_of(50, 26, 1)), vec![ScanFlag::TooManyPlaces { places: 26, limit: 25 }]);
        assert_eq!(
            assess(Subject::Lot { boxes: None }, &tally_of(50, 26, 1)),
            vec![ScanFlag::TooManyPlaces { places: 26, limit: 25 }]
        );
    }

    #[test]
    fn burst_at_and_around_the_limit() {
        for subject in [Subject::Tree, Subject::Lot { boxes: Some(1000) }, Subject::Lot { boxes: None }] {
            assert!(assess(subject, &tally_of(150, 1, 99)).is_empty());
            assert!(assess(subject, &tally_of(150, 1, 100)).is_empty());
            let flags = assess(subject, &tally_of(150, 1, 101));
            assert!(flags.contains(&ScanFlag::Burst { per_hour: 101, limit: 100 }), "{subject:?}: {flags:?}");
        }
    }

    #[test]
    fn several_flags_in_order() {
        let flags = assess(Subject::Tree, &tally_of(1000, 40, 500));
        assert_eq!(
            flags,
            vec![
                ScanFlag::TooManyScans { scans: 1000, limit: 200 },
                ScanFlag::TooManyPlaces { places: 40, limit: 3 },
                ScanFlag::Burst { per_hour: 500, limit: 100 },
            ]
        );
        assert!(assess(Subject::Tree, &ScanTally::default()).is_empty());
    }

    #[test]
    fn flags_serialise_with_a_kind() {
        let v = serde_json::to_value(ScanFlag::MoreScansThanBoxes { scans: 41, boxes: 10, limit: 40 }).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "more_scans_than_boxes", "scans": 41, "boxes": 10, "limit": 40}));
        let v = serde_json::to_value(ScanFlag::Burst { per_hour: 101, limit: 100 }).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "burst", "per_hour": 101, "limit": 100}));
    }

    #[test]
    fn flag_texts_are_plain_and_carry_the_numbers() {
        let texts = [
            flag_text(&ScanFlag::MoreScansThanBoxes { scans: 41, boxes: 10, limit: 40 }),
            flag_text(&ScanFlag::TooManyScans { scans: 201, limit: 200 }),
            flag_text(&ScanFlag::TooManyPlaces { places: 4, limit: 3 }),
            flag_text(&ScanFlag::Burst { per_hour: 101, limit: 100 }),
        ];
        assert_eq!(
            texts[0],
            "This label was scanned 41 times, but its lot has only 10 boxes (at most 40 scans expected). \
             Some labels may be copies."
        );
        assert!(texts[1].contains("201") && texts[1].contains("200"));
        assert!(texts[2].contains("4 different areas") && texts[2].contains("3"));
        assert!(texts[3].contains("101 times within one hour"));
        for text in texts {
            assert!(text.is_ascii(), "{text}");
            assert!(text.ends_with('.'));
        }
    }
}
