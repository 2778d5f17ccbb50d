#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The clustering pyramid and cluster tiles: counts, positions, limits,
//! determinism, incremental updates, single trees, invalidation.

#[allow(dead_code)] // the tests use part of the fixture
#[path = "../benches/cluster_fixture/mod.rs"]
mod fixture;

use fixture::{Path, Rng, Tree, World};
use geo_core::{Health, LonLat};
use tiles::cluster::{
    CELLS_PER_TILE, Cluster, ClusterOptions, ClusterPyramid, cluster_on_the_fly, cluster_query_bounds,
    encode_cluster_tile, tiles_containing,
};
use tiles::mvt::{self, Value};
use tiles::{EXTENT, TREES_LAYER, TileId, encode_trees_tile, lonlat_to_tile_pixel, tile_for};

fn z0() -> TileId {
    TileId::new(0, 0, 0).unwrap()
}

fn options(raw_limit: usize) -> ClusterOptions {
    ClusterOptions { raw_limit, ..Default::default() }
}

fn int(f: &mvt::Feature, key: &str) -> i64 {
    f.get(key).and_then(Value::as_i64).unwrap_or_else(|| panic!("{key} missing in {f:?}"))
}

fn health_index(h: Health) -> usize {
    Health::ALL.iter().position(|x| *x == h).unwrap()
}

/// Cluster features of a decoded tile whose point lies in the tile itself (not the buffer).
fn own_features(bytes: &[u8]) -> Vec<mvt::Feature> {
    let tile = mvt::decode(bytes).unwrap();
    let Some(layer) = tile.layer(TREES_LAYER) else { return vec![] };
    layer
        .features
        .iter()
        .filter(|f| {
            let mvt::Geometry::Point(p) = &f.geometry else { panic!("not a point") };
            let r = 0..EXTENT as i32;
            r.contains(&p[0].0) && r.contains(&p[0].1)
        })
        .cloned()
        .collect()
}

#[test]
fn counts_are_conserved_at_every_clustered_zoom() {
    let trees = fixture::uniform(20_000, 3);
    let pyramid = ClusterPyramid::build_with(&trees, options(100));
    let top = pyramid.clustered_zooms().expect("20,000 trees are clustered");
    assert!(top >= 8, "clustered up to z{top}");
    let mut by_health = [0u64; 4];
    for t in &trees {
        by_health[health_index(t.2)] += 1;
    }

    // z0: one tile, everything in it, and the decoded tile says so.
    let clusters = pyramid.clusters_in(z0()).unwrap();
    assert_eq!(clusters.iter().map(Cluster::count).sum::<u64>(), 20_000);
    let bytes = encode_cluster_tile(z0(), &clusters, |_| None, &[]);
    let features = own_features(&bytes);
    assert_eq!(features.iter().map(|f| int(f, "point_count")).sum::<i64>(), 20_000);
    for (k, key) in ["good", "fair", "poor", "dead"].iter().enumerate() {
        assert_eq!(features.iter().map(|f| int(f, key)).sum::<i64>() as u64, by_health[k], "{key}");
    }
    for f in &features {
        assert_eq!(f.get("clustered"), Some(&Value::Bool(true)));
        let n = int(f, "point_count");
        assert_eq!(["good", "fair", "poor", "dead"].iter().map(|k| int(f, k)).sum::<i64>(), n);
        assert_eq!(
            f.get("point_count_abbreviated").and_then(Value::as_str),
            Some(tiles::cluster::abbreviate(n as u64).as_str())
        );
        assert_eq!(f.id, None);
    }

    // Every clustered zoom: the tiles holding trees, own features only, add up to N.
    for z in 1..=top {
        let mut tiles: Vec<TileId> = trees.iter().map(|t| tile_for(t.1, z).unwrap()).collect();
        tiles.sort();
        tiles.dedup();
        let mut total = 0;
        let mut health = [0u64; 4];
        for tile in tiles {
            for c in pyramid.clusters_in(tile).unwrap() {
                if tile_for(c.location, z).unwrap() == tile {
                    total += c.count();
                    for (h, n) in health.iter_mut().zip(c.counts) {
                        *h += u64::from(n);
                    }
                }
            }
        }
        assert_eq!(total, 20_000, "z{z}");
        assert_eq!(health, by_health, "z{z}");
    }
    assert_eq!(pyramid.clusters_in(TileId::new(u32::from(top) + 1, 0, 0).unwrap()), None);
}

