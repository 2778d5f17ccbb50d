//! The in-memory tile cache: rendered tiles by address and variant (format
//! and filters), bounded in bytes, invalidated tile by tile.
//!
//! A tree change invalidates exactly the tiles that show it (every zoom, its
//! old and new position; see [`crate::TreeCache`]), in every variant. A
//! render that started before an invalidation is not cached afterwards: each
//! `put` carries the [`TileCache::epoch`] read before rendering, and is
//! dropped when any invalidation happened since (rare next to reads, and
//! always safe: the tile is rendered again on the next request).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use tiles::TileId;

/// Default bound of the tile cache: 256 MiB.
pub const DEFAULT_TILE_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// One rendered tile variant: its bytes, their gzip form and the `ETag`.
#[derive(Debug)]
pub struct CachedTile {
    /// The tile as rendered (MVT or PNG).
    pub body: Bytes,
    /// `body` gzip-compressed, when that is smaller (MVT; PNG is compressed already).
    pub gzip: Option<Bytes>,
    /// `body` brotli-compressed (MVT).
    pub br: Option<Bytes>,
    /// Strong validator: a digest of `body` (same bytes, same tag).
    pub etag: String,
}

impl CachedTile {
    /// Bytes held, for the cache's bound.
    fn size(&self) -> usize {
        self.body.len()
            + self.gzip.as_ref().map_or(0, Bytes::len)
            + self.br.as_ref().map_or(0, Bytes::len)
            + self.etag.len()
            + 96
    }
}

#[derive(Debug)]
struct Variant {
    key: Box<str>,
    tile: Arc<CachedTile>,
    last_used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    tiles: HashMap<(u8, u32, u32), Vec<Variant>>,
    bytes: usize,
    entries: usize,
    tick: u64,
}

/// Rendered tiles, bounded in bytes (least recently used leave first).
#[derive(Debug)]
pub struct TileCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
    epoch: AtomicU64,
}

impl Default for TileCache {
    fn default() -> Self {
        Self::new(DEFAULT_TILE_CACHE_BYTES)
    }
}

fn address(tile: TileId) -> (u8, u32, u32) {
    (tile.z(), tile.x(), tile.y())
}

