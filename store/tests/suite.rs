//! The storage suite: every test is written once against `Arc<dyn Storage>`
//! and run on a fresh SQLite file and, when `TEST_DATABASE_URL` is set, on a
//! fresh PostgreSQL database.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{NaiveDate, SubsecRound};
use common::{Fixture, draft, orchard, survey};
use geo_core::{
    Actor, ChangeAction, Cultivar, Health, LonLat, NewTree, NewTreeRecord, OrchardId, RecordDetails, RecordId,
    RemovalReason, Role, SurveyId, Tree, TreeCode, TreeId, TreeRef, User, diff_trees,
};
use geo_types::{Coord, LineString, Polygon};
use store::{Backend, Error, ImportBatch, ImportMeta, Imported, Storage};

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
        concurrent_edits_land_and_failures_stay_alone,
        concurrent_imports_serialise,
        change_log_order_and_limits,
        ten_thousand_trees,
        writer_imports_a_survey_file,
        dropped_writer_leaves_nothing,
        failed_writer_refuses_to_commit,
        same_file_is_found_and_refused,
        row_keys_are_known_across_imports,
        updates_keep_history_and_bump_versions,
        update_of_a_missing_tree_names_it,
        claimed_codes_in_an_import,
        large_import_keeps_codes_unique,
        dropped_large_import_leaves_nothing,
        writer_dropped_while_storing_leaves_nothing,
        tree_ids_follow_on_across_imports,
        tree_points_match_all_trees,
        users_are_created_listed_found_and_revoked,
        tree_changes_tell_who_did_what,
        stale_edits_and_removals_write_nothing,
        removed_ids_and_codes_are_never_reused,
        concurrent_creations_get_distinct_ids,
        records_append_and_corrections_are_checked,
        put_orchard_creates_replaces_and_moves_updated_at,
        trees_after_pages_by_id,
        tags_are_issued_once_and_skip_taken_codes,
        tag_assignments_round_trip,
        lots_round_trip_and_revocation,
        scans_add_up_and_rank,
        orchard_gln_round_trip_and_survives_imports,
        backup_is_a_consistent_copy_taken_while_writing,
    ],
    fixture: [
        reopening_keeps_data,
        removed_newest_id_stays_used_after_reopening,
        corrupt_rows_are_reported_not_panicked_on,
        code_serials_agree,
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

/// Many edits at once (on SQLite they share commits): each valid edit lands
/// with its history and change-log entry; an edit that fails writes nothing
/// and does not take the others down with it.
async fn concurrent_edits_land_and_failures_stay_alone(store: Arc<dyn Storage>) {
    let drafts: Vec<NewTree> = (0..60).map(|i| draft("DL-001", i)).collect();
    let imported = store.import(batch(&["DL-001"], drafts)).await.unwrap();
    let seq = store.last_change().await.unwrap();
    let tasks: Vec<_> = imported
        .trees
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let store = store.clone();
            // Every third edit names an orchard that does not exist.
            let orchard = if i % 3 == 0 { OrchardId::new("NOWHERE").unwrap() } else { t.orchard_id.clone() };
            let edit = Tree { girth_cm: Some(50.0 + i as f64), orchard_id: orchard, ..t.clone() };
            let actor = Actor::system(format!("editor {i}"));
            tokio::spawn(async move { (i, store.edit_tree(&edit, &actor).await) })
        })
        .collect();
    for task in tasks {
        let (i, outcome) = task.await.unwrap();
        let before = &imported.trees[i];
        let stored = store.tree(before.id).await.unwrap().unwrap();
        match outcome {
            Ok(tree) => {
                assert_ne!(i % 3, 0, "edit {i} should have failed");
                assert_eq!((tree.version, tree.girth_cm), (2, Some(50.0 + i as f64)));
                assert_eq!(stored, tree);
                let changes = store.tree_changes(before.id).await.unwrap();
                assert_eq!(changes.len(), 2, "{changes:?}");
                assert_eq!(changes[1].by, format!("editor {i}"));
            }
            Err(Error::UnknownOrchard(o)) => {
                assert_eq!((i % 3, o.as_str()), (0, "NOWHERE"));
                assert_eq!(&stored, before, "a failed edit writes nothing");
                assert_eq!(store.tree_changes(before.id).await.unwrap().len(), 1);
            }
            Err(e) => panic!("edit {i}: unexpected {e:?}"),
        }
    }
    assert_eq!(store.changes_since(seq, 1000).await.unwrap().len(), 40);
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
// Survey imports through an ImportWriter

/// A SHA-256-shaped identity for test file `n`.
fn sha(n: u64) -> String {
    format!("{n:064x}")
}

fn meta(n: u64) -> ImportMeta {
    ImportMeta {
        file_name: format!("survey-{n}.csv"),
        file_sha256: sha(n),
        format: "csv".into(),
        survey: survey(&format!("surveyor {n}")),
        external_id: Some(format!("kobo-{n}")),
    }
}

fn keyed(prefix: &str, trees: Vec<NewTree>) -> Vec<(String, NewTree)> {
    trees.into_iter().enumerate().map(|(i, t)| (format!("{prefix}-{i}"), t)).collect()
}

/// What [`full_snapshot`] observes.
type Snapshot = (u64, i64, Vec<Tree>, usize, Vec<usize>, usize);

/// Everything observable about trees, changes, surveys and imports, to
/// compare before and after an import that must leave no trace.
async fn full_snapshot(store: &dyn Storage, probe: &[TreeId]) -> Snapshot {
    let mut history = Vec::new();
    for id in probe {
        history.push(store.tree_history(*id).await.unwrap().len());
    }
    (
        store.count_trees().await.unwrap(),
        store.last_change().await.unwrap(),
        store.all_trees().await.unwrap(),
        store.orchards().await.unwrap().len(),
        history,
        store.changes_since(0, u32::MAX).await.unwrap().len(),
    )
}

