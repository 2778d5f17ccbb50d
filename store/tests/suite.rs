//! The storage suite: every test is written once against `Arc<dyn Storage>`
//! and run on a fresh SQLite file and, when `TEST_DATABASE_URL` is set, on a
//! fresh PostgreSQL database.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::SubsecRound;
use common::{Fixture, draft, orchard, survey};
use geo_core::{Cultivar, Health, LonLat, NewTree, OrchardId, SurveyId, Tree, TreeCode, TreeId};
use geo_types::{Coord, LineString, Polygon};
use store::{Backend, Error, ImportBatch, Storage};

/// Declares each test twice: `sqlite::<name>` and `postgres::<name>`.
/// `store` tests get a freshly opened store; `fixture` tests get the database
/// itself (to reopen it or reach behind the store).
macro_rules! suite {
    (store: [$($s:ident),* $(,)?], fixture: [$($f:ident),* $(,)?] $(,)?) => {
        mod sqlite { suite!(@kind Sqlite; $($s),*; $($f),*); }
        mod postgres { suite!(@kind Postgres; $($s),*; $($f),*); }
    };
    (@kind $kind:ident; $($s:ident),*; $($f:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $s() {
                crate::common::with_fixture(crate::common::Kind::$kind, stringify!($s), |fx| async move {
                    let store = fx.open().await;
                    crate::$s(store).await;
                })
                .await;
            }
        )*
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $f() {
                crate::common::with_fixture(crate::common::Kind::$kind, stringify!($f), crate::$f).await;
            }
        )*
    };
}

suite! {
    store: [
        import_round_trip,
        empty_store_and_empty_import,
        import_with_unknown_orchard_writes_nothing,
        import_with_duplicate_code_writes_nothing,
        import_refuses_values_it_cannot_keep,
        derived_codes_skip_claimed_ones,
        orchard_upsert_and_boundary_round_trip,
        tree_by_code_and_trees_by_ids,
        update_bumps_version_and_logs_change,
        update_conflict_not_found_and_refusals,
        concurrent_updates_of_one_version_admit_one,
        concurrent_imports_serialise,
        change_log_order_and_limits,
        ten_thousand_trees,
    ],
    fixture: [
        reopening_keeps_data,
        corrupt_rows_are_reported_not_panicked_on,
    ],
}

fn batch(orchards: &[&str], trees: Vec<NewTree>) -> ImportBatch {
    ImportBatch { survey: None, orchards: orchards.iter().map(|id| orchard(id)).collect(), trees }
}

fn code(serial: u64) -> TreeCode {
    TreeCode::from_serial(serial).unwrap()
}

/// Every field of `stored` is the draft's, bit for bit where it is a float.
fn assert_matches_draft(stored: &Tree, d: &NewTree) {
    assert_eq!(stored.location.lon.to_bits(), d.location.lon.to_bits(), "lon of tree {}", stored.id);
    assert_eq!(stored.location.lat.to_bits(), d.location.lat.to_bits(), "lat of tree {}", stored.id);
    assert_eq!(stored.accuracy_m, d.accuracy_m);
    assert_eq!(stored.cultivar, d.cultivar);
    assert_eq!(stored.planted_year, d.planted_year);
    assert_eq!(stored.health, d.health);
    assert_eq!(stored.height_m, d.height_m);
    assert_eq!(stored.girth_cm, d.girth_cm);
    assert_eq!(stored.orchard_id, d.orchard_id);
}