#[test]
fn mean_position_and_health_counts_of_a_cell() {
    // Five trees a few metres apart: one cell at z10, whose mean is the mean
    // of their Web Mercator coordinates.
    let pts = [(108.0501, 12.6801), (108.0503, 12.6802), (108.0502, 12.6806), (108.0508, 12.6804), (108.0506, 12.6800)];
    let healths = [Health::Good, Health::Poor, Health::Poor, Health::Dead, Health::Good];
    let trees: Vec<Tree> =
        pts.iter().zip(healths).enumerate().map(|(i, (p, h))| (i as u64 + 1, LonLat::new(p.0, p.1), h)).collect();
    let pyramid = ClusterPyramid::build_with(&trees, options(0));
    let tile = tile_for(LonLat::new(108.0503, 12.6803), 10).unwrap();
    let clusters = pyramid.clusters_in(tile).unwrap();
    assert_eq!(clusters.len(), 1);
    let c = &clusters[0];
    assert_eq!(c.counts, [2, 0, 2, 1]);
    assert_eq!(c.single, None);
    // Mean in Web Mercator (x linear in lon, y = asinh(tan φ)), back to degrees.
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / 5.0;
    let my = pts.iter().map(|p| p.1.to_radians().tan().asinh()).sum::<f64>() / 5.0;
    let lat = my.sinh().atan().to_degrees();
    assert!((c.location.lon - mx).abs() < 1e-7, "{} vs {mx}", c.location.lon);
    assert!((c.location.lat - lat).abs() < 1e-7, "{} vs {lat}", c.location.lat);
    // The mean is not simply the first tree or the cell centre.
    assert!((c.location.lon - pts[0].0).abs() > 1e-5);

    // Health filter from the counts.
    let poor = c.with_health([false, false, true, false]).unwrap();
    assert_eq!(poor.counts, [0, 0, 2, 0]);
    assert_eq!(poor.count(), 2);
    assert_eq!(c.with_health([false, true, false, false]), None);
}

#[test]
fn single_tree_cells_are_the_tree() {
    // Trees far apart: at the top clustered zoom each cell holds one tree.
    let trees: Vec<Tree> = (0..50u64)
        .map(|i| (1000 + i, LonLat::new(107.9 + 0.017 * i as f64, 12.3 + 0.013 * i as f64), Health::Fair))
        .collect();
    let point = |id: u64| {
        let (id, at, h) = *trees.get(usize::try_from(id.checked_sub(1000)?).ok()?)?;
        Some(tiles::TilePoint {
            id,
            location: at,
            code: format!("DUR-{id}"),
            cultivar: "Ri6".into(),
            health: h.as_str().into(),
            planted_year: Some(2011),
            orchard: "DL-1".into(),
        })
    };
    let pyramid = ClusterPyramid::build_with(&trees, ClusterOptions { raw_limit: 0, max_cluster_zoom: 12 });
    assert_eq!(pyramid.clustered_zooms(), Some(12));
    let t = trees[7];
    let tile = tile_for(t.1, 12).unwrap();
    let clusters = pyramid.clusters_in(tile).unwrap();
    assert!(clusters.len() > 1, "several trees in the tile");
    assert!(clusters.iter().all(|c| c.count() == 1 && c.single.is_some()));
    let k = clusters.iter().position(|c| c.single == Some(1007)).expect("tree 1007 is a cell of its own");
    assert_eq!(clusters[k].counts, [0, 1, 0, 0]);
    // The cell's mean is the tree itself, to the quantisation (~9 mm).
    let l = clusters[k].location;
    assert!((l.lon - t.1.lon).abs() < 1e-7 && (l.lat - t.1.lat).abs() < 1e-7, "{l:?}");

    let bytes = encode_cluster_tile(tile, &clusters, point, &[]);
    let decoded = mvt::decode(&bytes).unwrap();
    let layer = decoded.layer(TREES_LAYER).unwrap();
    assert!(layer.features.iter().all(|f| f.id.is_some() && f.get("clustered").is_none()));
    let f = layer.features.iter().find(|f| f.id == Some(1007)).unwrap();
    assert_eq!(f.get("code").and_then(Value::as_str), Some("DUR-1007"));
    assert_eq!(f.get("health").and_then(Value::as_str), Some("fair"));
    // Exactly the feature encode_trees_tile writes for that tree.
    let plain = mvt::decode(&encode_trees_tile(tile, &[point(1007).unwrap()], &[])).unwrap();
    assert_eq!(&plain.layer(TREES_LAYER).unwrap().features[0], f);

    // Without the tree's record, it is a cluster of one.
    let bytes = encode_cluster_tile(tile, &clusters[k..=k], |_| None, &[]);
    let decoded = mvt::decode(&bytes).unwrap();
    let f = &decoded.layer(TREES_LAYER).unwrap().features[0];
    assert_eq!((f.id, int(f, "point_count"), int(f, "fair")), (None, 1, 1));
    assert_eq!(f.get("point_count_abbreviated").and_then(Value::as_str), Some("1"));
}

