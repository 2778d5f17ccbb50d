//! The in-memory view of the trees: records by id and code, per-orchard
//! counts, and the spatial index. It is a cache of the database, kept in step
//! by following the database's change log ([`follow_changes`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use geo_core::{
    BBox, BriefFilter, CultivarTable, IndexedTree, LonLat, Orchard, OrchardId, Tree, TreeCode, TreeFilter, TreeId,
    TreeIndex, Verdict,
};
use tiles::{ClusterPyramid, TileId};

use crate::routes::tiles::{MAX_TILE_ZOOM, TileContent, buffered_bounds};
use crate::tilecache::TileCache;
use store::Storage;

/// Trees held in memory with their spatial index.
#[derive(Debug, Default)]
pub struct TreeSet {
    /// Spatial index over all trees.
    pub index: TreeIndex,
    trees: HashMap<TreeId, Arc<Tree>>,
    by_code: HashMap<TreeCode, TreeId>,
    per_orchard: HashMap<OrchardId, u32>,
    /// Symbols of the cultivars in the index entries' briefs.
    pub cultivars: CultivarTable,
    /// Tree counts by map cell for the clustered zooms of the tree tiles.
    pub pyramid: ClusterPyramid,
    /// Positions (old and new) of trees changed since the owner last took them (see [`TreeSet::take_touched`]).
    touched: Vec<LonLat>,
}

impl TreeSet {
    /// Builds the set from every stored tree.
    pub fn from_trees(all: Vec<Tree>) -> Self {
        // The R-tree and the maps are independent: build them on two threads.
        let mut cultivars = CultivarTable::new();
        let entries: Vec<IndexedTree> =
            all.iter().map(|t| IndexedTree::briefed(t.id, t.location, cultivars.brief(t))).collect();
        let cells: Vec<(u64, LonLat, geo_core::Health)> =
            all.iter().filter_map(|t| Some((u64::try_from(t.id.0).ok()?, t.location, t.health))).collect();
        std::thread::scope(|scope| {
            let index = scope.spawn(move || TreeIndex::bulk_load_entries(entries));
            let pyramid = scope.spawn(move || ClusterPyramid::build(&cells));
            let mut trees = HashMap::with_capacity(all.len());
            let mut by_code = HashMap::with_capacity(all.len());
            let mut per_orchard: HashMap<OrchardId, u32> = HashMap::new();
            for tree in all {
                match per_orchard.get_mut(&tree.orchard_id) {
                    Some(n) => *n += 1,
                    None => {
                        per_orchard.insert(tree.orchard_id.clone(), 1);
                    }
                }
                by_code.insert(tree.code, tree.id);
                trees.insert(tree.id, Arc::new(tree));
            }
            // A panic in the index thread is a bug, not an input problem; surface it.
            let index = index.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            let pyramid = pyramid.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            TreeSet { index, trees, by_code, per_orchard, cultivars, pyramid, touched: Vec::new() }
        })
    }

    /// Number of trees.
    pub fn len(&self) -> usize {
        self.trees.len()
    }

