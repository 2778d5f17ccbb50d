//! The committed sample (`data/trees.csv`, `data/orchards.geojson`) imports cleanly.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs::File;
use std::path::PathBuf;

use importer::{Severity, read_orchards_geojson, read_trees_csv};

/// Counts of the committed sample (see data/README.md).
const TREES: usize = 10_158;
const ORCHARDS: usize = 100;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data").join(name)
}

#[test]
fn sample_trees_import_without_rejections() {
    let import = read_trees_csv(File::open(data("trees.csv")).unwrap(), "trees.csv", 2026).unwrap();
    let rejected: Vec<String> = import.rejected().take(5).map(ToString::to_string).collect();
    assert!(rejected.is_empty(), "{rejected:#?}");
    assert_eq!(import.rows.len(), TREES);
    assert_eq!(import.rows_read, TREES);
    assert!(import.ignored_columns.is_empty());
    // Rows are lines 2..=TREES+1, in order.
    assert_eq!(import.rows.first().map(|r| r.line), Some(2));
    assert_eq!(import.rows.last().map(|r| r.line), Some(TREES as u64 + 1));
    // The only warnings are the few poor GPS fixes; every cultivar is known.
    assert!(import.warnings().all(|w| w.field == "accuracy_m" && w.severity == Severity::Warning));
    let poor_fixes = import.rows.iter().filter(|r| r.tree.accuracy_m.is_some_and(|a| a > 10.0)).count();
    assert_eq!(import.warnings().count(), poor_fixes);
    assert!(poor_fixes > 0 && poor_fixes < TREES / 20, "{poor_fixes}");
    assert!(import.trees().all(|t| t.cultivar.is_known() && t.planted_year.is_some()));
    assert!(import.rows.iter().all(|r| r.surveyed_at.is_some()));
    let first = import.earliest_surveyed_at().unwrap().to_rfc3339();
    let last = import.latest_surveyed_at().unwrap().to_rfc3339();
    assert!(first.starts_with("2024-") && (last.starts_with("2024-") || last.starts_with("2025-")), "{first} {last}");
    assert_eq!(import.orchard_ids().len(), ORCHARDS);
}

#[test]
fn sample_orchards_import_and_cover_the_trees() {
    let orchards = read_orchards_geojson(File::open(data("orchards.geojson")).unwrap(), "orchards.geojson").unwrap();
    assert_eq!(orchards.orchards.len(), ORCHARDS);
    assert!(orchards.warnings.is_empty());
    assert!(orchards.orchards.iter().all(|o| o.boundary.is_some() && o.province == "Đắk Lắk"));
    let communes: BTreeSet<&str> = orchards.orchards.iter().map(|o| o.commune.as_str()).collect();
    assert_eq!(communes.len(), 8, "{communes:?}");
    let coded = orchards.orchards.iter().filter(|o| o.planting_area_code.is_some()).count();
    assert!(coded > ORCHARDS / 2 && coded < ORCHARDS);

    let trees = read_trees_csv(File::open(data("trees.csv")).unwrap(), "trees.csv", 2026).unwrap();
    let known: BTreeSet<_> = orchards.orchards.iter().map(|o| &o.id).collect();
    assert!(trees.orchard_ids().iter().all(|id| known.contains(id)), "every tree's orchard is in orchards.geojson");
}