async fn import_round_trip(store: Arc<dyn Storage>) {
    // A first import gives us a survey id to name explicitly below.
    let first = store
        .import(ImportBatch { survey: Some(survey("Hà")), ..batch(&["DL-001"], vec![draft("DL-001", 100)]) })
        .await
        .unwrap();
    let earlier_survey = first.survey_id.unwrap();

    let mut drafts: Vec<NewTree> = (0..40).map(|i| draft(if i % 2 == 0 { "DL-001" } else { "DL-002" }, i)).collect();
    drafts[3].code = Some(code(777_777));
    drafts[4].survey_id = Some(earlier_survey);
    // A cultivar that reached us un-normalised (through serde) is kept as given.
    drafts[5].cultivar = serde_json::from_str::<Cultivar>("\" ri 6 \"").unwrap();
    // 1e-7 degree apart, and a value whose shortest form needs 17 digits.
    drafts[6].location = LonLat::new(108.000_000_1, 12.000_000_2);
    drafts[7].location = LonLat::new(0.1 + 0.2 + 108.0, -0.000_000_1);
    drafts[8].location = LonLat::new(-180.0, 90.0);
    let mut s = survey("Nguyễn Văn A");
    s.surveyed_at += chrono::Duration::nanoseconds(789); // below the microsecond the databases keep
    let imported = store
        .import(ImportBatch { survey: Some(s.clone()), orchards: vec![orchard("DL-002")], trees: drafts.clone() })
        .await
        .unwrap();

    let survey_id = imported.survey_id.unwrap();
    assert_ne!(survey_id, earlier_survey);
    assert_eq!(imported.orchards, 1);
    assert_eq!(imported.trees.len(), drafts.len());
    let stored_survey = store.survey(survey_id).await.unwrap().unwrap();
    assert_eq!(stored_survey.id, survey_id);
    assert_eq!(stored_survey.surveyor, "Nguyễn Văn A");
    assert_eq!(stored_survey.surveyed_at, s.surveyed_at.trunc_subsecs(6));
    assert_eq!(stored_survey.source, s.source);
    assert_eq!(stored_survey.device, s.device);
    assert!(store.survey(SurveyId(survey_id.0 + 1000)).await.unwrap().is_none());

    let mut ids = HashSet::new();
    let mut codes = HashSet::new();
    for (t, d) in imported.trees.iter().zip(&drafts) {
        assert!(t.id.0 > 0);
        assert!(ids.insert(t.id), "id {} twice", t.id);
        assert!(codes.insert(t.code), "code {} twice", t.code);
        assert_ne!(t.id, first.trees[0].id);
        match d.code {
            Some(c) => assert_eq!(t.code, c),
            None => assert_eq!(t.code, code(t.id.0 as u64), "derived code of tree {}", t.id),
        }
        assert_eq!(t.survey_id, Some(d.survey_id.unwrap_or(survey_id)));
        assert_eq!(t.version, 1);
        assert_eq!(t.created_at, t.updated_at);
        assert_matches_draft(t, d);
        // What the import returned is exactly what is stored.
        let back = store.tree(t.id).await.unwrap().unwrap();
        assert_eq!(&back, t);
        assert_matches_draft(&back, d);
    }
    assert_eq!(imported.trees[4].survey_id, Some(earlier_survey));
    assert_eq!(imported.trees[5].cultivar.as_str(), " ri 6 ");

    let all = store.all_trees().await.unwrap();
    assert_eq!(all.len(), 41);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "all_trees not ordered by id");
    let mut expected: Vec<Tree> = first.trees.iter().chain(&imported.trees).cloned().collect();
    expected.sort_by_key(|t| t.id);
    assert_eq!(all, expected);
    assert_eq!(store.count_trees().await.unwrap(), 41);

    // One change per tree, in the log.
    let changes = store.changes_since(0, 1000).await.unwrap();
    assert_eq!(changes.len(), 41);
    let logged: HashSet<TreeId> = changes.iter().map(|c| c.tree_id).collect();
    assert_eq!(logged, all.iter().map(|t| t.id).collect());
}

async fn empty_store_and_empty_import(store: Arc<dyn Storage>) {
    assert_eq!(store.count_trees().await.unwrap(), 0);
    assert_eq!(store.last_change().await.unwrap(), 0);
    assert!(store.all_trees().await.unwrap().is_empty());
    assert!(store.orchards().await.unwrap().is_empty());
    assert!(store.changes_since(0, 10).await.unwrap().is_empty());
    assert!(store.tree(TreeId(1)).await.unwrap().is_none());
    let imported = store.import(ImportBatch::default()).await.unwrap();
    assert!(imported.trees.is_empty() && imported.survey_id.is_none() && imported.orchards == 0);
    assert_eq!(store.last_change().await.unwrap(), 0);
    // A survey alone is stored.
    let only_survey = store.import(ImportBatch { survey: Some(survey("A")), ..Default::default() }).await.unwrap();
    assert!(store.survey(only_survey.survey_id.unwrap()).await.unwrap().is_some());
    assert_eq!(store.last_change().await.unwrap(), 0);
}

/// Everything observable, to compare before and after a failed import.
async fn snapshot(store: &dyn Storage) -> (u64, i64, Vec<Tree>, usize) {
    (
        store.count_trees().await.unwrap(),
        store.last_change().await.unwrap(),
        store.all_trees().await.unwrap(),
        store.orchards().await.unwrap().len(),
    )
}