/// The start of a leave-no-trace test: `n` trees imported into DL-001, their
/// ids, and the snapshot that must still hold afterwards.
async fn seeded(store: &dyn Storage, n: usize) -> (Imported, Vec<TreeId>, Snapshot) {
    let base = store.import(batch(&["DL-001"], (0..n).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    let probe: Vec<TreeId> = base.trees.iter().map(|t| t.id).collect();
    let before = full_snapshot(store, &probe).await;
    (base, probe, before)
}

async fn writer_imports_a_survey_file(store: Arc<dyn Storage>) {
    let before = store.import(batch(&["DL-001", "DL-002"], vec![draft("DL-001", 0)])).await.unwrap();
    let earlier_survey =
        store.import(ImportBatch { survey: Some(survey("earlier")), ..Default::default() }).await.unwrap();
    let seq = store.last_change().await.unwrap();

    let mut drafts: Vec<NewTree> = (1..=300).map(|i| draft(if i % 2 == 0 { "DL-001" } else { "DL-002" }, i)).collect();
    drafts[7].code = Some(code(707_070));
    drafts[8].survey_id = earlier_survey.survey_id;
    let mut m = meta(1);
    m.survey.surveyed_at += chrono::Duration::nanoseconds(789);
    let mut writer = store.begin_import(m.clone()).await.unwrap();
    assert_eq!(writer.known_row_keys(&["r-0".to_string()]).await.unwrap(), [false]);
    let first = writer.insert_trees(keyed("r", drafts[..200].to_vec())).await.unwrap();
    let second = writer.insert_trees(keyed("s", drafts[200..].to_vec())).await.unwrap();
    // Nothing is visible before the commit.
    assert_eq!(store.count_trees().await.unwrap(), 1);
    assert_eq!(store.last_change().await.unwrap(), seq);
    assert!(store.find_import(&sha(1)).await.unwrap().is_none());
    let survey_id = writer.commit().await.unwrap();

    let assigned: Vec<(TreeId, TreeCode)> = first.into_iter().chain(second).collect();
    assert_eq!(assigned.len(), 300);
    assert_eq!(assigned[7].1, code(707_070));
    let ids: HashSet<TreeId> = assigned.iter().map(|a| a.0).collect();
    assert_eq!(ids.len(), 300);
    assert!(!ids.contains(&before.trees[0].id));
    for (i, ((id, c), d)) in assigned.iter().zip(&drafts).enumerate() {
        let t = store.tree(*id).await.unwrap().unwrap();
        assert_eq!(t.code, *c);
        if i != 7 {
            assert_eq!(*c, code(id.0 as u64), "derived code of tree {id}");
        }
        assert_matches_draft(&t, d);
        assert_eq!(t.survey_id, Some(if i == 8 { earlier_survey.survey_id.unwrap() } else { survey_id }));
        assert_eq!((t.version, t.created_at), (1, t.updated_at));
    }
    let stored = store.survey(survey_id).await.unwrap().unwrap();
    assert_eq!(stored.surveyor, m.survey.surveyor);
    assert_eq!(stored.surveyed_at, m.survey.surveyed_at.trunc_subsecs(6));
    assert_eq!(stored.device, m.survey.device);

    let prior = store.find_import(&sha(1)).await.unwrap().unwrap();
    assert_eq!(prior.survey_id, survey_id);
    assert_eq!(prior.file_name, "survey-1.csv");
    assert!(prior.imported_at >= stored.surveyed_at);

    // Every new tree reaches followers, one change each, in pages.
    let mut followed = Vec::new();
    let mut at = seq;
    loop {
        let page = store.changes_since(at, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        assert!(page.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(page[0].seq > at);
        at = last.seq;
        followed.extend(page.iter().map(|c| c.tree_id));
    }
    assert_eq!(followed.len(), 300);
    assert_eq!(followed.iter().copied().collect::<HashSet<_>>(), ids);
    assert_eq!(store.last_change().await.unwrap(), at);
    // A later edit comes after the whole import.
    let edited = store.update_tree(&store.tree(assigned[0].0).await.unwrap().unwrap()).await.unwrap();
    let next = store.changes_since(at, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].tree_id, edited.id);
}

async fn dropped_writer_leaves_nothing(store: Arc<dyn Storage>) {
    let (base, probe, before) = seeded(store.as_ref(), 5).await;

    let mut writer = store.begin_import(meta(2)).await.unwrap();
    writer.insert_trees(keyed("a", (10..60).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    let mut changed = draft("DL-001", 99);
    changed.health = Health::Dead;
    writer.update_trees(vec![("u".into(), TreeRef::Id(base.trees[1].id), changed)]).await.unwrap();
    drop(writer);

    assert_eq!(full_snapshot(store.as_ref(), &probe).await, before);
    assert!(store.find_import(&sha(2)).await.unwrap().is_none());
    // The same file imports afterwards, and its rows are new (keys were not kept).
    let mut writer = store.begin_import(meta(2)).await.unwrap();
    assert_eq!(writer.known_row_keys(&["a-0".into(), "u".into()]).await.unwrap(), [false, false]);
    writer.insert_trees(keyed("a", vec![draft("DL-001", 10)])).await.unwrap();
    let survey_id = writer.commit().await.unwrap();
    assert_eq!(store.find_import(&sha(2)).await.unwrap().unwrap().survey_id, survey_id);
    assert_eq!(store.count_trees().await.unwrap(), 6);
}

async fn failed_writer_refuses_to_commit(store: Arc<dyn Storage>) {
    let (base, probe, before) = seeded(store.as_ref(), 3).await;

    let mut bad_value = draft("DL-001", 5);
    bad_value.location = LonLat::new(108.0, f64::NAN);
    let mut bad_orchard = draft("DL-001", 6);
    bad_orchard.orchard_id = OrchardId::new("DL-404").unwrap();
    let mut bad_survey = draft("DL-001", 7);
    bad_survey.survey_id = Some(SurveyId(987_654));
    let mut taken = draft("DL-001", 8);
    taken.code = Some(base.trees[2].code);
    let mut twice = vec![draft("DL-001", 9), draft("DL-001", 10)];
    twice[0].code = Some(code(5_005));
    twice[1].code = Some(code(5_005));
    let cases: Vec<(&str, Vec<NewTree>)> = vec![
        ("lat", vec![draft("DL-001", 4), bad_value]),
        ("orchard", vec![bad_orchard]),
        ("survey_id", vec![bad_survey]),
        ("taken code", vec![taken]),
        ("code twice", twice),
    ];
    for (what, trees) in cases {
        let mut writer = store.begin_import(meta(3)).await.unwrap();
        writer.insert_trees(keyed("ok", vec![draft("DL-001", 20)])).await.unwrap();
        let err = writer.insert_trees(keyed("bad", trees)).await.unwrap_err();
        match what {
            "lat" => assert!(matches!(&err, Error::Invalid { field: "lat", .. }), "{err:?}"),
            "orchard" => assert!(matches!(&err, Error::UnknownOrchard(o) if o.as_str() == "DL-404"), "{err:?}"),
            "survey_id" => assert!(matches!(&err, Error::Invalid { field: "survey_id", .. }), "{err:?}"),
            "taken code" => {
                assert!(matches!(&err, Error::DuplicateCode(c) if c == base.trees[2].code.as_str()), "{err:?}")
            }
            _ => assert!(matches!(&err, Error::DuplicateCode(c) if c == code(5_005).as_str()), "{err:?}"),
        }
        // Once failed, the import goes no further: not even its good rows commit.
        let again = writer.insert_trees(keyed("more", vec![draft("DL-001", 21)])).await.unwrap_err();
        assert!(matches!(again, Error::Aborted(_)), "{what}: {again:?}");
        let commit = writer.commit().await.unwrap_err();
        assert!(matches!(commit, Error::Aborted(_)), "{what}: {commit:?}");
        assert_eq!(full_snapshot(store.as_ref(), &probe).await, before, "{what}");
        assert!(store.find_import(&sha(3)).await.unwrap().is_none(), "{what}");
    }
    // A sha that is not one.
    let mut m = meta(4);
    m.file_sha256 = "not a hash".into();
    assert!(matches!(store.begin_import(m).await.map(|_| ()), Err(Error::Invalid { field: "file_sha256", .. })));
}

async fn same_file_is_found_and_refused(store: Arc<dyn Storage>) {
    store.import(batch(&["DL-001"], vec![])).await.unwrap();
    assert!(store.find_import(&sha(5)).await.unwrap().is_none());
    assert!(store.find_import("garbage").await.unwrap().is_none());
    let mut writer = store.begin_import(meta(5)).await.unwrap();
    writer.insert_trees(keyed("k", vec![draft("DL-001", 1)])).await.unwrap();
    let survey_id = writer.commit().await.unwrap();

    let prior = store.find_import(&sha(5).to_uppercase()).await.unwrap().unwrap();
    assert_eq!(prior.survey_id, survey_id);
    assert!(store.find_import(&sha(6)).await.unwrap().is_none());
    let before = store.last_change().await.unwrap();
    let err = store.begin_import(meta(5)).await.map(|_| ()).unwrap_err();
    assert!(matches!(&err, Error::AlreadyImported { survey_id: s, .. } if *s == survey_id), "{err:?}");
    assert!(err.to_string().contains(&sha(5)), "{err}");
    assert_eq!(store.last_change().await.unwrap(), before);
    assert_eq!(store.count_trees().await.unwrap(), 1);
    // Another file with the same rows is a new import.
    let mut writer = store.begin_import(meta(6)).await.unwrap();
    assert_eq!(writer.known_row_keys(&["k-0".into()]).await.unwrap(), [true]);
    drop(writer);
}

async fn row_keys_are_known_across_imports(store: Arc<dyn Storage>) {
    store.import(batch(&["DL-001"], vec![])).await.unwrap();
    let mut writer = store.begin_import(meta(7)).await.unwrap();
    let rows: Vec<(String, NewTree)> =
        ["a", "b", "c"].iter().enumerate().map(|(i, k)| (k.to_string(), draft("DL-001", i))).collect();
    writer.insert_trees(rows).await.unwrap();
    // Within the same import: recorded keys, and repeats within one call.
    let keys: Vec<String> = ["a", "x", "x", "c", "y"].iter().map(|k| k.to_string()).collect();
    assert_eq!(writer.known_row_keys(&keys).await.unwrap(), [true, false, true, true, false]);
    writer.commit().await.unwrap();

    let mut writer = store.begin_import(meta(8)).await.unwrap();
    let keys: Vec<String> = ["b", "x", "a", "Ā", ""].iter().map(|k| k.to_string()).collect();
    assert_eq!(writer.known_row_keys(&keys).await.unwrap(), [true, false, true, false, false]);
    let updated = store.tree_points().await.unwrap()[0].id;
    writer.update_trees(vec![("x".into(), TreeRef::Id(updated), draft("DL-001", 40))]).await.unwrap();
    assert_eq!(writer.known_row_keys(&["x".into()]).await.unwrap(), [true]);
    writer.commit().await.unwrap();
    let mut writer = store.begin_import(meta(9)).await.unwrap();
    assert_eq!(writer.known_row_keys(&["x".into(), "y".into()]).await.unwrap(), [true, false]);
}

async fn updates_keep_history_and_bump_versions(store: Arc<dyn Storage>) {
    let imported = store
        .import(ImportBatch {
            survey: Some(survey("first")),
            ..batch(&["DL-001", "DL-002"], (0..4).map(|i| draft("DL-001", i)).collect())
        })
        .await
        .unwrap();
    let original = imported.trees.clone();
    let seq = store.last_change().await.unwrap();

    let mut writer = store.begin_import(meta(10)).await.unwrap();
    let mut a = draft("DL-002", 50);
    a.health = Health::Poor;
    let mut b = draft("DL-001", 51);
    b.code = Some(original[1].code); // naming its own code changes nothing
    let mut again = draft("DL-001", 52);
    again.girth_cm = Some(123.5);
    let mut recode = draft("DL-001", 53);
    recode.code = Some(code(9_090_909));
    let updated = writer
        .update_trees(vec![
            ("u-0".into(), TreeRef::Id(original[0].id), a.clone()),
            ("u-1".into(), TreeRef::Code(original[1].code), b.clone()),
            ("u-2".into(), TreeRef::Id(original[0].id), again.clone()),
            ("u-3".into(), TreeRef::Code(original[2].code), recode.clone()),
        ])
        .await
        .unwrap();
    let new = writer.insert_trees(keyed("n", vec![draft("DL-001", 60)])).await.unwrap();
    let survey_id = writer.commit().await.unwrap();

    assert_eq!(updated.len(), 4);
    assert_eq!((updated[0].id, updated[0].version), (original[0].id, 2));
    assert_eq!((updated[2].id, updated[2].version), (original[0].id, 3));
    assert_eq!((updated[1].id, updated[1].version, updated[1].code), (original[1].id, 2, original[1].code));
    assert_eq!(updated[3].code, code(9_090_909));
    for (t, d) in updated.iter().zip([&a, &b, &again, &recode]) {
        assert_matches_draft(t, d);
        assert_eq!(t.survey_id, Some(survey_id));
    }
    // What the writer returned is what is stored.
    assert_eq!(store.tree(original[0].id).await.unwrap().unwrap(), updated[2]);
    assert_eq!(store.tree(original[1].id).await.unwrap().unwrap(), updated[1]);
    assert_eq!(store.tree_by_code(&code(9_090_909)).await.unwrap().unwrap(), updated[3]);
    assert!(store.tree_by_code(&original[2].code).await.unwrap().is_none());
    assert_eq!(updated[0].created_at, original[0].created_at);
    assert!(updated[0].updated_at >= original[0].updated_at);

    // History: every replaced version exactly as it was, oldest first.
    let history = store.tree_history(original[0].id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].tree, original[0]);
    assert_eq!(history[1].tree, updated[0]);
    assert!(history.iter().all(|h| h.replaced_by == Some(survey_id)));
    assert!(history[0].replaced_at >= original[0].updated_at);
    assert_eq!(store.tree_history(original[2].id).await.unwrap()[0].tree, original[2]);
    assert!(store.tree_history(original[3].id).await.unwrap().is_empty());
    assert!(store.tree_history(TreeId(777_777)).await.unwrap().is_empty());

    // An edit through the API keeps history too, as a change without a survey.
    let edited = store.update_tree(&Tree { health: Health::Fair, ..updated[2].clone() }).await.unwrap();
    let history = store.tree_history(original[0].id).await.unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[2].tree, updated[2]);
    assert_eq!(history[2].replaced_by, None);
    assert_eq!(history[2].replaced_at, edited.updated_at);

    // Followers see each touched tree once for the import, then the edit.
    let changes = store.changes_since(seq, 100).await.unwrap();
    let ids: Vec<TreeId> = changes.iter().map(|c| c.tree_id).collect();
    let mut import_ids: Vec<TreeId> = ids[..ids.len() - 1].to_vec();
    import_ids.sort();
    let mut expected = vec![original[0].id, original[1].id, original[2].id, new[0].0];
    expected.sort();
    assert_eq!(import_ids, expected);
    assert_eq!(ids.last(), Some(&original[0].id));
}

async fn update_of_a_missing_tree_names_it(store: Arc<dyn Storage>) {
    let (base, probe, before) = seeded(store.as_ref(), 2).await;
    for missing in [TreeRef::Id(TreeId(424_242)), TreeRef::Code(code(31_337))] {
        let mut writer = store.begin_import(meta(11)).await.unwrap();
        let rows = vec![
            ("ok".to_string(), TreeRef::Id(base.trees[0].id), draft("DL-001", 5)),
            ("missing".to_string(), missing.clone(), draft("DL-001", 6)),
        ];
        let err = writer.update_trees(rows).await.unwrap_err();
        assert!(matches!(&err, Error::NoSuchTree(r) if *r == missing), "{err:?}");
        assert_eq!(err.to_string(), format!("{missing} not found"));
        assert!(matches!(writer.commit().await, Err(Error::Aborted(_))));
        assert_eq!(full_snapshot(store.as_ref(), &probe).await, before);
    }
    // Claiming another tree's code in an update is a duplicate.
    let mut writer = store.begin_import(meta(12)).await.unwrap();
    let mut steal = draft("DL-001", 7);
    steal.code = Some(base.trees[1].code);
    let err = writer.update_trees(vec![("s".into(), TreeRef::Id(base.trees[0].id), steal)]).await.unwrap_err();
    assert!(matches!(&err, Error::DuplicateCode(c) if c == base.trees[1].code.as_str()), "{err:?}");
}

/// Claims against codes stored before, claimed earlier in the import, and
/// derived earlier in the import.
async fn claimed_codes_in_an_import(store: Arc<dyn Storage>) {
    let base = store.import(batch(&["DL-001"], vec![draft("DL-001", 0)])).await.unwrap();
    let next = base.trees[0].id.0 + 1;
    let mut writer = store.begin_import(meta(13)).await.unwrap();
    // A pre-printed tag naming the code the second new tree would derive.
    let mut tagged = draft("DL-001", 1);
    tagged.code = Some(code(next as u64 + 1));
    let first = writer.insert_trees(keyed("a", vec![tagged, draft("DL-001", 2), draft("DL-001", 3)])).await.unwrap();
    assert_eq!(first[0].1, code(next as u64 + 1));
    for (id, c) in &first[1..] {
        assert_eq!(*c, code(id.0 as u64));
        assert_ne!(*c, first[0].1);
    }
    // A later row claims a code this import derived: the untagged tree moves.
    let derived = first[2];
    let mut claimer = draft("DL-001", 4);
    claimer.code = Some(derived.1);
    let second = writer.insert_trees(keyed("b", vec![claimer])).await.unwrap();
    assert_eq!(second[0].1, derived.1);
    let survey_id = writer.commit().await.unwrap();

    let all = store.all_trees().await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all.iter().map(|t| t.code).collect::<HashSet<_>>().len(), 5);
    let claimer = store.tree_by_code(&derived.1).await.unwrap().unwrap();
    assert_eq!(claimer.id, second[0].0);
    assert_matches_draft(&claimer, &draft("DL-001", 4));
    // The moved tree kept its values, under a new id and code.
    let moved = all.iter().find(|t| t.location == draft("DL-001", 3).location).unwrap();
    assert_ne!(moved.id, derived.0);
    assert_eq!(moved.code, code(moved.id.0 as u64));
    assert_eq!(moved.survey_id, Some(survey_id));
    assert!(store.tree(derived.0).await.unwrap().is_none(), "the old id stays free");
    // Followers learn about exactly the trees that exist.
    let changed: HashSet<TreeId> = store.changes_since(0, 100).await.unwrap().iter().map(|c| c.tree_id).collect();
    assert_eq!(changed, all.iter().map(|t| t.id).collect());
    // The moved tree's row key follows it; a code claimed in an earlier import is taken.
    let mut writer = store.begin_import(meta(15)).await.unwrap();
    assert_eq!(writer.known_row_keys(&["a-2".into(), "b-0".into()]).await.unwrap(), [true, true]);
    let mut again = draft("DL-001", 5);
    again.code = Some(code(next as u64 + 1));
    let err = writer.insert_trees(keyed("c", vec![again])).await.unwrap_err();
    assert!(matches!(&err, Error::DuplicateCode(c) if c == code(next as u64 + 1).as_str()), "{err:?}");
    drop(writer);
    // Within one import: a code claimed by an earlier batch is taken too.
    let mut writer = store.begin_import(meta(16)).await.unwrap();
    let mut tagged = draft("DL-001", 6);
    tagged.code = Some(code(4_444));
    writer.insert_trees(keyed("d", vec![tagged.clone()])).await.unwrap();
    let err = writer.insert_trees(keyed("e", vec![tagged])).await.unwrap_err();
    assert!(matches!(&err, Error::DuplicateCode(c) if c == code(4_444).as_str()), "{err:?}");
}

/// Tens of thousands of trees in several batches, with claims and updates by
/// code among them: codes stay unique and findable, during and after.
async fn large_import_keeps_codes_unique(store: Arc<dyn Storage>) {
    let base = store.import(batch(&["DL-001", "DL-002"], (0..10).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    let seq = store.last_change().await.unwrap();
    let mut writer = store.begin_import(meta(18)).await.unwrap();
    let mut all_new = Vec::new();
    for b in 0..6 {
        let mut trees: Vec<NewTree> =
            (0..5_000).map(|i| draft(if i % 2 == 0 { "DL-001" } else { "DL-002" }, b * 5_000 + i)).collect();
        trees[17].code = Some(code(700_000 + b as u64));
        if b == 5 {
            let keys = writer.known_row_keys(&["x".into()]).await.unwrap();
            assert_eq!(keys, [false]);
            let updated = writer
                .update_trees(vec![
                    ("u".into(), TreeRef::Code(base.trees[4].code), draft("DL-002", 77)),
                    ("v".into(), TreeRef::Code(all_new[100]), draft("DL-002", 78)),
                ])
                .await
                .unwrap();
            assert_eq!(updated[0].id, base.trees[4].id);
            assert_eq!(updated[1].code, all_new[100]);
        }
        let ids = writer.insert_trees(keyed(&format!("b{b}"), trees)).await.unwrap();
        all_new.extend(ids.iter().map(|(_, c)| *c));
    }
    let survey_id = writer.commit().await.unwrap();
    assert_eq!(store.count_trees().await.unwrap(), 30_010);
    assert_eq!(all_new.iter().collect::<HashSet<_>>().len(), 30_000);
    // Trees are found by code, old and new.
    assert_eq!(store.tree_by_code(&base.trees[3].code).await.unwrap().unwrap(), base.trees[3]);
    let t = store.tree_by_code(&code(700_003)).await.unwrap().unwrap();
    assert_eq!(t.survey_id, Some(survey_id));
    assert_eq!(store.tree_by_code(&all_new[29_999]).await.unwrap().unwrap().code, all_new[29_999]);
    assert_eq!(store.changes_since(seq, 100_000).await.unwrap().len(), 30_000 + 1);
    // Codes stay unique for later writers.
    let mut dup = draft("DL-001", 1);
    dup.code = Some(all_new[5]);
    let err = store.import(batch(&[], vec![dup])).await.unwrap_err();
    assert!(matches!(err, Error::DuplicateCode(_)), "{err:?}");
    let twin = store.tree_by_code(&all_new[6]).await.unwrap().unwrap();
    let err = store.update_tree(&Tree { code: all_new[7], ..twin }).await.unwrap_err();
    assert!(matches!(err, Error::DuplicateCode(_)), "{err:?}");
}

async fn dropped_large_import_leaves_nothing(store: Arc<dyn Storage>) {
    let (base, probe, before) = seeded(store.as_ref(), 3).await;
    let mut writer = store.begin_import(meta(17)).await.unwrap();
    for b in 0..5 {
        writer.insert_trees(keyed(&format!("b{b}"), (0..6_000).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    }
    // A code stored before is taken, however far the import has gone.
    let mut dup = draft("DL-001", 1);
    dup.code = Some(base.trees[0].code);
    let err = writer.insert_trees(keyed("dup", vec![dup])).await.unwrap_err();
    assert!(matches!(&err, Error::DuplicateCode(c) if c == base.trees[0].code.as_str()), "{err:?}");
    drop(writer);
    assert_eq!(full_snapshot(store.as_ref(), &probe).await, before);
    // Codes are still found and still unique.
    assert_eq!(store.tree_by_code(&base.trees[1].code).await.unwrap().unwrap(), base.trees[1]);
    let mut dup = draft("DL-001", 1);
    dup.code = Some(base.trees[2].code);
    assert!(matches!(store.import(batch(&[], vec![dup])).await, Err(Error::DuplicateCode(_))));
}

/// Dropped with rows sent and nothing asked since (on PostgreSQL, while the
/// server may still be storing them), an import leaves nothing, and the
/// next writer gets on.
async fn writer_dropped_while_storing_leaves_nothing(store: Arc<dyn Storage>) {
    let (base, probe, before) = seeded(store.as_ref(), 3).await;
    let mut writer = store.begin_import(meta(23)).await.unwrap();
    for b in 0..3 {
        let rows = keyed(&format!("d{b}"), (0..9_000).map(|i| draft("DL-001", i)).collect());
        assert_eq!(writer.insert_trees(rows).await.unwrap().len(), 9_000);
    }
    drop(writer);
    assert_eq!(full_snapshot(store.as_ref(), &probe).await, before);
    let after = store.import(batch(&[], vec![draft("DL-001", 5)])).await.unwrap();
    assert_eq!(store.count_trees().await.unwrap(), 4);
    // Ids (and so derived tag codes) a rolled-back import took are not handed
    // out again; it took at most about twice the 27,000 it used.
    let last = base.trees[2].id.0;
    assert!(after.trees[0].id.0 > last && after.trees[0].id.0 <= last + 2 * 27_000 + 1, "{}", after.trees[0].id);
    assert_eq!(store.tree(after.trees[0].id).await.unwrap().unwrap(), after.trees[0]);
}

/// An import takes tree ids ahead in blocks; what it did not use is given
/// back, so the next import's trees follow on (and so do their derived codes).
async fn tree_ids_follow_on_across_imports(store: Arc<dyn Storage>) {
    let first = store.import(batch(&["DL-001"], (0..3).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    let mut writer = store.begin_import(meta(31)).await.unwrap();
    let mut ids = Vec::new();
    for b in 0..2 {
        let rows = keyed(&format!("f{b}"), (0..5_000).map(|i| draft("DL-001", i)).collect());
        ids.extend(writer.insert_trees(rows).await.unwrap().into_iter().map(|(id, _)| id.0));
    }
    writer.commit().await.unwrap();
    let last = first.trees[2].id.0;
    assert_eq!(ids, (last + 1..=last + 10_000).collect::<Vec<_>>());
    let next = store.import(batch(&[], vec![draft("DL-001", 7)])).await.unwrap();
    assert_eq!(next.trees[0].id.0, last + 10_001);
    assert_eq!(next.trees[0].code, code((last + 10_001) as u64));
    assert_eq!(store.count_trees().await.unwrap(), 10_004);
}

async fn tree_points_match_all_trees(store: Arc<dyn Storage>) {
    assert!(store.tree_points().await.unwrap().is_empty());
    store.import(batch(&["DL-001"], (0..50).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    let mut points = store.tree_points().await.unwrap();
    points.sort_by_key(|p| p.id);
    let all = store.all_trees().await.unwrap();
    assert_eq!(points.len(), all.len());
    for (p, t) in points.iter().zip(&all) {
        assert_eq!((p.id, p.code), (t.id, t.code));
        assert_eq!(p.location.lon.to_bits(), t.location.lon.to_bits());
        assert_eq!(p.location.lat.to_bits(), t.location.lat.to_bits());
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_imports_and_cleans_up() {
    let memory = store::SqliteStore::open(std::path::Path::new(":memory:")).await.unwrap();
    let dir = memory.path().parent().unwrap().to_path_buf();
    assert!(dir.exists());
    memory.import(batch(&["DL-001"], vec![])).await.unwrap();
    let mut writer = memory.begin_import(meta(40)).await.unwrap();
    writer.insert_trees(keyed("m", (0..300).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    writer.commit().await.unwrap();
    assert_eq!(memory.count_trees().await.unwrap(), 300);
    assert_eq!(memory.tree_points().await.unwrap().len(), 300);
    // Two stores are two databases.
    let other = store::open(":memory:").await.unwrap();
    assert_eq!(other.count_trees().await.unwrap(), 0);
    memory.close().await;
    drop(memory);
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// The stored code serials are those of the codes (trees are found by code
/// through them); on PostgreSQL, the migration's SQL computes the same ones
/// for trees stored before it (on SQLite a unit test checks that).
async fn code_serials_agree(fx: Arc<Fixture>) {
    let store = fx.open().await;
    let mut drafts: Vec<NewTree> = (0..40).map(|i| draft("DL-001", i)).collect();
    drafts[3].code = Some(code(887_503_680));
    drafts[4].code = Some(code(0));
    store.import(batch(&["DL-001"], drafts)).await.unwrap();
    let mut writer = store.begin_import(meta(41)).await.unwrap();
    let mut claimed = draft("DL-001", 50);
    claimed.code = Some(code(123_456_789));
    writer.insert_trees(keyed("c", vec![claimed, draft("DL-001", 51)])).await.unwrap();
    writer.commit().await.unwrap();

    let read = |fx: Arc<Fixture>| async move {
        let sql = "SELECT code, code_serial FROM trees ORDER BY id";
        match &*fx {
            Fixture::Sqlite { path, .. } => {
                let mut conn =
                    <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap();
                sqlx::query_as::<_, (String, i64)>(sql).fetch_all(&mut conn).await.unwrap()
            }
            Fixture::Postgres { url, .. } => {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url).await.unwrap();
                sqlx::query_as::<_, (String, i64)>(sql).fetch_all(&mut conn).await.unwrap()
            }
        }
    };
    let rows = read(fx.clone()).await;
    assert_eq!(rows.len(), 42);
    for (c, serial) in &rows {
        assert_eq!(code(*serial as u64).as_str(), c);
    }
    if let Fixture::Postgres { .. } = &*fx {
        let migration = include_str!("../migrations/postgres/0002_imports.sql");
        let start = migration.find("UPDATE trees SET code_serial").unwrap();
        let end = start + migration[start..].find(';').unwrap();
        fx.exec("UPDATE trees SET code_serial = -id").await;
        fx.exec(&migration[start..=end]).await;
        assert_eq!(read(fx.clone()).await, rows);
    }
    for (c, _) in &rows {
        assert!(store.tree_by_code(&TreeCode::parse(c).unwrap()).await.unwrap().is_some(), "{c}");
    }
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

// ---------------------------------------------------------------------------
// Accounts, editing with history, the farm diary, orchards, paging

fn token(n: u8) -> [u8; 32] {
    [n; 32]
}

fn oid(id: &str) -> OrchardId {
    OrchardId::new(id).unwrap()
}

async fn users_are_created_listed_found_and_revoked(store: Arc<dyn Storage>) {
    store.import(batch(&["B-1", "A-1", "C-1"], vec![])).await.unwrap();
    assert!(store.users().await.unwrap().is_empty());
    let admin = store.create_user("Lan", Role::Admin, &[], &token(1)).await.unwrap();
    assert_eq!((admin.name.as_str(), admin.role, admin.revoked_at), ("Lan", Role::Admin, None));
    assert!(admin.orchards.is_empty() && admin.is_active());
    let farmer =
        store.create_user("Y Blang Niê", Role::Farmer, &[oid("B-1"), oid("A-1"), oid("B-1")], &token(2)).await.unwrap();
    assert_eq!(farmer.orchards, [oid("A-1"), oid("B-1")], "sorted, each once");
    assert!(farmer.id > admin.id);
    assert!(farmer.created_at >= admin.created_at);
    assert_eq!(farmer.created_at, farmer.created_at.trunc_subsecs(6));

    // Listed by id, found by token.
    assert_eq!(store.users().await.unwrap(), [admin.clone(), farmer.clone()]);
    assert_eq!(store.user_by_token(&token(2)).await.unwrap().unwrap(), farmer);
    assert!(store.user_by_token(&token(9)).await.unwrap().is_none());

    // Refused: a taken name, empty or over-long names, a taken token, an unknown orchard. Nothing written.
    let err = store.create_user("Lan", Role::Volunteer, &[], &token(3)).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid { field: "name", reason } if reason.contains("Lan")), "{err:?}");
    for bad in ["", "   ", &"x".repeat(101), "a\nb"] {
        let err = store.create_user(bad, Role::Volunteer, &[], &token(3)).await.unwrap_err();
        assert!(matches!(&err, Error::Invalid { field: "name", .. }), "{bad:?}: {err:?}");
    }
    let err = store.create_user("Minh", Role::Volunteer, &[], &token(1)).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid { field: "token_sha256", .. }), "{err:?}");
    let err = store.create_user("Minh", Role::Farmer, &[oid("A-1"), oid("Z-9")], &token(3)).await.unwrap_err();
    assert!(matches!(&err, Error::UnknownOrchard(o) if o.as_str() == "Z-9"), "{err:?}");
    assert_eq!(store.users().await.unwrap().len(), 2);
    // The name is free after a refusal; exactly 100 characters is fine.
    let long = "y".repeat(100);
    let minh = store.create_user(&long, Role::Volunteer, &[oid("C-1")], &token(3)).await.unwrap();
    assert_eq!(minh.name, long);

    // Revoking: the first time stays; unknown names are None; revoked accounts are still found by token.
    let revoked = store.revoke_user("Y Blang Niê").await.unwrap().unwrap();
    let first_time = revoked.revoked_at.unwrap();
    assert!(!revoked.is_active());
    assert_eq!(revoked.orchards, farmer.orchards);
    assert_eq!(User { revoked_at: None, ..revoked.clone() }, farmer);
    let again = store.revoke_user("Y Blang Niê").await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(first_time));
    assert!(store.revoke_user("nobody").await.unwrap().is_none());
    assert_eq!(store.user_by_token(&token(2)).await.unwrap().unwrap(), again);
    let all = store.users().await.unwrap();
    assert_eq!(all.iter().map(|u| u.is_active()).collect::<Vec<_>>(), [true, false, true]);
    assert_eq!(all[1], again);
}

fn by(user: &User) -> Actor {
    Actor::user(user)
}

/// Create, edit, re-survey, legacy update and remove: exactly these entries.
async fn tree_changes_tell_who_did_what(store: Arc<dyn Storage>) {
    let imported = store
        .import(ImportBatch { survey: Some(survey("Hà")), ..batch(&["DL-001", "DL-002"], vec![draft("DL-001", 0)]) })
        .await
        .unwrap();
    let lan = store.create_user("Lan", Role::Volunteer, &[], &token(1)).await.unwrap();
    let minh = store.create_user("Minh", Role::Admin, &[], &token(2)).await.unwrap();
    let seq = store.last_change().await.unwrap();

    // An imported tree: created by its survey's surveyor.
    let changes = store.tree_changes(imported.trees[0].id).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].action, ChangeAction::Create);
    assert_eq!(changes[0].by, "Hà");
    assert_eq!(changes[0].survey_id, imported.survey_id);
    assert_eq!(changes[0].user_id, None);
    assert_eq!(changes[0].at, imported.trees[0].created_at);

    // Created through the API.
    let v1 = store.create_tree(draft("DL-001", 1), &by(&lan)).await.unwrap();
    assert_eq!(v1.version, 1);
    assert_eq!(v1.code, code(v1.id.0 as u64));
    assert!(v1.id > imported.trees[0].id);
    assert_matches_draft(&v1, &draft("DL-001", 1));
    assert_eq!(store.tree(v1.id).await.unwrap().unwrap(), v1);
    // Edited by another account.
    let v2 =
        store.edit_tree(&Tree { health: Health::Dead, height_m: Some(7.5), ..v1.clone() }, &by(&minh)).await.unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(store.tree(v1.id).await.unwrap().unwrap(), v2);
    // Re-surveyed by an import.
    let mut writer = store.begin_import(meta(30)).await.unwrap();
    let mut resurvey = draft("DL-002", 1);
    resurvey.health = Health::Dead;
    resurvey.height_m = Some(7.5);
    let v3 = writer.update_trees(vec![("r".into(), TreeRef::Id(v1.id), resurvey)]).await.unwrap().remove(0);
    let resurvey_id = writer.commit().await.unwrap();
    assert_eq!(v3.version, 3);
    // Updated without an actor.
    let v4 = store.update_tree(&Tree { girth_cm: Some(88.0), ..v3.clone() }).await.unwrap();
    // Removed.
    let removed = store.remove_tree(v1.id, 4, RemovalReason::Cut, &by(&lan)).await.unwrap();
    assert_eq!(removed, v4);
    assert!(store.tree(v1.id).await.unwrap().is_none());
    assert!(store.tree_by_code(&v1.code).await.unwrap().is_none());
    assert!(!store.all_trees().await.unwrap().iter().any(|t| t.id == v1.id));

    let changes = store.tree_changes(v1.id).await.unwrap();
    let summary: Vec<(i64, ChangeAction, &str)> =
        changes.iter().map(|c| (c.version, c.action, c.by.as_str())).collect();
    assert_eq!(
        summary,
        [
            (1, ChangeAction::Create, "Lan"),
            (2, ChangeAction::Update, "Minh"),
            (3, ChangeAction::Update, "surveyor 30"),
            (4, ChangeAction::Update, "unknown"),
            (4, ChangeAction::Remove, "Lan"),
        ]
    );
    let [create, edit, import, update, remove] = &changes[..] else { unreachable!() };
    assert_eq!((create.user_id, create.survey_id, create.at), (Some(lan.id), None, v1.created_at));
    assert_eq!(create.fields, diff_trees(None, &v1));
    assert!(create.fields.iter().all(|f| f.from.is_null()));
    assert!(create.fields.iter().any(|f| f.field == "code" && f.to == serde_json::json!(v1.code.as_str())));
    assert_eq!((edit.user_id, edit.survey_id, edit.at), (Some(minh.id), None, v2.updated_at));
    let fields: Vec<(&str, serde_json::Value, serde_json::Value)> =
        edit.fields.iter().map(|f| (f.field.as_str(), f.from.clone(), f.to.clone())).collect();
    assert_eq!(
        fields,
        [
            ("health", serde_json::json!(v1.health.as_str()), serde_json::json!("dead")),
            ("height_m", serde_json::json!(v1.height_m), serde_json::json!(7.5)),
        ]
    );
    assert_eq!((import.user_id, import.survey_id, import.at), (None, Some(resurvey_id), v3.updated_at));
    assert_eq!(import.fields, diff_trees(Some(&v2), &v3));
    assert!(import.fields.iter().any(|f| f.field == "orchard_id"));
    assert!(!import.fields.iter().any(|f| f.field == "health"), "unchanged fields are not listed");
    assert_eq!(update.fields, diff_trees(Some(&v3), &v4));
    assert_eq!((update.user_id, update.survey_id), (None, None));
    assert_eq!((remove.reason, remove.user_id, remove.survey_id), (Some(RemovalReason::Cut), Some(lan.id), None));
    assert!(remove.fields.is_empty());
    assert!(remove.at >= v4.updated_at);
    assert!(changes.iter().filter(|c| c.action != ChangeAction::Remove).all(|c| c.reason.is_none()));
    assert!(changes.windows(2).all(|w| w[0].at <= w[1].at));

    // The removed tree: its last version, why and when; its history keeps every version.
    let (last, reason, at) = store.removed_tree(v1.id).await.unwrap().unwrap();
    assert_eq!((last, reason, at), (v4.clone(), RemovalReason::Cut, remove.at));
    let history = store.tree_history(v1.id).await.unwrap();
    assert_eq!(history.iter().map(|h| h.tree.clone()).collect::<Vec<_>>(), [v1.clone(), v2, v3, v4]);
    assert!(store.removed_tree(imported.trees[0].id).await.unwrap().is_none(), "exists");
    assert!(store.removed_tree(TreeId(999_999)).await.unwrap().is_none(), "never existed");
    assert!(store.tree_changes(TreeId(999_999)).await.unwrap().is_empty());

    // Followers: create, edit, import, update, remove, each in its own change.
    let log: Vec<TreeId> = store.changes_since(seq, 100).await.unwrap().iter().map(|c| c.tree_id).collect();
    assert_eq!(log, [v1.id; 5]);
    // Removing again: not found (nothing logged).
    let err = store.remove_tree(v1.id, 4, RemovalReason::Dead, &by(&lan)).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(id) if id == v1.id), "{err:?}");
    assert_eq!(store.changes_since(seq, 100).await.unwrap().len(), 5);
}

async fn stale_edits_and_removals_write_nothing(store: Arc<dyn Storage>) {
    store.import(batch(&["DL-001"], vec![])).await.unwrap();
    let actor = Actor::system("cli");
    let v1 = store.create_tree(draft("DL-001", 0), &actor).await.unwrap();
    let v2 = store.edit_tree(&Tree { health: Health::Poor, ..v1.clone() }, &actor).await.unwrap();
    let probe = [v1.id];
    let before = full_snapshot(store.as_ref(), &probe).await;
    let changes_before = store.tree_changes(v1.id).await.unwrap();

    let err = store.edit_tree(&Tree { health: Health::Fair, ..v1.clone() }, &actor).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { id, current: 2, given: 1 } if id == v1.id), "{err:?}");
    let err = store.remove_tree(v1.id, 1, RemovalReason::Dead, &actor).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { id, current: 2, given: 1 } if id == v1.id), "{err:?}");
    let err = store.remove_tree(v1.id, 3, RemovalReason::Dead, &actor).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { current: 2, given: 3, .. }), "{err:?}");
    let err = store.remove_tree(TreeId(424_242), 1, RemovalReason::Dead, &actor).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(TreeId(424_242))), "{err:?}");
    let err = store.edit_tree(&Tree { id: TreeId(424_242), ..v2.clone() }, &actor).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(TreeId(424_242))), "{err:?}");
    let err = store.edit_tree(&Tree { height_m: Some(f64::NAN), ..v2.clone() }, &actor).await.unwrap_err();
    assert!(matches!(err, Error::Invalid { field: "height_m", .. }), "{err:?}");

    assert_eq!(full_snapshot(store.as_ref(), &probe).await, before);
    assert_eq!(store.tree_changes(v1.id).await.unwrap(), changes_before);
    assert!(store.removed_tree(v1.id).await.unwrap().is_none());

    // Creation refusals write nothing either.
    let mut unknown = draft("DL-404", 1);
    unknown.orchard_id = oid("DL-404");
    let err = store.create_tree(unknown, &actor).await.unwrap_err();
    assert!(matches!(&err, Error::UnknownOrchard(o) if o.as_str() == "DL-404"), "{err:?}");
    let mut taken = draft("DL-001", 2);
    taken.code = Some(v1.code);
    let err = store.create_tree(taken, &actor).await.unwrap_err();
    assert!(matches!(&err, Error::DuplicateCode(c) if c == v1.code.as_str()), "{err:?}");
    let mut nan = draft("DL-001", 3);
    nan.location = LonLat::new(f64::NAN, 12.0);
    assert!(matches!(store.create_tree(nan, &actor).await, Err(Error::Invalid { field: "lon", .. })));
    let mut no_survey = draft("DL-001", 4);
    no_survey.survey_id = Some(SurveyId(55_555));
    assert!(matches!(store.create_tree(no_survey, &actor).await, Err(Error::Invalid { field: "survey_id", .. })));
    assert_eq!(full_snapshot(store.as_ref(), &probe).await, before);
}