#[test]
fn same_trees_same_bytes_in_any_order() {
    let trees = fixture::uniform(30_000, 5);
    let a = ClusterPyramid::build_with(&trees, options(200));
    let mut shuffled = trees.clone();
    let mut rng = Rng::new(99);
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.below(i + 1));
    }
    let b = ClusterPyramid::build_with(&shuffled, options(200));
    assert_eq!(a, b);
    let top = a.clustered_zooms().unwrap();
    for z in 0..=top {
        for tile in fixture::tiles_with_trees(&trees, z, 5, u64::from(z) + 1) {
            let ca = a.clusters_in(tile).unwrap();
            let bytes = encode_cluster_tile(tile, &ca, |_| None, &[]);
            assert!(!bytes.is_empty());
            assert_eq!(bytes, encode_cluster_tile(tile, &b.clusters_in(tile).unwrap(), |_| None, &[]));
            // On the fly, from the trees around the tile in any order: the same clusters.
            let q = cluster_query_bounds(tile);
            let near: Vec<Tree> = shuffled.iter().filter(|t| q.contains(t.1)).copied().collect();
            assert_eq!(cluster_on_the_fly(tile, &near), ca, "{tile}");
            assert_eq!(cluster_on_the_fly(tile, &trees), ca, "{tile}");
        }
    }
}

#[test]
fn incremental_updates_equal_a_fresh_build() {
    let mut trees = fixture::uniform(5_000, 11);
    let opts = ClusterOptions { raw_limit: 0, max_cluster_zoom: 9 };
    let mut pyramid = ClusterPyramid::build_with(&trees, opts);
    assert_eq!(pyramid.clustered_zooms(), Some(9));
    let before = pyramid.clone();

    let mut rng = Rng::new(7);
    // Add 300, remove 200, move 200, re-grade 200.
    for i in 0..300u64 {
        let t = (100_000 + i, LonLat::new(107.9 + 0.9 * rng.next_f64(), 12.3 + 0.9 * rng.next_f64()), Health::Poor);
        assert!(pyramid.insert(t.0, t.1, t.2));
        trees.push(t);
    }
    for _ in 0..200 {
        let t = trees.swap_remove(rng.below(trees.len()));
        assert!(pyramid.remove(t.0, t.1, t.2));
    }
    for _ in 0..200 {
        let i = rng.below(trees.len());
        let to = LonLat::new(107.9 + 0.9 * rng.next_f64(), 12.3 + 0.9 * rng.next_f64());
        assert!(pyramid.update(trees[i].0, (trees[i].1, trees[i].2), (to, trees[i].2)));
        trees[i].1 = to;
    }
    for _ in 0..200 {
        let i = rng.below(trees.len());
        let h = Health::ALL[rng.below(4)];
        assert!(pyramid.update(trees[i].0, (trees[i].1, trees[i].2), (trees[i].1, h)));
        trees[i].2 = h;
    }
    assert_ne!(pyramid, before);
    let fresh = ClusterPyramid::build_with(&trees, opts);
    assert_eq!(pyramid.len(), trees.len());
    assert_eq!(pyramid, fresh);
    for z in 0..=9 {
        for tile in fixture::tiles_with_trees(&trees, z, 4, 3) {
            let a = encode_cluster_tile(tile, &pyramid.clusters_in(tile).unwrap(), |_| None, &[]);
            let b = encode_cluster_tile(tile, &fresh.clusters_in(tile).unwrap(), |_| None, &[]);
            assert_eq!(a, b);
        }
    }

    // Removing what is not there changes nothing.
    let t = trees[0];
    let other = Health::ALL.iter().copied().find(|h| *h != t.2).unwrap();
    let far = LonLat::new(100.0, 20.0);
    assert!(!pyramid.remove(t.0, far, t.2));
    assert!(!pyramid.insert(1, LonLat::new(f64::NAN, 0.0), Health::Good));
    assert_eq!(pyramid, fresh);
    // (a same-cell tree of another health may exist; only check when it cannot)
    let cell_has_other = trees.iter().any(|u| u.2 == other && tile_for(u.1, 13) == tile_for(t.1, 13));
    if !cell_has_other {
        assert!(!pyramid.remove(t.0, t.1, other));
        assert_eq!(pyramid, fresh);
    }
    // Removing everything leaves an empty pyramid.
    for t in &trees {
        assert!(pyramid.remove(t.0, t.1, t.2));
    }
    assert!(pyramid.is_empty());
    assert_eq!(pyramid.cell_count(), 0);
    assert_eq!(pyramid.clusters_in(z0()), Some(vec![]));
}