async fn import_with_unknown_orchard_writes_nothing(store: Arc<dyn Storage>) {
    store.import(batch(&["DL-001"], (0..5).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    let before = snapshot(store.as_ref()).await;

    // The batch carries a new orchard and a survey, and most trees are fine;
    // one tree names an orchard that exists nowhere.
    let mut trees: Vec<NewTree> = (10..20).map(|i| draft(if i % 2 == 0 { "DL-001" } else { "DL-NEW" }, i)).collect();
    trees[7].orchard_id = OrchardId::new("DL-404").unwrap();
    let err = store
        .import(ImportBatch { survey: Some(survey("B")), orchards: vec![orchard("DL-NEW")], trees })
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::UnknownOrchard(id) if id.as_str() == "DL-404"), "{err:?}");
    assert!(err.to_string().contains("DL-404"));

    assert_eq!(snapshot(store.as_ref()).await, before);
    assert!(store.orchard(&OrchardId::new("DL-NEW").unwrap()).await.unwrap().is_none(), "orchard written");
}

async fn import_with_duplicate_code_writes_nothing(store: Arc<dyn Storage>) {
    let mut first: Vec<NewTree> = (0..5).map(|i| draft("DL-001", i)).collect();
    first[2].code = Some(code(424_242));
    let stored = store.import(batch(&["DL-001"], first)).await.unwrap();
    let derived = stored.trees[0].code;
    let before = snapshot(store.as_ref()).await;

    // A code already stored: claimed explicitly, or derived earlier.
    for taken in [code(424_242), derived] {
        let mut trees: Vec<NewTree> = (10..30).map(|i| draft("DL-002", i)).collect();
        trees[15].code = Some(taken);
        let err = store
            .import(ImportBatch { survey: Some(survey("C")), orchards: vec![orchard("DL-002")], trees })
            .await
            .unwrap_err();
        assert!(matches!(&err, Error::DuplicateCode(c) if c == taken.as_str()), "{err:?}");
        assert_eq!(snapshot(store.as_ref()).await, before);
    }

    // The same new code twice in one batch.
    let mut trees: Vec<NewTree> = (10..30).map(|i| draft("DL-001", i)).collect();
    trees[3].code = Some(code(5_000));
    trees[17].code = Some(code(5_000));
    let err = store.import(batch(&[], trees)).await.unwrap_err();
    assert!(matches!(&err, Error::DuplicateCode(c) if c == code(5_000).as_str()), "{err:?}");
    assert_eq!(snapshot(store.as_ref()).await, before);
    assert!(store.tree_by_code(&code(5_000)).await.unwrap().is_none());
    assert!(store.orchard(&OrchardId::new("DL-002").unwrap()).await.unwrap().is_none());
}

async fn import_refuses_values_it_cannot_keep(store: Arc<dyn Storage>) {
    store.import(batch(&["DL-001"], vec![draft("DL-001", 0)])).await.unwrap();
    let before = snapshot(store.as_ref()).await;
    let mut bad_position = draft("DL-001", 1);
    bad_position.location = LonLat::new(f64::NAN, 12.0);
    let mut out_of_range = draft("DL-001", 2);
    out_of_range.location = LonLat::new(108.0, 95.0);
    let mut infinite_height = draft("DL-001", 3);
    infinite_height.height_m = Some(f64::INFINITY);
    let mut unknown_survey = draft("DL-001", 4);
    unknown_survey.survey_id = Some(SurveyId(987_654));
    for (field, bad) in
        [("lon", bad_position), ("lat", out_of_range), ("height_m", infinite_height), ("survey_id", unknown_survey)]
    {
        let trees = vec![draft("DL-001", 10), bad];
        let err = store.import(batch(&["DL-001"], trees)).await.unwrap_err();
        assert!(matches!(&err, Error::Invalid { field: f, .. } if *f == field), "{field}: {err:?}");
        assert_eq!(snapshot(store.as_ref()).await, before, "{field}");
    }
    let mut o = orchard("DL-009");
    o.boundary = Some(Polygon::new(LineString(vec![Coord { x: f64::NAN, y: 1.0 }]), vec![]));
    let err = store.import(ImportBatch { orchards: vec![o], ..Default::default() }).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid { field: "boundary", .. }), "{err:?}");
    assert_eq!(snapshot(store.as_ref()).await, before);
}

