//! The import pipeline against a real SQLite store: every row ends in exactly
//! one state, re-surveys update with history, a failed import writes nothing.
// A panic in a test is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use geo_core::{LonLat, Orchard, OrchardId, TreeId, polygon_from_ring};
use importer::pipeline::{self, ImportOptions, Input, Report};
use proptest::prelude::*;
use store::{ImportBatch, Storage};

const ORIGIN: LonLat = LonLat::new(108.05, 12.68);

async fn store_with_orchard(dir: &tempfile::TempDir) -> Arc<dyn Storage> {
    let store = store::open(dir.path().join("p.db").to_str().unwrap()).await.unwrap();
    let ring =
        [ORIGIN, ORIGIN.offset_m(200.0, 0.0), ORIGIN.offset_m(200.0, 200.0), ORIGIN.offset_m(0.0, 200.0), ORIGIN];
    let orchard = Orchard {
        id: OrchardId::new("DL-A").unwrap(),
        name: "Vườn A".into(),
        owner: "Y Blang".into(),
        commune: "Ea Tiêu".into(),
        district: "Cư Kuin".into(),
        province: "Đắk Lắk".into(),
        planting_area_code: None,
        gln: None,
        boundary: Some(polygon_from_ring(&ring)),
    };
    store.import(ImportBatch { survey: None, orchards: vec![orchard], trees: vec![] }).await.unwrap();
    store
}

async fn run(store: &Arc<dyn Storage>, name: &str, csv: String, opts: ImportOptions) -> Report {
    pipeline::import(store.clone(), Input::from_bytes(name, csv.into_bytes()), opts, None, Arc::new(|_| {}))
        .await
        .unwrap()
}

fn row(east: f64, north: f64, extra: &str) -> String {
    let p = ORIGIN.offset_m(east, north);
    format!("{:.7},{:.7},Ri6,good{extra}\n", p.lat, p.lon)
}

#[tokio::test]
async fn rows_are_placed_deduplicated_and_resurveys_update_with_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_orchard(&dir).await;
    // No orchard column: placed by the boundary. Row 4 is 1 m from row 2; row 5 is 3 m away (warning);
    // row 6 lies outside every boundary.
    let csv = format!(
        "lat,lon,cultivar,health\n{}{}{}{}{}",
        row(10.0, 10.0, ""),
        row(30.0, 10.0, ""),
        row(10.0, 11.0, ""),
        row(33.0, 10.0, ""),
        row(-500.0, 10.0, "")
    );
    let report = run(&store, "a.csv", csv, ImportOptions::default()).await;
    assert!(report.accounted(), "{report:?}");
    assert_eq!(
        (report.read, report.inserted, report.duplicates, report.rejected),
        (5, 3, 1, 1),
        "{}",
        report.summary()
    );
    assert_eq!(report.warnings, 1);
    assert!(report.problems.iter().any(|p| p.at == "line 4" && p.reason.contains("probable duplicate of line 2")));
    assert!(report.problems.iter().any(|p| p.at == "line 6" && p.reason.contains("no known orchard boundary")));
    assert_eq!(store.count_trees().await.unwrap(), 3);

    // A re-survey names tree 1 by id: updated, its old version kept.
    let csv = format!("tree_id,lat,lon,cultivar,health\n1,{}", row(10.5, 10.0, "").replace(",good", ",poor"));
    let report = run(&store, "b.csv", csv, ImportOptions::default()).await;
    assert_eq!((report.read, report.updated, report.inserted), (1, 1, 0), "{}", report.summary());
    let tree = store.tree(TreeId(1)).await.unwrap().unwrap();
    assert_eq!(tree.version, 2);
    assert_eq!(tree.health.to_string(), "poor");
    let history = store.tree_history(TreeId(1)).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].tree.version, 1);

    // Unknown tree id and unknown orchard: rejected, nothing written.
    let csv = format!(
        "tree_id,lat,lon,cultivar,health,orchard\n999,{}\n,{}",
        row(50.0, 50.0, ",DL-A").trim_end(),
        row(60.0, 60.0, ",DL-NONE")
    );
    let report = run(&store, "c.csv", csv, ImportOptions::default()).await;
    assert_eq!(report.rejected, report.read, "{}", report.summary());
    assert!(report.survey_id.is_none());
    assert_eq!(store.count_trees().await.unwrap(), 3);
}

#[tokio::test]
async fn a_dry_run_reports_everything_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_orchard(&dir).await;
    let csv = format!("lat,lon,cultivar,health\n{}{}", row(10.0, 10.0, ""), row(40.0, 10.0, ""));
    let opts = ImportOptions { dry_run: true, ..ImportOptions::default() };
    let report = run(&store, "d.csv", csv.clone(), opts).await;
    assert_eq!(report.inserted, 2);
    assert_eq!(report.preview.len(), 2);
    assert!(report.dry_run && report.survey_id.is_none());
    assert_eq!(store.count_trees().await.unwrap(), 0);
    // And the real import afterwards is not mistaken for a second one.
    let report = run(&store, "d.csv", csv, ImportOptions::default()).await;
    assert_eq!(report.inserted, 2);
    assert!(report.already_imported.is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever the rows, each one ends in exactly one state and the store
    /// holds exactly the inserted trees.
    #[test]
    fn every_row_is_counted_exactly_once(rows in prop::collection::vec((0.0f64..150.0, 0.0f64..150.0, 0u8..6), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = store_with_orchard(&dir).await;
            let mut csv = String::from("lat,lon,cultivar,health,accuracy_m\n");
            for (east, north, kind) in &rows {
                let p = ORIGIN.offset_m(*east, *north);
                match kind {
                    0 => csv.push_str(&format!("{:.7},{:.7},Ri6,good,3\n", p.lat, p.lon)),
                    1 => csv.push_str(&format!("{:.7},{:.7},Ri 7,fair,12\n", p.lat, p.lon)),
                    2 => csv.push_str(&format!("{:.7},{:.7},Ri6,good,40\n", p.lat, p.lon)),
                    3 => csv.push_str(&format!("{:.7},{:.7},Ri6,splendid,3\n", p.lat, p.lon)),
                    4 => csv.push_str("not,a,row\n"),
                    _ => csv.push_str(&format!("{:.7},{:.7},Musang King,dead,\n", p.lon, p.lat)),
                }
            }
            let report = run(&store, "p.csv", csv, ImportOptions::default()).await;
            prop_assert!(report.accounted(), "{}", report.summary());
            prop_assert_eq!(report.read, rows.len() as u64);
            prop_assert_eq!(store.count_trees().await.unwrap(), report.inserted);
            Ok(())
        })?;
    }
}