/// A removed tree's id and code are never given again: not by `create_tree`,
/// nor by either kind of import, nor by an edit.
async fn removed_ids_and_codes_are_never_reused(store: Arc<dyn Storage>) {
    let base = store.import(batch(&["DL-001"], (0..3).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    let actor = Actor::system("cli");
    // The newest tree, and one holding a claimed code just ahead of the ids.
    let newest = store.create_tree(draft("DL-001", 3), &actor).await.unwrap();
    let ahead = code(newest.id.0 as u64 + 2);
    let mut tagged = draft("DL-001", 4);
    tagged.code = Some(ahead);
    let tagged = store.create_tree(tagged, &actor).await.unwrap();
    assert_eq!(tagged.id.0, newest.id.0 + 1);
    let gone = [newest.clone(), tagged.clone()];
    for t in &gone {
        store.remove_tree(t.id, 1, RemovalReason::Mistaken, &actor).await.unwrap();
    }
    let max_removed = tagged.id;
    assert!(store.all_trees().await.unwrap().iter().all(|t| t.id < newest.id));

    // New trees: by the API, by a batch import, by an import writer.
    let created = store.create_tree(draft("DL-001", 5), &actor).await.unwrap();
    let batch_import = store.import(batch(&[], (6..9).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    let mut writer = store.begin_import(meta(31)).await.unwrap();
    let written = writer.insert_trees(keyed("w", (9..12).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    writer.commit().await.unwrap();
    let mut new_ids = vec![created.id];
    new_ids.extend(batch_import.trees.iter().map(|t| t.id));
    new_ids.extend(written.iter().map(|w| w.0));
    let mut new_codes = vec![created.code];
    new_codes.extend(batch_import.trees.iter().map(|t| t.code));
    new_codes.extend(written.iter().map(|w| w.1));
    for (id, c) in new_ids.iter().zip(&new_codes) {
        assert!(*id > max_removed, "id {id} reuses a removed tree's range (removed up to {max_removed})");
        assert!(gone.iter().all(|g| g.code != *c), "code {c} was a removed tree's");
    }
    assert_eq!(new_ids.iter().collect::<HashSet<_>>().len(), new_ids.len());

    // Claiming a removed tree's code, any way, is a duplicate; nothing is written.
    let probe: Vec<TreeId> = base.trees.iter().map(|t| t.id).collect();
    let before = full_snapshot(store.as_ref(), &probe).await;
    for removed in [newest.code, ahead] {
        let mut claim = draft("DL-001", 20);
        claim.code = Some(removed);
        let err = store.create_tree(claim.clone(), &actor).await.unwrap_err();
        assert!(matches!(&err, Error::DuplicateCode(c) if c == removed.as_str()), "{err:?}");
        let err = store.import(batch(&[], vec![draft("DL-001", 21), claim.clone()])).await.unwrap_err();
        assert!(matches!(&err, Error::DuplicateCode(c) if c == removed.as_str()), "{err:?}");
        let mut writer = store.begin_import(meta(32)).await.unwrap();
        let err = writer.insert_trees(keyed("c", vec![claim.clone()])).await.unwrap_err();
        assert!(matches!(&err, Error::DuplicateCode(c) if c == removed.as_str()), "{err:?}");
        drop(writer);
        let mut writer = store.begin_import(meta(33)).await.unwrap();
        let err = writer.update_trees(vec![("u".into(), TreeRef::Id(base.trees[0].id), claim)]).await.unwrap_err();
        assert!(matches!(&err, Error::DuplicateCode(c) if c == removed.as_str()), "{err:?}");
        drop(writer);
        let current = store.tree(base.trees[1].id).await.unwrap().unwrap();
        let err = store.edit_tree(&Tree { code: removed, ..current.clone() }, &actor).await.unwrap_err();
        assert!(matches!(&err, Error::DuplicateCode(c) if c == removed.as_str()), "{err:?}");
        let err = store.update_tree(&Tree { code: removed, ..current }).await.unwrap_err();
        assert!(matches!(&err, Error::DuplicateCode(c) if c == removed.as_str()), "{err:?}");
        assert_eq!(full_snapshot(store.as_ref(), &probe).await, before);
    }
    for t in &gone {
        let (last, reason, _) = store.removed_tree(t.id).await.unwrap().unwrap();
        assert_eq!((last, reason), (t.clone(), RemovalReason::Mistaken));
    }
}

/// The next id after a removal of the newest tree, from a store opened afresh
/// (nothing cached in memory).
async fn removed_newest_id_stays_used_after_reopening(fx: Arc<Fixture>) {
    let store = fx.open().await;
    store.import(batch(&["DL-001"], (0..2).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    let newest = store.create_tree(draft("DL-001", 2), &Actor::system("cli")).await.unwrap();
    store.remove_tree(newest.id, 1, RemovalReason::Dead, &Actor::system("cli")).await.unwrap();
    drop(store);
    let store = fx.open().await;
    let mut writer = store.begin_import(meta(34)).await.unwrap();
    let ids = writer.insert_trees(keyed("r", vec![draft("DL-001", 3)])).await.unwrap();
    writer.commit().await.unwrap();
    assert!(ids[0].0 > newest.id, "{} reuses removed {}", ids[0].0, newest.id);
    assert_ne!(ids[0].1, newest.code);
    let created = store.create_tree(draft("DL-001", 4), &Actor::system("cli")).await.unwrap();
    assert!(created.id > ids[0].0);
}

async fn concurrent_creations_get_distinct_ids(store: Arc<dyn Storage>) {
    store.import(batch(&["DL-001"], vec![])).await.unwrap();
    let seq = store.last_change().await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.create_tree(draft("DL-001", i), &Actor::system(format!("t{i}"))).await })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        let t = task.await.unwrap().unwrap();
        assert!(ids.insert(t.id));
        assert_eq!(t.code, code(t.id.0 as u64));
    }
    let logged: HashSet<TreeId> = store.changes_since(seq, 100).await.unwrap().iter().map(|c| c.tree_id).collect();
    assert_eq!(logged, ids);
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn record(details: RecordDetails) -> NewTreeRecord {
    NewTreeRecord { date: day(2026, 3, 1), details, note: None, corrects: None }
}

async fn records_append_and_corrections_are_checked(store: Arc<dyn Storage>) {
    let imported = store.import(batch(&["DL-001"], (0..2).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    let (a, b) = (imported.trees[0].clone(), imported.trees[1].clone());
    let farmer = store.create_user("Y Blang Niê", Role::Farmer, &[oid("DL-001")], &token(1)).await.unwrap();
    let actor = by(&farmer);
    assert!(store.tree_records(a.id).await.unwrap().is_empty());

    // Every kind, numbers that need 17 digits included.
    let kinds = vec![
        RecordDetails::Harvest { fruit_count: 12, weight_kg: 0.1 + 0.2 + 36.0 },
        RecordDetails::Spray {
            product: "Abamectin".into(),
            dose: "20 ml / 16 l".into(),
            phi_days: 14,
            target: Some("rầy xanh".into()),
        },
        RecordDetails::Fertiliser { product: "NPK 16-16-8".into(), amount_kg: None },
        RecordDetails::Fertiliser { product: "Phân chuồng".into(), amount_kg: Some(1.0 / 3.0) },
        RecordDetails::Flowering { percent: Some(33.333_333_333_333_336) },
        RecordDetails::Flowering { percent: None },
        RecordDetails::FruitSet { fruit_count: 40 },
        RecordDetails::Observation { health: Some(Health::Fair) },
        RecordDetails::Observation { health: None },
        RecordDetails::Photo { sha256: "ab".repeat(32), content_type: "image/jpeg".into() },
    ];
    let mut stored = Vec::new();
    for (i, details) in kinds.iter().enumerate() {
        let mut r = record(details.clone());
        r.note = (i % 2 == 0).then(|| format!("ghi chú {i}"));
        let s = store.add_record(a.id, r.clone(), &actor).await.unwrap();
        assert_eq!((s.tree_id, s.date, &s.details, &s.note, s.corrects), (a.id, r.date, details, &r.note, None));
        assert_eq!((s.author.as_str(), s.author_id), ("Y Blang Niê", Some(farmer.id)));
        assert_eq!(s.created_at, s.created_at.trunc_subsecs(6));
        stored.push(s);
    }
    let RecordDetails::Harvest { weight_kg, .. } = &stored[0].details else { unreachable!() };
    assert_eq!(weight_kg.to_bits(), (0.1 + 0.2 + 36.0f64).to_bits());

    // A correction of a record of the same tree.
    let mut fix = record(RecordDetails::Harvest { fruit_count: 13, weight_kg: 38.5 });
    fix.corrects = Some(stored[0].id);
    let fixed = store.add_record(a.id, fix, &Actor::system("cli")).await.unwrap();
    assert_eq!((fixed.corrects, fixed.author.as_str(), fixed.author_id), (Some(stored[0].id), "cli", None));
    stored.push(fixed);
    let other = store.add_record(b.id, record(RecordDetails::FruitSet { fruit_count: 3 }), &actor).await.unwrap();

    // Refused, nothing written: a record of another tree, no record at all, an unknown tree, NaN.
    let mut wrong_tree = record(RecordDetails::FruitSet { fruit_count: 5 });
    wrong_tree.corrects = Some(other.id);
    let err = store.add_record(a.id, wrong_tree, &actor).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field: "corrects", reason } if reason.contains(&b.id.to_string())),
        "{err:?}"
    );
    let mut no_record = record(RecordDetails::FruitSet { fruit_count: 5 });
    no_record.corrects = Some(RecordId(987_654));
    let err = store.add_record(a.id, no_record, &actor).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid { field: "corrects", reason } if reason.contains("987654")), "{err:?}");
    let err = store.add_record(TreeId(424_242), record(RecordDetails::FruitSet { fruit_count: 5 }), &actor);
    assert!(matches!(err.await, Err(Error::NotFound(TreeId(424_242)))));
    for (field, details) in [
        ("weight_kg", RecordDetails::Harvest { fruit_count: 1, weight_kg: f64::NAN }),
        ("amount_kg", RecordDetails::Fertiliser { product: "x".into(), amount_kg: Some(f64::INFINITY) }),
        ("percent", RecordDetails::Flowering { percent: Some(f64::NEG_INFINITY) }),
    ] {
        let err = store.add_record(a.id, record(details), &actor).await.unwrap_err();
        assert!(matches!(&err, Error::Invalid { field: f, .. } if *f == field), "{field}: {err:?}");
    }

    // Oldest first, every one exactly as returned; other trees' apart.
    let listed = store.tree_records(a.id).await.unwrap();
    assert_eq!(listed, stored);
    assert!(listed.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(store.tree_records(b.id).await.unwrap(), std::slice::from_ref(&other));
    assert!(store.tree_records(TreeId(424_242)).await.unwrap().is_empty());

    // A removed tree keeps its records and takes more.
    store.remove_tree(b.id, b.version, RemovalReason::Dead, &actor).await.unwrap();
    let after = store.add_record(b.id, record(RecordDetails::Observation { health: Some(Health::Dead) }), &actor);
    let after = after.await.unwrap();
    assert_eq!(store.tree_records(b.id).await.unwrap(), [other, after]);
    // Records are not tree writes: the change log does not move for them.
    let seq = store.last_change().await.unwrap();
    store.add_record(a.id, record(RecordDetails::FruitSet { fruit_count: 1 }), &actor).await.unwrap();
    assert_eq!(store.last_change().await.unwrap(), seq);
}

async fn put_orchard_creates_replaces_and_moves_updated_at(store: Arc<dyn Storage>) {
    let actor = Actor::system("cli");
    assert_eq!(store.orchards_updated_at().await.unwrap(), None);
    let mut a = orchard("DL-001");
    a.boundary = Some(awkward_polygon());
    assert!(store.put_orchard(&a, &actor).await.unwrap(), "created");
    assert_eq!(store.orchard(&a.id).await.unwrap().unwrap(), a);
    let t1 = store.orchards_updated_at().await.unwrap().unwrap();
    assert_eq!(t1, t1.trunc_subsecs(6));

    // Replaced: every field, the boundary removed.
    let mut a2 = orchard("DL-001");
    a2.name = "Vườn mới".into();
    a2.planting_area_code = None;
    assert!(!store.put_orchard(&a2, &actor).await.unwrap(), "replaced");
    assert_eq!(store.orchard(&a.id).await.unwrap().unwrap(), a2);
    let t2 = store.orchards_updated_at().await.unwrap().unwrap();
    assert!(t2 > t1, "{t2} after {t1}");
    // Boundary back, another orchard: moves again each time.
    assert!(!store.put_orchard(&a, &actor).await.unwrap());
    let t3 = store.orchards_updated_at().await.unwrap().unwrap();
    assert!(t3 > t2);
    assert!(store.put_orchard(&orchard("DL-002"), &actor).await.unwrap());
    let t4 = store.orchards_updated_at().await.unwrap().unwrap();
    assert!(t4 > t3);
    assert_eq!(store.orchards().await.unwrap(), [a.clone(), orchard("DL-002")]);
    // Trees may be placed in a new orchard at once.
    store.create_tree(draft("DL-002", 0), &actor).await.unwrap();

    // Refused: a boundary the database cannot keep. Nothing written.
    let mut bad = orchard("DL-001");
    bad.boundary = Some(Polygon::new(LineString(vec![Coord { x: f64::NAN, y: 1.0 }]), vec![]));
    let err = store.put_orchard(&bad, &actor).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid { field: "boundary", .. }), "{err:?}");
    assert_eq!(store.orchard(&a.id).await.unwrap().unwrap(), a);
    assert_eq!(store.orchards_updated_at().await.unwrap(), Some(t4));
}

async fn trees_after_pages_by_id(store: Arc<dyn Storage>) {
    assert!(store.trees_after(TreeId(0), 10).await.unwrap().is_empty());
    store.import(batch(&["DL-001"], (0..25).map(|i| draft("DL-001", i)).collect())).await.unwrap();
    let gone = store.all_trees().await.unwrap()[10].clone();
    store.remove_tree(gone.id, 1, RemovalReason::Mistaken, &Actor::system("cli")).await.unwrap();
    let all = store.all_trees().await.unwrap();
    assert_eq!(all.len(), 24);
    let mut paged = Vec::new();
    let mut after = TreeId(0);
    loop {
        let page = store.trees_after(after, 7).await.unwrap();
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        after = last.id;
        paged.extend(page);
    }
    assert_eq!(paged, all);
    assert!(store.trees_after(TreeId(0), 0).await.unwrap().is_empty());
    assert_eq!(store.trees_after(all[3].id, 2).await.unwrap(), all[4..6]);
    assert!(store.trees_after(all[23].id, 10).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------
// Traceability: tags, lots, scans, orchard GLNs

async fn tags_are_issued_once_and_skip_taken_codes(store: Arc<dyn Storage>) {
    let admin = Actor::system("admin");
    let first = store.issue_tags(5, &admin).await.unwrap();
    assert_eq!((first.batch, first.codes.len()), (1, 5));
    assert!(first.codes.iter().all(|c| c.serial() >= store::trace::TAG_SERIAL_BASE));
    // Someone claims the code the next batch would take first: the batch skips it.
    let next = TreeCode::from_serial(first.codes[4].serial() + 1).unwrap();
    let mut claimed = draft("DL-001", 0);
    claimed.code = Some(next);
    store.import(batch(&["DL-001"], vec![claimed])).await.unwrap();
    let second = store.issue_tags(3, &admin).await.unwrap();
    assert_eq!(second.batch, 2);
    assert!(!second.codes.contains(&next), "{:?} reused the claimed {next}", second.codes);
    let all: HashSet<TreeCode> = first.codes.iter().chain(&second.codes).copied().collect();
    assert_eq!(all.len(), 8);
    let tag = store.tag(&second.codes[0]).await.unwrap().unwrap();
    assert_eq!((tag.batch, tag.issued_by.as_str()), (2, "admin"));
    assert_eq!(store.tag(&next).await.unwrap(), None);
    assert_eq!(store.tag_batch(1).await.unwrap(), first.codes);
    assert!(store.tag_batch(9).await.unwrap().is_empty());
    for bad in [0, store::trace::MAX_TAGS_PER_BATCH + 1] {
        let err = store.issue_tags(bad, &admin).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { field: "count", .. }), "{err}");
    }
    assert_eq!(store.tag_batch(3).await.unwrap(), Vec::<TreeCode>::new());
}

async fn tag_assignments_round_trip(store: Arc<dyn Storage>) {
    let code = store.issue_tags(1, &Actor::system("admin")).await.unwrap().codes[0];
    let at = chrono::Utc::now().trunc_subsecs(6);
    let first = store::TagAssignment {
        code,
        tree_id: TreeId(7),
        reassign: false,
        by: "vol".into(),
        by_user: Some(geo_core::UserId(3)),
        at,
        note: None,
    };
    let second =
        store::TagAssignment { tree_id: TreeId(9), reassign: true, note: Some("tag moved".into()), ..first.clone() };
    store.record_tag_assignment(&first).await.unwrap();
    store.record_tag_assignment(&second).await.unwrap();
    assert_eq!(store.tag_assignments(&code).await.unwrap(), vec![first, second]);
    assert!(store.tag_assignments(&code_of(1)).await.unwrap().is_empty());
}

fn code_of(serial: u64) -> TreeCode {
    TreeCode::from_serial(serial).unwrap()
}

fn new_lot(orchard: &str) -> geo_core::NewLot {
    geo_core::NewLot {
        orchard_id: OrchardId::new(orchard).unwrap(),
        trees: geo_core::LotTrees::Trees(vec![TreeId(3), TreeId(1), TreeId(3)]),
        harvest_date: NaiveDate::from_ymd_opt(2026, 6, 10).unwrap(),
        weight_kg: 1234.5678901234,
        boxes: Some(80),
        packing_house: Some("VN-DLPH-0042".into()),
        lab_results: vec![
            geo_core::LabResult {
                analyte: geo_core::Analyte::Cadmium,
                value_mg_per_kg: Some(0.012345678901),
                laboratory: "Trung tâm Kiểm nghiệm Đắk Lắk".into(),
                tested_on: NaiveDate::from_ymd_opt(2026, 6, 8).unwrap(),
                report_no: Some("KN-2026/0612".into()),
            },
            geo_core::LabResult {
                analyte: geo_core::Analyte::AuramineO,
                value_mg_per_kg: None,
                laboratory: "Lab B".into(),
                tested_on: NaiveDate::from_ymd_opt(2026, 6, 8).unwrap(),
                report_no: None,
            },
        ],
        domestic: false,
        gtin: Some("9506000134352".into()),
    }
}

async fn lots_round_trip_and_revocation(store: Arc<dyn Storage>) {
    store.import(batch(&["DL-001", "DL-002"], vec![])).await.unwrap();
    let farmer = Actor { user_id: Some(geo_core::UserId(4)), name: "farmer".into() };
    let spec = new_lot("DL-001");
    let lot = store.create_lot(&spec, &[TreeId(3), TreeId(1), TreeId(3)], &farmer).await.unwrap();
    assert_eq!(lot.code, geo_core::LotCode::for_id(lot.id).unwrap());
    assert_eq!(lot.tree_ids, vec![TreeId(1), TreeId(3)]);
    assert_eq!(lot.weight_kg.to_bits(), spec.weight_kg.to_bits());
    assert_eq!(lot.lab_results, spec.lab_results);
    assert_eq!(lot.gtin.as_deref(), Some("09506000134352"));
    assert_eq!((lot.created_by.as_str(), lot.created_by_id), ("farmer", Some(geo_core::UserId(4))));
    assert!(!lot.whole_orchard && !lot.domestic && lot.revoked_at.is_none());
    assert_eq!(store.lot(lot.id).await.unwrap().as_ref(), Some(&lot));
    let whole =
        geo_core::NewLot { trees: geo_core::LotTrees::WholeOrchard, domestic: true, gtin: None, ..new_lot("DL-002") };
    let other = store.create_lot(&whole, &[TreeId(5)], &farmer).await.unwrap();
    assert!(other.whole_orchard && other.domestic && other.gtin.is_none());
    let ids: Vec<_> = store.lots(None).await.unwrap().into_iter().map(|l| l.id).collect();
    assert_eq!(ids, vec![other.id, lot.id]);
    let mine: Vec<_> = store.lots(Some(&OrchardId::new("DL-001").unwrap())).await.unwrap();
    assert_eq!(mine, vec![lot.clone()]);
    let err = store.create_lot(&new_lot("NOWHERE"), &[], &farmer).await.unwrap_err();
    assert!(matches!(err, Error::UnknownOrchard(_)), "{err}");
    let err =
        store.create_lot(&geo_core::NewLot { weight_kg: f64::NAN, ..spec.clone() }, &[], &farmer).await.unwrap_err();
    assert!(matches!(err, Error::Invalid { field: "weight_kg", .. }), "{err}");
    assert_eq!(store.lots(None).await.unwrap().len(), 2, "failed creations wrote nothing");
    let admin = Actor::system("admin");
    let revoked = store.revoke_lot(lot.id, "copies found in market X", &admin).await.unwrap().unwrap();
    let at = revoked.revoked_at.unwrap();
    assert!(revoked.revoked_reason.unwrap().contains("copies found"));
    let again = store.revoke_lot(lot.id, "second reason", &admin).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(at));
    assert!(!again.revoked_reason.unwrap().contains("second"));
    assert_eq!(store.revoke_lot(geo_core::LotId(999), "x", &admin).await.unwrap(), None);
    assert_eq!(store.lot(geo_core::LotId(999)).await.unwrap(), None);
}

async fn scans_add_up_and_rank(store: Arc<dyn Storage>) {
    let hour = chrono::DateTime::parse_from_rfc3339("2026-06-10T08:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let later = hour + chrono::Duration::hours(1);
    let s =
        |code: &str, hour, place: &str, count| store::ScanCount { code: code.into(), hour, place: place.into(), count };
    store.add_scans(&[s("LAAA", hour, "", 2), s("LAAA", hour, "108.0,12.6", 1), s("TBBB", hour, "", 1)]).await.unwrap();
    store.add_scans(&[s("LAAA", hour, "", 3), s("LAAA", later, "", 1)]).await.unwrap();
    store.add_scans(&[]).await.unwrap();
    let counts = store.scan_counts("LAAA").await.unwrap();
    assert_eq!(counts, vec![s("LAAA", hour, "", 5), s("LAAA", hour, "108.0,12.6", 1), s("LAAA", later, "", 1)]);
    assert!(store.scan_counts("NONE").await.unwrap().is_empty());
    assert_eq!(store.most_scanned(10).await.unwrap(), vec![("LAAA".to_string(), 7), ("TBBB".to_string(), 1)]);
    assert_eq!(store.most_scanned(1).await.unwrap().len(), 1);
}

async fn orchard_gln_round_trip_and_survives_imports(store: Arc<dyn Storage>) {
    let mut o = orchard("GLN-1");
    o.gln = Some("9520123456788".into());
    store.put_orchard(&o, &Actor::system("admin")).await.unwrap();
    assert_eq!(store.orchard(&o.id).await.unwrap().unwrap(), o);
    // An import that brings the orchard without a GLN keeps the stored one.
    store.import(batch(&["GLN-1"], vec![draft("GLN-1", 0)])).await.unwrap();
    assert_eq!(store.orchard(&o.id).await.unwrap().unwrap().gln.as_deref(), Some("9520123456788"));
    o.gln = None;
    store.put_orchard(&o, &Actor::system("admin")).await.unwrap();
    assert_eq!(store.orchard(&o.id).await.unwrap().unwrap().gln, None, "an edit may remove the GLN");
}

/// SQLite: `backup` copies the database while edits go on; the copy opens, holds every tree, and each
/// tree in it is a version the live database had (none half-written). PostgreSQL: refused, naming pg_dump.
async fn backup_is_a_consistent_copy_taken_while_writing(store: Arc<dyn Storage>) {
    let drafts: Vec<NewTree> = (0..2000).map(|i| draft("DL-001", i)).collect();
    let imported = store.import(batch(&["DL-001"], drafts)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("copy.db");
    if store.backend() == Backend::Postgres {
        let err = store.backup(&out).await.unwrap_err();
        assert!(err.to_string().contains("pg_dump"), "{err}");
        return;
    }
    let writer = {
        let (store, trees) = (store.clone(), imported.trees.clone());
        tokio::spawn(async move {
            for (i, t) in trees.iter().take(300).enumerate() {
                let edit = Tree { girth_cm: Some(1000.0 + i as f64), ..t.clone() };
                store.edit_tree(&edit, &Actor::system("writer")).await.unwrap();
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    store.backup(&out).await.unwrap();
    writer.await.unwrap();
    let err = store.backup(&out).await.unwrap_err();
    assert!(matches!(err, Error::Invalid { field: "out", .. }), "an existing file is never overwritten: {err}");
    let copy = store::open(out.to_str().unwrap()).await.unwrap();
    assert_eq!(copy.count_trees().await.unwrap(), 2000);
    let live = store.all_trees().await.unwrap();
    let copied = copy.all_trees().await.unwrap();
    for (c, l) in copied.iter().zip(&live) {
        assert_eq!(c.id, l.id);
        match c.version {
            1 => assert_eq!(c.girth_cm, imported.trees[(c.id.0 - imported.trees[0].id.0) as usize].girth_cm),
            2 => assert_eq!(c, l, "an edited tree in the copy is the edit as committed"),
            v => panic!("version {v}"),
        }
    }
    // The copy's change log is a prefix of the live one.
    assert!(copy.last_change().await.unwrap() <= store.last_change().await.unwrap());
}