/// Pre-printed tags come from the same code space as derived codes: a draft
/// whose derived code is already claimed takes another id instead of failing.
async fn derived_codes_skip_claimed_ones(store: Arc<dyn Storage>) {
    let a = store.import(batch(&["DL-001"], vec![draft("DL-001", 0)])).await.unwrap();
    let next = a.trees[0].id.0 + 1;
    // Claim the code the next derived tree would get.
    let mut claimer = draft("DL-001", 1);
    claimer.code = Some(code(next as u64 + 1));
    let b = store.import(batch(&[], vec![claimer])).await.unwrap();
    assert_eq!(b.trees[0].id.0, next);
    let c = store.import(batch(&[], vec![draft("DL-001", 2)])).await.unwrap();
    let t = &c.trees[0];
    assert_ne!(t.code, code(next as u64 + 1));
    assert_eq!(t.code, code(t.id.0 as u64));
    assert!(t.id.0 > next + 1, "id {} should skip {}", t.id, next + 1);

    // Same within one batch: draft 0 claims the code draft 1 would derive.
    let base = t.id.0 + 1;
    let mut trees = vec![draft("DL-001", 3), draft("DL-001", 4), draft("DL-001", 5)];
    trees[0].code = Some(code(base as u64 + 1));
    let d = store.import(batch(&[], trees)).await.unwrap();
    let codes: HashSet<TreeCode> = d.trees.iter().map(|t| t.code).collect();
    assert_eq!(codes.len(), 3);
    assert_eq!(d.trees[0].code, code(base as u64 + 1));
    for t in &d.trees[1..] {
        assert_eq!(t.code, code(t.id.0 as u64));
    }
    let all = store.all_trees().await.unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all.iter().map(|t| t.code).collect::<HashSet<_>>().len(), 6);
}

fn awkward_polygon() -> Polygon<f64> {
    let exterior = vec![
        Coord { x: 108.050_000_1, y: 12.680_000_000_000_001 },
        Coord { x: 108.060_000_2, y: 12.68 },
        Coord { x: 108.06, y: 12.690_000_3 },
        Coord { x: 0.1 + 0.2 + 108.0, y: 12.69 },
    ];
    let hole = vec![
        Coord { x: 108.055, y: 12.685 },
        Coord { x: 108.056, y: 12.685 },
        Coord { x: 108.056, y: 12.686 },
        Coord { x: 108.055, y: 12.685 },
    ];
    Polygon::new(LineString(exterior), vec![LineString(hole)])
}

async fn orchard_upsert_and_boundary_round_trip(store: Arc<dyn Storage>) {
    let mut a = orchard("B-2");
    a.boundary = Some(awkward_polygon());
    let mut b = orchard("a-1");
    b.planting_area_code = None;
    let imported = store
        .import(ImportBatch { orchards: vec![a.clone(), b.clone(), orchard("A-3")], ..Default::default() })
        .await
        .unwrap();
    assert_eq!(imported.orchards, 3);
    let back = store.orchard(&a.id).await.unwrap().unwrap();
    assert_eq!(back, a);
    let (got, want) = (back.boundary.unwrap(), awkward_polygon());
    for (g, w) in got.exterior().0.iter().zip(&want.exterior().0) {
        assert_eq!((g.x.to_bits(), g.y.to_bits()), (w.x.to_bits(), w.y.to_bits()));
    }
    assert_eq!(got.interiors().len(), 1);
    assert_eq!(store.orchard(&b.id).await.unwrap().unwrap(), b);
    assert!(store.orchard(&OrchardId::new("nope").unwrap()).await.unwrap().is_none());
    // Byte order of ids, as Rust sorts them: upper case first.
    let ids: Vec<String> = store.orchards().await.unwrap().iter().map(|o| o.id.to_string()).collect();
    assert_eq!(ids, ["A-3", "B-2", "a-1"]);

    // Upsert: same id, new values (and the boundary removed), alongside trees.
    let mut a2 = orchard("B-2");
    a2.name = "Vườn mới".into();
    a2.owner = "H'Hen Niê".into();
    a2.planting_area_code = Some("VN-DLOR-0999".into());
    let imported = store
        .import(ImportBatch { orchards: vec![a2.clone()], trees: vec![draft("B-2", 1)], survey: None })
        .await
        .unwrap();
    assert_eq!(imported.orchards, 1);
    assert_eq!(store.orchard(&a2.id).await.unwrap().unwrap(), a2);
    assert_eq!(store.orchards().await.unwrap().len(), 3);
    // The same id twice in one batch: the last one given wins.
    let mut first = orchard("C-1");
    first.name = "first".into();
    let mut last = orchard("C-1");
    last.name = "last".into();
    last.boundary = Some(awkward_polygon());
    let imported =
        store.import(ImportBatch { orchards: vec![first, last.clone()], ..Default::default() }).await.unwrap();
    assert_eq!(imported.orchards, 1);
    assert_eq!(store.orchard(&last.id).await.unwrap().unwrap(), last);
}