impl TileCache {
    /// A cache holding at most about `max_bytes` of tiles (0: caches nothing).
    pub fn new(max_bytes: usize) -> Self {
        Self { max_bytes, inner: Mutex::default(), epoch: AtomicU64::new(0) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The invalidation count; read it before rendering and pass it to [`Self::put`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The cached `variant` of `tile`.
    pub fn get(&self, tile: TileId, variant: &str) -> Option<Arc<CachedTile>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let found = inner.tiles.get_mut(&address(tile))?.iter_mut().find(|v| &*v.key == variant)?;
        found.last_used = tick;
        Some(found.tile.clone())
    }

    /// Keeps a rendered tile, unless a tile was invalidated since `epoch`
    /// (then it may already be stale) or it alone exceeds the bound.
    pub fn put(&self, tile: TileId, variant: &str, rendered: Arc<CachedTile>, epoch: u64) {
        let size = rendered.size();
        if size > self.max_bytes / 4 {
            return;
        }
        let mut inner = self.lock();
        // Checked under the lock that invalidation also takes.
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        inner.tick += 1;
        let tick = inner.tick;
        let variants = inner.tiles.entry(address(tile)).or_default();
        let mut freed = 0;
        let mut added = 1;
        if let Some(i) = variants.iter().position(|v| &*v.key == variant) {
            freed = variants[i].tile.size();
            variants.swap_remove(i);
            added = 0;
        }
        variants.push(Variant { key: variant.into(), tile: rendered, last_used: tick });
        inner.bytes = inner.bytes + size - freed;
        inner.entries += added;
        if inner.bytes > self.max_bytes {
            Self::evict(&mut inner, self.max_bytes - self.max_bytes / 8);
        }
    }

    /// Drops the least recently used tiles until at most `target` bytes remain.
    fn evict(inner: &mut Inner, target: usize) {
        // Ticks are unique, so the oldest ones up to the needed bytes name the victims.
        let mut ages: Vec<(u64, usize)> =
            inner.tiles.values().flat_map(|vs| vs.iter().map(|v| (v.last_used, v.tile.size()))).collect();
        ages.sort_unstable();
        let mut bytes = inner.bytes;
        let mut cut = 0;
        for (age, size) in ages {
            if bytes <= target {
                break;
            }
            bytes -= size;
            cut = age;
        }
        let mut removed_bytes = 0;
        let mut removed = 0;
        inner.tiles.retain(|_, vs| {
            vs.retain(|v| {
                let keep = v.last_used > cut;
                if !keep {
                    removed_bytes += v.tile.size();
                    removed += 1;
                }
                keep
            });
            !vs.is_empty()
        });
        inner.bytes -= removed_bytes;
        inner.entries -= removed;
    }

    /// Drops every variant of each tile in `tiles`; returns how many variants went.
    pub fn invalidate(&self, tiles: impl IntoIterator<Item = TileId>) -> usize {
        let mut inner = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let mut removed = 0;
        for tile in tiles {
            if let Some(vs) = inner.tiles.remove(&address(tile)) {
                removed += vs.len();
                inner.bytes -= vs.iter().map(|v| v.tile.size()).sum::<usize>();
            }
        }
        inner.entries -= removed;
        removed
    }

    /// Drops everything (orchard boundaries changed, for instance).
    pub fn clear(&self) {
        let mut inner = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        *inner = Inner::default();
    }

    /// Cached variants and the bytes they hold.
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.entries, inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(z: u32, x: u32, y: u32) -> TileId {
        TileId::new(z, x, y).unwrap()
    }

    fn rendered(n: usize) -> Arc<CachedTile> {
        Arc::new(CachedTile { body: Bytes::from(vec![7u8; n]), gzip: None, br: None, etag: "\"e\"".into() })
    }

    #[test]
    fn invalidation_drops_every_variant_of_the_named_tiles_only() {
        let cache = TileCache::new(1 << 20);
        let e = cache.epoch();
        cache.put(tile(3, 1, 2), "mvt", rendered(10), e);
        cache.put(tile(3, 1, 2), "mvt?health=poor", rendered(10), e);
        cache.put(tile(3, 1, 3), "mvt", rendered(10), e);
        assert_eq!(cache.usage().0, 3);
        assert_eq!(cache.invalidate([tile(3, 1, 2)]), 2);
        assert!(cache.get(tile(3, 1, 2), "mvt").is_none());
        assert!(cache.get(tile(3, 1, 3), "mvt").is_some());
        assert_eq!(cache.usage().0, 1);
    }

    #[test]
    fn a_render_older_than_an_invalidation_is_not_kept() {
        let cache = TileCache::new(1 << 20);
        let before = cache.epoch();
        cache.invalidate([tile(1, 0, 0)]);
        cache.put(tile(1, 0, 0), "mvt", rendered(10), before);
        assert!(cache.get(tile(1, 0, 0), "mvt").is_none());
        cache.put(tile(1, 0, 0), "mvt", rendered(10), cache.epoch());
        assert!(cache.get(tile(1, 0, 0), "mvt").is_some());
    }

    #[test]
    fn the_bound_holds_and_recent_tiles_stay() {
        let cache = TileCache::new(10_000);
        for i in 0..100 {
            cache.put(tile(10, i, 0), "mvt", rendered(500), cache.epoch());
            // Tile 0 is used all the time.
            assert!(i == 0 || cache.get(tile(10, 0, 0), "mvt").is_some(), "tile 0 evicted at {i}");
        }
        let (entries, bytes) = cache.usage();
        assert!(bytes <= 10_000, "{bytes}");
        assert!(entries > 5 && entries < 20, "{entries}");
        assert!(cache.get(tile(10, 99, 0), "mvt").is_some());
        assert!(cache.get(tile(10, 1, 0), "mvt").is_none());
    }
}
