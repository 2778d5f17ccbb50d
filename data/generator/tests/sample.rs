//! The committed sample is what the generator writes, and it looks like real orchards.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use chrono::Datelike;
use geo_core::{Health, KNOWN_CULTIVARS, LonLat, VIETNAM, distance_m};
use orchardmap_sample::{FILE_NAMES, Sample, TREES_CSV_HEADER, generate};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sample() -> &'static Sample {
    static SAMPLE: std::sync::OnceLock<Sample> = std::sync::OnceLock::new();
    SAMPLE.get_or_init(generate)
}

/// Local east/north metres around `origin` (equirectangular; fine within an orchard).
fn local(origin: LonLat, p: LonLat) -> (f64, f64) {
    let east = distance_m(origin, LonLat::new(p.lon, origin.lat)).copysign(p.lon - origin.lon);
    let north = distance_m(origin, LonLat::new(origin.lon, p.lat)).copysign(p.lat - origin.lat);
    (east, north)
}

fn inside(ring: &[(f64, f64)], p: (f64, f64)) -> bool {
    let mut inside = false;
    let mut j = ring.len() - 1;
    for i in 0..ring.len() {
        let (a, b) = (ring[i], ring[j]);
        if (a.1 > p.1) != (b.1 > p.1) && p.0 < (b.0 - a.0) * (p.1 - a.1) / (b.1 - a.1) + a.0 {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn distance_to_ring(ring: &[(f64, f64)], p: (f64, f64)) -> f64 {
    ring.windows(2)
        .map(|w| {
            let (a, b) = (w[0], w[1]);
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
            (p.0 - a.0 - t * dx).hypot(p.1 - a.1 - t * dy)
        })
        .fold(f64::INFINITY, f64::min)
}

fn area_m2(ring: &[(f64, f64)]) -> f64 {
    ring.windows(2).map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1).sum::<f64>() / 2.0
}

#[test]
fn committed_files_are_what_the_generator_writes() {
    let dir = tempfile::tempdir().unwrap();
    sample().write_to(dir.path()).unwrap();
    for name in FILE_NAMES {
        let fresh = std::fs::read(dir.path().join(name)).unwrap();
        let committed = std::fs::read(data_dir().join(name))
            .unwrap_or_else(|e| panic!("data/{name}: {e}; run `cargo run -p orchardmap-sample -- --out data`"));
        assert!(
            fresh == committed,
            "data/{name} differs from the generator's output; run `cargo run -p orchardmap-sample -- --out data`"
        );
    }
}

#[test]
fn generation_is_deterministic_and_seeded() {
    assert_eq!(&generate(), sample());
    let other = orchardmap_sample::generate_with_seed(7);
    assert_ne!(other.trees[..10], sample().trees[..10]);
}

#[test]
fn csv_has_the_documented_header_and_one_row_per_tree() {
    let csv = String::from_utf8(sample().trees_csv().unwrap()).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(TREES_CSV_HEADER));
    assert_eq!(lines.count(), sample().trees.len());
    assert!(csv.contains(",Chuồng Bò,"), "Vietnamese cultivar names are kept in UTF-8");
    let row = csv.lines().nth(1).unwrap();
    let lat = row.split(',').next().unwrap();
    assert_eq!(lat.split('.').nth(1).unwrap().len(), 7, "7 decimals: {row}");
}

#[test]
fn geojson_files_parse_and_match_the_sample() {
    let trees: serde_json::Value = serde_json::from_str(&sample().trees_geojson().unwrap()).unwrap();
    let features = trees["features"].as_array().unwrap();
    assert_eq!(features.len(), sample().trees.len());
    let first = &features[0];
    let t = &sample().trees[0];
    assert_eq!(first["geometry"]["coordinates"][0].as_f64(), Some(t.location.lon));
    assert_eq!(first["geometry"]["coordinates"][1].as_f64(), Some(t.location.lat));
    assert_eq!(first["properties"]["orchard"], t.orchard.as_str());

    let orchards: serde_json::Value = serde_json::from_str(&sample().orchards_geojson().unwrap()).unwrap();
    let features = orchards["features"].as_array().unwrap();
    assert_eq!(features.len(), sample().orchards.len());
    for (f, o) in features.iter().zip(&sample().orchards) {
        assert_eq!(f["geometry"]["type"], "Polygon");
        assert_eq!(f["properties"]["id"], o.id.as_str());
        assert_eq!(f["properties"]["province"], "Đắk Lắk");
        match &o.planting_area_code {
            Some(code) => assert_eq!(f["properties"]["planting_area_code"], code.as_str()),
            None => assert!(f["properties"]["planting_area_code"].is_null()),
        }
    }
}

#[test]
fn counts_and_mixes_are_realistic() {
    let s = sample();
    println!("{}", s.summary());
    let n = s.trees.len();
    assert!((9_000..=11_000).contains(&n), "{n} trees");
    assert!((90..=110).contains(&s.orchards.len()), "{} orchards", s.orchards.len());

    let mut per_orchard: HashMap<&str, usize> = HashMap::new();
    let mut cultivars: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dead = 0;
    let mut poor_or_fair = 0;
    for t in &s.trees {
        *per_orchard.entry(t.orchard.as_str()).or_default() += 1;
        *cultivars.entry(t.cultivar).or_default() += 1;
        assert!(KNOWN_CULTIVARS.contains(&t.cultivar));
        assert!((2012..=2023).contains(&t.planted_year), "{}", t.planted_year);
        assert!((2024..=2025).contains(&t.surveyed_at.year()), "{}", t.surveyed_at);
        match t.health {
            Health::Dead => dead += 1,
            Health::Fair | Health::Poor => poor_or_fair += 1,
            Health::Good => {}
        }
    }
    assert_eq!(per_orchard.len(), s.orchards.len(), "every orchard has trees");
    let share = |c: &str| cultivars.get(c).copied().unwrap_or(0) as f64 / n as f64;
    assert!((0.45..=0.65).contains(&share("Ri6")), "Ri6 {}", share("Ri6"));
    assert!((0.22..=0.38).contains(&share("Monthong")), "Monthong {}", share("Monthong"));
    assert!((0.04..=0.12).contains(&share("Musang King")), "Musang King {}", share("Musang King"));
    for minor in ["Black Thorn", "Chuồng Bò", "Khổ Qua Xanh"] {
        assert!(share(minor) > 0.005, "{minor} {}", share(minor));
    }
    let dead_share = dead as f64 / n as f64;
    assert!((0.01..=0.03).contains(&dead_share), "dead {dead_share}");
    assert!((0.1..=0.35).contains(&(poor_or_fair as f64 / n as f64)));

    // Some orchards are (almost) one cultivar.
    let mono = s
        .orchards
        .iter()
        .filter(|o| {
            let trees: Vec<_> = s.trees.iter().filter(|t| t.orchard == o.id).collect();
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for t in &trees {
                *counts.entry(t.cultivar).or_default() += 1;
            }
            counts.values().copied().max().unwrap_or(0) as f64 >= 0.9 * trees.len() as f64
        })
        .count();
    assert!((20..=80).contains(&mono), "{mono} single-cultivar orchards");

    let accuracies: Vec<f64> = s.trees.iter().map(|t| t.accuracy_m).collect();
    let typical = accuracies.iter().filter(|a| (2.0..=8.0).contains(*a)).count();
    assert!(typical as f64 > 0.85 * n as f64, "{typical} of {n} fixes within 2-8 m");
    assert!(accuracies.iter().any(|&a| a > 10.0));
    assert!(accuracies.iter().all(|&a| (1.0..=16.0).contains(&a)));
}

#[test]
fn orchards_are_valid_and_described() {
    let s = sample();
    let mut ids = HashSet::new();
    let mut codes: HashMap<&str, usize> = HashMap::new();
    let mut communes = HashSet::new();
    for o in &s.orchards {
        o.validate(&VIETNAM).unwrap_or_else(|e| panic!("{}: {e}", o.id));
        assert!(ids.insert(o.id.as_str()), "duplicate id {}", o.id);
        let id = o.id.as_str();
        assert!(
            id.starts_with("DL-") && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'),
            "{id}"
        );
        assert!(o.name.starts_with("Vườn ông ") || o.name.starts_with("Vườn bà "), "{}", o.name);
        assert!(o.name.contains(&o.owner));
        assert_eq!(o.province, "Đắk Lắk");
        assert!(!o.commune.is_empty() && !o.district.is_empty());
        communes.insert(o.commune.as_str());
        if let Some(code) = &o.planting_area_code {
            assert!(
                code.len() == 12 && code.starts_with("VN-DLOR-") && code[8..].bytes().all(|b| b.is_ascii_digit()),
                "{code}"
            );
            *codes.entry(code).or_default() += 1;
        }
        let ring = &o.boundary.as_ref().unwrap().exterior().0;
        assert!(ring.len() >= 5 && ring.first() == ring.last());
        for c in ring {
            assert!((12.5..=13.0).contains(&c.y) && (107.9..=108.4).contains(&c.x), "{id}: {c:?}");
        }
        let origin = LonLat::new(ring[0].x, ring[0].y);
        let local_ring: Vec<_> = ring.iter().map(|c| local(origin, LonLat::new(c.x, c.y))).collect();
        let ha = area_m2(&local_ring) / 10_000.0;
        assert!((0.5..=5.0).contains(&ha), "{id}: {ha} ha (counter-clockwise ring expected)");
    }
    assert!(communes.len() >= 6, "{communes:?}");
    let coded = codes.values().sum::<usize>();
    assert!(coded < s.orchards.len() && coded as f64 > 0.6 * s.orchards.len() as f64, "{coded} coded");
    assert!(codes.values().any(|&n| n > 1), "some orchards share a planting-area code");
}

#[test]
fn trees_stand_on_a_grid_inside_their_orchard() {
    let s = sample();
    let mut spacing_ok = 0;
    let mut strictly_inside = 0;
    for o in &s.orchards {
        let ring = &o.boundary.as_ref().unwrap().exterior().0;
        let origin = LonLat::new(ring[0].x, ring[0].y);
        let local_ring: Vec<_> = ring.iter().map(|c| local(origin, LonLat::new(c.x, c.y))).collect();
        let trees: Vec<_> = s.trees.iter().filter(|t| t.orchard == o.id).map(|t| t.location).collect();
        for (i, &p) in trees.iter().enumerate() {
            let nearest = trees
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &q)| distance_m(p, q))
                .fold(f64::INFINITY, f64::min);
            if (6.0..=12.0).contains(&nearest) {
                spacing_ok += 1;
            }
            let xy = local(origin, p);
            if inside(&local_ring, xy) {
                strictly_inside += 1;
            } else {
                let d = distance_to_ring(&local_ring, xy);
                assert!(d < 20.0, "{} tree at {p:?} is {d:.1} m outside its boundary", o.id);
            }
        }
    }
    let n = s.trees.len() as f64;
    println!(
        "nearest neighbour within 6-12 m: {:.1}%, inside boundary: {:.1}%",
        100.0 * spacing_ok as f64 / n,
        100.0 * strictly_inside as f64 / n
    );
    assert!(spacing_ok as f64 > 0.85 * n, "nearest-neighbour spacing 6-12 m for only {spacing_ok} trees");
    assert!(strictly_inside as f64 > 0.98 * n, "only {strictly_inside} trees strictly inside their boundary");
}

#[test]
fn every_tree_passes_validation() {
    for t in &sample().trees {
        t.to_new_tree().validate(&VIETNAM, 2026).unwrap_or_else(|e| panic!("{t:?}: {e}"));
    }
}

#[test]
fn surveys_follow_the_walk_in_working_hours() {
    let s = sample();
    for pair in s.trees.windows(2) {
        if pair[0].orchard == pair[1].orchard {
            assert!(pair[1].surveyed_at > pair[0].surveyed_at, "time runs forward within an orchard");
        }
    }
    for t in &s.trees {
        let local = t.surveyed_at + chrono::Duration::hours(7);
        let hour = chrono::Timelike::hour(&local);
        assert!((7..17).contains(&hour), "surveyed at {local} local time");
    }
}

#[test]
fn file_names_are_the_documented_ones() {
    assert_eq!(FILE_NAMES, ["orchards.geojson", "trees.csv", "trees.geojson"]);
}