async fn tree_by_code_and_trees_by_ids(store: Arc<dyn Storage>) {
    let mut drafts: Vec<NewTree> = (0..10).map(|i| draft("DL-001", i)).collect();
    drafts[4].code = Some(code(31_337));
    let imported = store.import(batch(&["DL-001"], drafts)).await.unwrap();
    let claimed = store.tree_by_code(&code(31_337)).await.unwrap().unwrap();
    assert_eq!(claimed, imported.trees[4]);
    let derived = &imported.trees[7];
    assert_eq!(store.tree_by_code(&derived.code).await.unwrap().as_ref(), Some(derived));
    assert!(store.tree_by_code(&code(31_338)).await.unwrap().is_none());

    let wanted = [imported.trees[1].id, imported.trees[8].id, TreeId(999_999), imported.trees[1].id, TreeId(-3)];
    let mut found = store.trees_by_ids(&wanted).await.unwrap();
    found.sort_by_key(|t| t.id);
    found.dedup_by_key(|t| t.id);
    assert_eq!(found, vec![imported.trees[1].clone(), imported.trees[8].clone()]);
    assert!(store.trees_by_ids(&[]).await.unwrap().is_empty());
    let all_ids: Vec<TreeId> = imported.trees.iter().map(|t| t.id).collect();
    assert_eq!(store.trees_by_ids(&all_ids).await.unwrap().len(), 10);
}

async fn update_bumps_version_and_logs_change(store: Arc<dyn Storage>) {
    let imported =
        store.import(batch(&["DL-001", "DL-002"], (0..3).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    let original = imported.trees[1].clone();
    let seq_before = store.last_change().await.unwrap();

    let mut edited = original.clone();
    edited.location = LonLat::new(108.000_000_1, 12.999_999_9);
    edited.health = Health::Dead;
    edited.height_m = None;
    edited.accuracy_m = Some(1.25);
    edited.planted_year = Some(1999);
    edited.cultivar = Cultivar::new("Black Thorn");
    edited.code = code(8_888_888);
    edited.orchard_id = OrchardId::new("DL-002").unwrap();
    edited.survey_id = None;
    let updated = store.update_tree(&edited).await.unwrap();

    assert_eq!(updated.version, 2);
    assert_eq!(updated.id, original.id);
    assert_eq!(updated.created_at, original.created_at);
    assert!(updated.updated_at >= original.updated_at);
    assert_eq!(updated.location.lon.to_bits(), edited.location.lon.to_bits());
    assert_eq!(updated.location.lat.to_bits(), edited.location.lat.to_bits());
    assert_eq!(Tree { version: 2, updated_at: updated.updated_at, ..edited.clone() }, updated);
    assert_eq!(store.tree(original.id).await.unwrap().unwrap(), updated);
    assert!(store.tree_by_code(&original.code).await.unwrap().is_none(), "old code still answers");
    assert_eq!(store.tree_by_code(&code(8_888_888)).await.unwrap().unwrap(), updated);

    let changes = store.changes_since(seq_before, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].tree_id, original.id);
    assert_eq!(store.last_change().await.unwrap(), changes[0].seq);

    // Again from the new version: 3.
    let again = store.update_tree(&Tree { girth_cm: Some(99.5), ..updated.clone() }).await.unwrap();
    assert_eq!(again.version, 3);
    assert_eq!(again.girth_cm, Some(99.5));
    assert!(again.updated_at >= updated.updated_at);
    // The other trees are untouched.
    assert_eq!(store.tree(imported.trees[0].id).await.unwrap().unwrap(), imported.trees[0]);
}

async fn update_conflict_not_found_and_refusals(store: Arc<dyn Storage>) {
    let imported = store.import(batch(&["DL-001"], (0..3).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    let t = imported.trees[0].clone();
    let v2 = store.update_tree(&Tree { health: Health::Poor, ..t.clone() }).await.unwrap();
    let seq = store.last_change().await.unwrap();

    // Based on version 1, but version 2 is stored.
    let err = store.update_tree(&Tree { health: Health::Fair, ..t.clone() }).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { id, current: 2, given: 1 } if id == t.id), "{err:?}");
    let err = store.update_tree(&Tree { version: 7, ..v2.clone() }).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { current: 2, given: 7, .. }), "{err:?}");

    let err = store.update_tree(&Tree { id: TreeId(424_242), ..v2.clone() }).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(TreeId(424_242))), "{err:?}");

    let err = store.update_tree(&Tree { code: imported.trees[2].code, ..v2.clone() }).await.unwrap_err();
    assert!(matches!(&err, Error::DuplicateCode(c) if c == imported.trees[2].code.as_str()), "{err:?}");

    let err =
        store.update_tree(&Tree { orchard_id: OrchardId::new("DL-404").unwrap(), ..v2.clone() }).await.unwrap_err();
    assert!(matches!(&err, Error::UnknownOrchard(o) if o.as_str() == "DL-404"), "{err:?}");

    let err = store.update_tree(&Tree { location: LonLat::new(f64::NAN, 1.0), ..v2.clone() }).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid { field: "lon", .. }), "{err:?}");

    let err = store.update_tree(&Tree { survey_id: Some(SurveyId(55_555)), ..v2.clone() }).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid { field: "survey_id", .. }), "{err:?}");

    // None of the refused updates changed anything or logged anything.
    assert_eq!(store.tree(t.id).await.unwrap().unwrap(), v2);
    assert_eq!(store.last_change().await.unwrap(), seq);
    // Keeping its own code is not a duplicate.
    assert_eq!(store.update_tree(&v2).await.unwrap().version, 3);
}