    /// True when no tree is held.
    pub fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }

    /// A tree by id.
    pub fn get(&self, id: TreeId) -> Option<&Arc<Tree>> {
        self.trees.get(&id)
    }

    /// A tree by tag code.
    pub fn by_code(&self, code: &TreeCode) -> Option<&Arc<Tree>> {
        self.by_code.get(code).and_then(|id| self.trees.get(id))
    }

    /// How many trees an orchard has.
    pub fn orchard_tree_count(&self, orchard: &OrchardId) -> u32 {
        self.per_orchard.get(orchard).copied().unwrap_or(0)
    }

    /// Adds or replaces a tree (moving it in the index when its position changed).
    pub fn upsert(&mut self, tree: Tree) {
        if let Some(old) = self.trees.get(&tree.id).cloned() {
            if old.version > tree.version || *old == tree {
                return; // Never go back in time when two sources race; nothing to do when unchanged.
            }
            self.forget(&old);
        }
        self.touched.push(tree.location);
        if let Ok(id) = u64::try_from(tree.id.0) {
            self.pyramid.insert(id, tree.location, tree.health);
        }
        let brief = self.cultivars.brief(&tree);
        self.index.insert_entry(IndexedTree::briefed(tree.id, tree.location, brief));
        self.by_code.insert(tree.code, tree.id);
        *self.per_orchard.entry(tree.orchard_id.clone()).or_default() += 1;
        self.trees.insert(tree.id, Arc::new(tree));
    }

    /// Drops a tree that no longer exists.
    pub fn remove(&mut self, id: TreeId) {
        if let Some(old) = self.trees.get(&id).cloned() {
            self.forget(&old);
            self.trees.remove(&id);
        }
    }

    /// Takes the positions of trees changed since the last call (their old and new places).
    pub fn take_touched(&mut self) -> Vec<LonLat> {
        std::mem::take(&mut self.touched)
    }

    fn forget(&mut self, old: &Tree) {
        self.touched.push(old.location);
        if let Ok(id) = u64::try_from(old.id.0) {
            self.pyramid.remove(id, old.location, old.health);
        }
        self.index.remove_entry(&IndexedTree::briefed(old.id, old.location, self.cultivars.brief_of(old)));
        if self.by_code.get(&old.code) == Some(&old.id) {
            self.by_code.remove(&old.code);
        }
        if let Some(n) = self.per_orchard.get_mut(&old.orchard_id) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Every orchard by id, shared read-only; replaced whole when orchards change.
pub type OrchardMap = Arc<HashMap<OrchardId, Arc<Orchard>>>;

/// Shared handle on the tree set plus the change-log position it reflects,
/// and the orchards (few, reloaded whole when any changes).
#[derive(Debug, Default)]
pub struct TreeCache {
    set: RwLock<TreeSet>,
    applied_seq: std::sync::atomic::AtomicI64,
    orchards: RwLock<OrchardMap>,
    orchards_at: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    /// Rendered map tiles, invalidated here as trees change.
    tiles: TileCache,
}

impl TreeCache {
    /// Loads every tree from the store. The change-log position is read first,
    /// so a write racing with the load is applied again later (idempotent)
    /// rather than missed.
    pub async fn load(store: &dyn Storage) -> store::Result<Self> {
        let seq = store.last_change().await?;
        let started = std::time::Instant::now();
        let all = store.all_trees().await?;
        let read = started.elapsed();
        let set = tokio::task::spawn_blocking(move || TreeSet::from_trees(all))
            .await
            .map_err(|e| store::Error::Corrupt { table: "trees", reason: format!("index build failed: {e}") })?;
        tracing::info!(
            trees = set.len(),
            read_ms = read.as_millis() as u64,
            index_ms = (started.elapsed() - read).as_millis() as u64,
            "trees loaded into memory"
        );
        let cache = Self { set: RwLock::new(set), applied_seq: seq.into(), ..Default::default() };
        cache.refresh_orchards(store).await?;
        Ok(cache)
    }

    /// Every orchard (a cheap handle on the current map).
    pub fn orchards(&self) -> OrchardMap {
        self.orchards.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// One orchard.
    pub fn orchard(&self, id: &OrchardId) -> Option<Arc<Orchard>> {
        self.orchards.read().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// Reloads the orchards when any changed since the last load (or always,
    /// the first time); returns whether it reloaded.
    pub async fn refresh_orchards(&self, store: &dyn Storage) -> store::Result<bool> {
        let newest = store.orchards_updated_at().await.ok().flatten();
        let known = *self.orchards_at.lock().unwrap_or_else(|e| e.into_inner());
        if newest.is_some() && newest == known {
            return Ok(false);
        }
        let all = store.orchards().await?;
        let map: HashMap<OrchardId, Arc<Orchard>> = all.into_iter().map(|o| (o.id.clone(), Arc::new(o))).collect();
        *self.orchards.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
        // Boundaries are in every tile that shows them: start afresh (orchards change rarely).
        self.tiles.clear();
        *self.orchards_at.lock().unwrap_or_else(|e| e.into_inner()) = newest;
        Ok(true)
    }

    /// Puts a tree just written by this process into the set at once (the
    /// change log brings it again later; applying it twice is harmless).
    pub fn apply(&self, tree: Tree) {
        let touched = {
            let mut set = self.write();
            set.upsert(tree);
            set.take_touched()
        };
        self.invalidate_tiles(&touched);
    }

    /// Drops a tree just removed by this process.
    pub fn forget(&self, id: TreeId) {
        let touched = {
            let mut set = self.write();
            set.remove(id);
            set.take_touched()
        };
        self.invalidate_tiles(&touched);
    }

    /// The same cache with a rendered-tile cache of at most `bytes`.
    pub fn with_tile_cache_bytes(mut self, bytes: usize) -> Self {
        self.tiles = TileCache::new(bytes);
        self
    }

    /// The rendered-tile cache.
    pub fn tiles(&self) -> &TileCache {
        &self.tiles
    }

    /// Invalidates the cached tiles showing any of `positions` (every zoom);
    /// past a few thousand positions (an import), the whole cache.
    fn invalidate_tiles(&self, positions: &[LonLat]) {
        const WHOLE_CACHE_FROM: usize = 5_000;
        if positions.is_empty() {
            return;
        }
        if positions.len() >= WHOLE_CACHE_FROM {
            self.tiles.clear();
            return;
        }
        let mut tiles: Vec<TileId> =
            positions.iter().flat_map(|p| tiles::tiles_containing(*p, MAX_TILE_ZOOM)).collect();
        tiles.sort_unstable_by_key(|t| (t.z(), t.x(), t.y()));
        tiles.dedup();
        self.tiles.invalidate(tiles);
    }

    /// Read access. A poisoned lock (a panic while writing) is still readable:
    /// the set's operations leave it consistent at every step.
    pub fn read(&self) -> RwLockReadGuard<'_, TreeSet> {
        self.set.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, TreeSet> {
        self.set.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The last change-log entry applied.
    pub fn applied_seq(&self) -> i64 {
        self.applied_seq.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Applies every change logged after [`Self::applied_seq`]; returns how many trees were refreshed.
    pub async fn catch_up(&self, store: &dyn Storage) -> store::Result<usize> {
        const BATCH: u32 = 20_000;
        let mut refreshed = 0;
        loop {
            let from = self.applied_seq();
            let changes = store.changes_since(from, BATCH).await?;
            let Some(last) = changes.last().map(|c| c.seq) else { return Ok(refreshed) };
            let mut ids: Vec<TreeId> = changes.iter().map(|c| c.tree_id).collect();
            ids.sort_unstable();
            ids.dedup();
            let found = store.trees_by_ids(&ids).await?;
            let touched = {
                let mut set = self.write();
                let mut present = std::collections::HashSet::with_capacity(found.len());
                for tree in found {
                    present.insert(tree.id);
                    set.upsert(tree);
                }
                for id in ids.iter().filter(|id| !present.contains(id)) {
                    set.remove(*id);
                }
                set.take_touched()
            };
            self.invalidate_tiles(&touched);
            refreshed += ids.len();
            self.applied_seq.store(last, std::sync::atomic::Ordering::Release);
            if changes.len() < BATCH as usize {
                return Ok(refreshed);
            }
        }
    }
}

/// The trees of `set` in `bounds` passing `filter`, in id order.
fn trees_in<'s>(set: &'s TreeSet, orchards: &OrchardMap, bounds: &BBox, filter: &TreeFilter) -> Vec<&'s Arc<Tree>> {
    let briefs = BriefFilter::new(filter, &set.cultivars);
    let orchard_of = |t: &Tree| orchards.get(&t.orchard_id).map(|o| o.as_ref());
    let mut trees: Vec<&Arc<Tree>> = set
        .index
        .in_bbox(bounds)
        .filter_map(|e| {
            let verdict = briefs.admits(&e.brief);
            if verdict == Verdict::No {
                return None;
            }
            let tree = set.get(e.id)?;
            (verdict == Verdict::Yes || filter.matches(tree, orchard_of(tree))).then_some(tree)
        })
        .collect();
    // Index order depends on insertion history; id order makes equal data give equal bytes.
    trees.sort_unstable_by_key(|t| t.id);
    trees
}

/// Clusters of the trees passing `filter` around `tile`, made on the spot
/// (same grid as the pyramid).
fn clusters_of(set: &TreeSet, orchards: &OrchardMap, tile: TileId, filter: &TreeFilter) -> Vec<tiles::Cluster> {
    let trees = trees_in(set, orchards, &tiles::cluster::cluster_query_bounds(tile), filter);
    let points: Vec<(u64, LonLat, geo_core::Health)> =
        trees.iter().filter_map(|t| Some((u64::try_from(t.id.0).ok()?, t.location, t.health))).collect();
    tiles::cluster_on_the_fly(tile, &points)
}

/// The health states a health-only filter keeps (good, fair, poor, dead), or
/// `None` when the filter asks more than health.
fn health_only(filter: &TreeFilter) -> Option<[bool; 4]> {
    let rest = TreeFilter { health: Vec::new(), ..filter.clone() };
    if filter.health.is_empty() || !rest.is_empty() {
        return None;
    }
    Some(geo_core::Health::ALL.map(|h| filter.health.contains(&h)))
}

/// What tile `tile` shows of `set` (trees passing `filter`) and of
/// `orchards`; `pad` widens the square for trees drawn one by one.
///
/// At the pyramid's zooms: its clusters (health-only filters from their
/// counts; other filters cluster the matching trees on the spot). Above:
/// the trees, unless more than the pyramid's raw limit, then clustered on
/// the spot, so no tile grows past the feature and size ceilings.
pub fn tile_content(set: &TreeSet, orchards: &OrchardMap, tile: TileId, filter: &TreeFilter, pad: f64) -> TileContent {
    let bounds = buffered_bounds(tile, pad);
    let mut shown: Vec<&Arc<Orchard>> = orchards
        .values()
        .filter(|o| {
            o.boundary.as_ref().is_some_and(|b| {
                BBox::around(b.exterior().coords().map(|c| LonLat::new(c.x, c.y))).is_some_and(|o| {
                    o.min_lon <= bounds.max_lon
                        && o.max_lon >= bounds.min_lon
                        && o.min_lat <= bounds.max_lat
                        && o.max_lat >= bounds.min_lat
                })
            })
        })
        .collect();
    shown.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    let polygons = shown.iter().filter_map(|o| tiles::TilePolygon::from_orchard(o)).collect();
    let clusters = match set.pyramid.clusters_in(tile) {
        Some(all) if filter.is_empty() => Some(all),
        Some(all) => match health_only(filter) {
            Some(keep) => Some(all.iter().filter_map(|c| c.with_health(keep)).collect()),
            None => Some(clusters_of(set, orchards, tile, filter)),
        },
        None => None,
    };
    let clusters = match clusters {
        Some(clusters) => clusters,
        None => {
            let trees = trees_in(set, orchards, &bounds, filter);
            if trees.len() <= set.pyramid.raw_limit() {
                return TileContent::Trees { trees: trees.into_iter().cloned().collect(), orchards: polygons };
            }
            clusters_of(set, orchards, tile, filter)
        }
    };
    // The trees of one-tree clusters are drawn as themselves.
    let singles = clusters.iter().filter_map(|c| c.single).filter_map(|id| {
        let tree = set.get(TreeId(i64::try_from(id).ok()?))?;
        Some((id, tree.clone()))
    });
    TileContent::Clusters { singles: singles.collect(), clusters, orchards: polygons }
}

/// Follows the database change log forever, every `every`; errors are logged and retried.
pub async fn follow_changes(cache: Arc<TreeCache>, store: Arc<dyn Storage>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = cache.refresh_orchards(store.as_ref()).await {
            tracing::warn!(error = %e, "cannot reload orchards; will retry");
        }
        match cache.catch_up(store.as_ref()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(trees = n, seq = cache.applied_seq(), "applied changes from the database"),
            Err(e) => tracing::warn!(error = %e, "cannot read the change log; will retry"),
        }
    }
}