#[test]
fn clumped_trees_stay_within_the_tile_limits() {
    // 200,000 trees in 2 km (the 1,000,000 case runs in the bench and example).
    let trees = fixture::clumped(200_000, 17);
    let world = World::new(trees);
    let top = world.pyramid.clustered_zooms().expect("clustered");
    assert!(top >= 14, "z{top}");
    let mut paths = Vec::new();
    for z in 0..=22u8 {
        let mut tiles = fixture::tiles_with_trees(&world.trees, z, 6, u64::from(z) + 100);
        tiles.push(tile_for(LonLat::new(108.0592, 12.689), z).unwrap()); // the middle
        for tile in tiles {
            let (bytes, path) = world.render(tile);
            paths.push(path);
            assert!(bytes.len() <= 500_000, "{tile}: {} bytes", bytes.len());
            let decoded = mvt::decode(&bytes).unwrap();
            let layer = decoded.layer(TREES_LAYER).expect("trees");
            assert!(!layer.features.is_empty() && layer.features.len() <= 50_000, "{tile}: {}", layer.features.len());
            if path == Path::Pyramid {
                assert!(layer.features.len() <= (CELLS_PER_TILE * CELLS_PER_TILE + 68) as usize);
            }
            if z == 0 {
                let n: i64 = layer.features.iter().map(|f| int(f, "point_count")).sum();
                assert_eq!(n, 200_000);
            }
        }
    }
    assert!(paths.contains(&Path::Pyramid) && paths.contains(&Path::Raw));
    // Low zooms are a handful of clusters, not 200,000 points.
    let (bytes, _) = world.render(z0());
    assert!(bytes.len() < 1_000, "{}", bytes.len());
}

#[test]
fn too_full_raw_tiles_are_clustered_on_the_fly() {
    // A pyramid capped at z5 over a dense clump: z12 tiles hold far more than the raw limit.
    let trees = fixture::clumped(20_000, 23);
    let pyramid = ClusterPyramid::build_with(&trees, ClusterOptions { raw_limit: 1_000, max_cluster_zoom: 5 });
    assert_eq!(pyramid.clustered_zooms(), Some(5));
    let tile = tile_for(trees[0].1, 12).unwrap();
    assert_eq!(pyramid.clusters_in(tile), None);
    let clusters = cluster_on_the_fly(tile, &trees);
    assert!(clusters.len() <= 256 + 68 && !clusters.is_empty());
    // The clusters inside the tile hold exactly the tile's trees.
    let inside: u64 = clusters.iter().filter(|c| tile_for(c.location, 12).unwrap() == tile).map(Cluster::count).sum();
    let expected = trees.iter().filter(|t| tile_for(t.1, 12).unwrap() == tile).count() as u64;
    assert_eq!(inside, expected);
    assert!(expected > 1_000);
}