async fn concurrent_updates_of_one_version_admit_one(store: Arc<dyn Storage>) {
    let imported = store.import(batch(&["DL-001"], vec![draft("DL-001", 0)])).await.unwrap();
    let t = imported.trees[0].clone();
    let seq = store.last_change().await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let edit = Tree { girth_cm: Some(100.0 + f64::from(i)), ..t.clone() };
            tokio::spawn(async move { store.update_tree(&edit).await })
        })
        .collect();
    let mut won = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(tree) => won.push(tree),
            Err(Error::Conflict { current: 2, given: 1, .. }) => conflicts += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one update of version 1 may win");
    assert_eq!(conflicts, 7);
    assert_eq!(store.tree(t.id).await.unwrap().unwrap(), won[0]);
    assert_eq!(store.changes_since(seq, 100).await.unwrap().len(), 1);
}

async fn concurrent_imports_serialise(store: Arc<dyn Storage>) {
    store.import(batch(&["DL-001"], vec![])).await.unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|k| {
            let store = store.clone();
            let trees: Vec<NewTree> = (0..700).map(|i| draft("DL-001", k * 1000 + i)).collect();
            tokio::spawn(async move {
                store.import(ImportBatch { survey: Some(survey("P")), orchards: vec![], trees }).await
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        let imported = task.await.unwrap().unwrap();
        assert_eq!(imported.trees.len(), 700);
        ids.extend(imported.trees.iter().map(|t| t.id));
    }
    assert_eq!(ids.len(), 4200);
    let all = store.all_trees().await.unwrap();
    assert_eq!(all.len(), 4200);
    assert_eq!(all.iter().map(|t| t.code).collect::<HashSet<_>>().len(), 4200);
    let changes = store.changes_since(0, 10_000).await.unwrap();
    assert_eq!(changes.len(), 4200);
    assert!(changes.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(changes.iter().map(|c| c.tree_id).collect::<HashSet<_>>(), ids);
}

async fn change_log_order_and_limits(store: Arc<dyn Storage>) {
    let a = store.import(batch(&["DL-001"], (0..5).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    let u = store.update_tree(&a.trees[2]).await.unwrap();
    let b = store.import(batch(&[], (5..8).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    store.update_tree(&u).await.unwrap();

    let log = store.changes_since(0, 100).await.unwrap();
    assert_eq!(log.len(), 10);
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq), "{log:?}");
    let mut expected_ids: Vec<TreeId> = a.trees.iter().map(|t| t.id).collect();
    expected_ids.push(a.trees[2].id);
    expected_ids.extend(b.trees.iter().map(|t| t.id));
    expected_ids.push(a.trees[2].id);
    let ids: Vec<TreeId> = log.iter().map(|c| c.tree_id).collect();
    // Within one import the order of rows is not promised; across writes it is.
    let mut sorted_first: Vec<TreeId> = ids[..5].to_vec();
    sorted_first.sort();
    assert_eq!(sorted_first, expected_ids[..5]);
    assert_eq!(ids[5], a.trees[2].id);
    assert_eq!(ids[6..9].iter().collect::<HashSet<_>>(), expected_ids[6..9].iter().collect::<HashSet<_>>());
    assert_eq!(ids[9], a.trees[2].id);

    assert_eq!(store.last_change().await.unwrap(), log[9].seq);
    let page = store.changes_since(0, 3).await.unwrap();
    assert_eq!(page, log[..3]);
    let rest = store.changes_since(page[2].seq, 100).await.unwrap();
    assert_eq!(rest, log[3..]);
    assert_eq!(store.changes_since(log[4].seq, 2).await.unwrap(), log[5..7]);
    assert!(store.changes_since(log[9].seq, 100).await.unwrap().is_empty());
    assert!(store.changes_since(0, 0).await.unwrap().is_empty());
    assert_eq!(store.changes_since(-5, 1).await.unwrap(), log[..1]);
}

async fn ten_thousand_trees(store: Arc<dyn Storage>) {
    // More than one multi-row INSERT, with a short last chunk.
    let orchards: Vec<String> = (0..20).map(|i| format!("DL-{i:03}")).collect();
    let trees: Vec<NewTree> = (0..10_007).map(|i| draft(&orchards[i % 20], i)).collect();
    let imported = store
        .import(ImportBatch {
            survey: Some(survey("Big")),
            orchards: orchards.iter().map(|o| orchard(o)).collect(),
            trees: trees.clone(),
        })
        .await
        .unwrap();
    assert_eq!(imported.trees.len(), 10_007);
    let all = store.all_trees().await.unwrap();
    assert_eq!(all.len(), 10_007);
    let mut by_id = imported.trees.clone();
    by_id.sort_by_key(|t| t.id);
    assert_eq!(all, by_id);
    assert_eq!(all.iter().map(|t| t.code).collect::<HashSet<_>>().len(), 10_007);
    for (t, d) in imported.trees.iter().zip(&trees) {
        assert_matches_draft(t, d);
    }
    assert_eq!(store.changes_since(0, 20_000).await.unwrap().len(), 10_007);
}

async fn reopening_keeps_data(fx: Arc<Fixture>) {
    let store = fx.open().await;
    let mut o = orchard("DL-001");
    o.boundary = Some(awkward_polygon());
    let imported = store
        .import(ImportBatch {
            survey: Some(survey("R")),
            orchards: vec![o.clone()],
            trees: (0..25).map(|i| draft("DL-001", i)).collect(),
        })
        .await
        .unwrap();
    let updated = store.update_tree(&imported.trees[3]).await.unwrap();
    let seq = store.last_change().await.unwrap();
    let all = store.all_trees().await.unwrap();
    drop(store);

    // Opening again re-runs the migrator: nothing to apply, nothing lost.
    for _ in 0..2 {
        let store = fx.open().await;
        assert_eq!(store.all_trees().await.unwrap(), all);
        assert_eq!(store.tree(updated.id).await.unwrap().unwrap(), updated);
        assert_eq!(store.orchard(&o.id).await.unwrap().unwrap(), o);
        assert_eq!(store.last_change().await.unwrap(), seq);
        assert!(store.survey(imported.survey_id.unwrap()).await.unwrap().is_some());
    }
    // New ids continue after the old ones.
    let store = fx.open().await;
    let more = store.import(batch(&[], vec![draft("DL-001", 99)])).await.unwrap();
    assert!(more.trees[0].id > all.last().unwrap().id);
    assert!(store.last_change().await.unwrap() > seq);
}

async fn corrupt_rows_are_reported_not_panicked_on(fx: Arc<Fixture>) {
    let store = fx.open().await;
    let mut o = orchard("DL-001");
    o.boundary = Some(awkward_polygon());
    let imported = store
        .import(ImportBatch { survey: None, orchards: vec![o], trees: (0..3).map(|i| draft("DL-001", i)).collect() })
        .await
        .unwrap();
    let victim = imported.trees[1].id;

    let check = |what: &'static str, sql: String| {
        let fx = fx.clone();
        let store = store.clone();
        async move {
            fx.exec(&sql).await;
            let err = store.tree(victim).await.unwrap_err();
            assert!(
                matches!(&err, Error::Corrupt { table: "trees", reason } if reason.contains(&victim.to_string())),
                "{what}: {err:?}"
            );
            assert!(matches!(store.all_trees().await, Err(Error::Corrupt { table: "trees", .. })), "{what}");
            assert!(store.trees_by_ids(&[victim]).await.is_err(), "{what}");
        }
    };
    let restore = format!(
        "UPDATE trees SET code = '{}', orchard_id = 'DL-001', lat = 12.5 WHERE id = {victim}",
        imported.trees[1].code
    );
    check("bad code", format!("UPDATE trees SET code = 'not-a-code' WHERE id = {victim}")).await;
    fx.exec(&restore).await;
    // An orchard row with an id OrchardId refuses, so the foreign key holds.
    fx.exec(
        "INSERT INTO orchards (id, name, owner, commune, district, province, created_at, updated_at) \
         VALUES ('bad id!', 'x', 'x', 'x', 'x', 'x', '2025-01-01T00:00:00+00:00', '2025-01-01T00:00:00+00:00')",
    )
    .await;
    check("bad orchard id", format!("UPDATE trees SET orchard_id = 'bad id!' WHERE id = {victim}")).await;
    assert!(matches!(store.orchards().await, Err(Error::Corrupt { table: "orchards", .. })));
    fx.exec(&restore).await;
    fx.exec("DELETE FROM orchards WHERE id = 'bad id!'").await;
    check("latitude out of range", format!("UPDATE trees SET lat = 123.0 WHERE id = {victim}")).await;
    fx.exec(&restore).await;
    // Restored: readable again, and the other trees never were affected.
    assert_eq!(store.all_trees().await.unwrap().len(), 3);
    assert_eq!(store.tree(imported.trees[0].id).await.unwrap().unwrap(), imported.trees[0]);

    fx.exec("UPDATE orchards SET boundary = '[[[108.0, \"x\"]]]' WHERE id = 'DL-001'").await;
    let err = store.orchard(&OrchardId::new("DL-001").unwrap()).await.unwrap_err();
    assert!(matches!(&err, Error::Corrupt { table: "orchards", reason } if reason.contains("DL-001")), "{err:?}");
    assert!(matches!(store.orchards().await, Err(Error::Corrupt { .. })));
}

// ---------------------------------------------------------------------------
// Opening: backend-specific

#[tokio::test]
async fn sqlite_open_refuses_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let text = "lat,lon\n12.68,108.05\n".repeat(200);
    std::fs::write(&path, &text).unwrap();
    let err = store::SqliteStore::open(&path).await.unwrap_err();
    match &err {
        Error::Open { location, reason } => {
            assert_eq!(location, &path.display().to_string());
            assert!(reason.contains("not a database"), "{reason}");
        }
        other => panic!("expected Error::Open, got {other:?}"),
    }
    assert!(err.to_string().contains("notes.txt"), "{err}");
    // The file is left as it was.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    // Also through store::open and a sqlite: URL.
    let err = store::open(&format!("sqlite:{}", path.display())).await.unwrap_err();
    assert!(matches!(&err, Error::Open { location, .. } if location.ends_with("notes.txt")), "{err:?}");
}

#[tokio::test]
async fn sqlite_open_refuses_directories_and_missing_parents() {
    let dir = tempfile::tempdir().unwrap();
    let err = store::SqliteStore::open(dir.path()).await.unwrap_err();
    assert!(matches!(&err, Error::Open { location, .. } if *location == dir.path().display().to_string()), "{err:?}");
    let nested = dir.path().join("no/such/dir/orchardmap.db");
    let err = store::SqliteStore::open(&nested).await.unwrap_err();
    assert!(matches!(&err, Error::Open { location, .. } if location.ends_with("no/such/dir/orchardmap.db")), "{err:?}");
    assert!(!nested.exists());
}

#[tokio::test]
async fn sqlite_creates_a_wal_database_and_memory_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let store = store::SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(path.exists());
    store.import(batch(&["DL-001"], vec![draft("DL-001", 0)])).await.unwrap();
    store.close().await;
    let mut conn =
        <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
    assert_eq!(mode, "wal");

    // In memory: one private database, read back through sqlx rather than a second connection.
    let memory = store::open(":memory:").await.unwrap();
    let imported = memory.import(batch(&["DL-001"], (0..30).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    assert_eq!(memory.count_trees().await.unwrap(), 30);
    assert_eq!(memory.all_trees().await.unwrap(), imported.trees);
}

#[tokio::test]
async fn postgres_open_errors_hide_the_password() {
    let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipping postgres_open_errors_hide_the_password: TEST_DATABASE_URL is not set");
        return;
    };
    // Same server, a database that does not exist, a password in the URL.
    let (scheme, rest) = admin.split_once("://").unwrap();
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = rest.split(['/', '?']).next().unwrap();
    let url = format!("{scheme}://postgres:s3cr3t-pw@{host}/orchardmap_no_such_database");
    let err = store::open(&url).await.unwrap_err();
    match &err {
        Error::Open { location, .. } => {
            assert!(!location.contains("s3cr3t-pw"), "{location}");
            assert!(location.contains("orchardmap_no_such_database"), "{location}");
        }
        other => panic!("expected Error::Open, got {other:?}"),
    }
    assert!(!err.to_string().contains("s3cr3t-pw"), "{err}");
}