#[test]
fn tiles_containing_covers_the_tile_and_the_buffers() {
    let mut rng = Rng::new(5);
    let mut points: Vec<LonLat> =
        (0..300).map(|_| LonLat::new(107.9 + 0.9 * rng.next_f64(), 12.3 + 0.9 * rng.next_f64())).collect();
    // Points just inside a z16 tile's west edge and north-west corner (in its neighbours' buffers).
    let t = tile_for(LonLat::new(108.05, 12.68), 16).unwrap();
    let b = t.bounds();
    let (w, h) = (b.max_lon - b.min_lon, b.max_lat - b.min_lat);
    let west = LonLat::new(b.min_lon + w * 10.0 / 4096.0, (b.min_lat + b.max_lat) / 2.0);
    let corner = LonLat::new(b.min_lon + w * 10.0 / 4096.0, b.max_lat - h * 10.0 / 4096.0);
    let middle = LonLat::new(b.min_lon + w / 2.0, b.min_lat + h / 2.0);
    points.extend([west, corner, middle]);

    for p in &points {
        let found = tiles_containing(*p, 20);
        for z in 0..=20u8 {
            let own = tile_for(*p, z).unwrap();
            assert!(found.contains(&own), "{p:?} z{z}");
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (x, y) = (i64::from(own.x()) + dx, i64::from(own.y()) + dy);
                    let Ok(n) = TileId::new(u32::from(z), x as u32, y as u32) else { continue };
                    let (px, py) = lonlat_to_tile_pixel(*p, n, EXTENT);
                    let r = -64..=(EXTENT as i32 + 64);
                    if r.contains(&px) && r.contains(&py) {
                        assert!(found.contains(&n), "{p:?}: {n} has it in its buffer");
                    }
                }
            }
        }
        // Nothing more than the tiles whose buffered square reaches the point's cell.
        for tile in &found {
            let (px, py) = lonlat_to_tile_pixel(*p, *tile, EXTENT);
            let r = -256..=(EXTENT as i32 + 256);
            assert!(r.contains(&px) && r.contains(&py), "{tile} for {p:?}");
        }
        assert!(found.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
    }
    // Concrete cases at z16: the west point brings the west neighbour, the corner three, the middle none.
    let at16 = |p: LonLat| tiles_containing(p, 16).into_iter().filter(|t| t.z() == 16).collect::<Vec<_>>();
    let n = |dx: i64, dy: i64| TileId::new(16, (i64::from(t.x()) + dx) as u32, (i64::from(t.y()) + dy) as u32).unwrap();
    assert_eq!(at16(west), [n(-1, 0), t]);
    let mut c = at16(corner);
    c.sort();
    let mut expected = vec![n(-1, -1), n(-1, 0), n(0, -1), t];
    expected.sort();
    assert_eq!(c, expected);
    assert_eq!(at16(middle), [t]);
    assert!(tiles_containing(LonLat::new(f64::NAN, 1.0), 20).is_empty());
}

#[test]
fn empty_and_small_datasets() {
    let empty = ClusterPyramid::build(&[]);
    assert_eq!((empty.len(), empty.clustered_zooms()), (0, None));
    assert_eq!(empty.clusters_in(z0()), None);
    // Fewer trees than the raw limit: every tile shows trees.
    let few = ClusterPyramid::build(&fixture::uniform(100, 1));
    assert_eq!(few.clustered_zooms(), None);
    assert_eq!(few.len(), 100);
    assert!(encode_cluster_tile(z0(), &[], |_| None, &[]).is_empty());
}

#[test]
fn trees_on_one_spot_are_clustered_up_to_the_last_zoom() {
    // 50,000 trees within about a metre: every zoom up to 24 is clustered.
    let mut rng = Rng::new(31);
    let trees: Vec<Tree> = (1..=50_000u64)
        .map(|id| (id, LonLat::new(108.05 + 1e-5 * rng.next_f64(), 12.68 + 1e-5 * rng.next_f64()), Health::Good))
        .collect();
    let pyramid = ClusterPyramid::build(&trees);
    assert_eq!(pyramid.clustered_zooms(), Some(tiles::MAX_ZOOM));
    for z in 0..=tiles::MAX_ZOOM {
        let tile = tile_for(trees[0].1, z).unwrap();
        let clusters = pyramid.clusters_in(tile).unwrap();
        assert!(!clusters.is_empty() && clusters.len() <= 256 + 68, "z{z}: {}", clusters.len());
        let bytes = encode_cluster_tile(tile, &clusters, |_| None, &[]);
        assert!(bytes.len() < 20_000, "z{z}: {} bytes", bytes.len());
    }
    assert!(pyramid.cell_count() < 50_000);
}
