//! What the traceability routes share: the signing keys (kept in a file
//! beside the database), the public base URL of printed links, the scan
//! counter, and a short-lived cache of tree diaries for the public pages.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use geo_core::trace::DigitalLink;
use geo_core::trust::{KeyRing, PublicKeys, Verdict};
use geo_core::{TreeId, TreeRecord};
use store::{ScanCount, Storage};

/// Signing keys, public URL, scans.
#[derive(Debug)]
pub struct Trace {
    /// The base URL printed in QR codes (`--public-url`); `None`: the origin each request came to.
    pub public_url: Option<String>,
    /// The key ring and its public half, derived once per (re)load rather than per page view.
    keys: RwLock<(KeyRing, PublicKeys)>,
    key_file: Option<PathBuf>,
    key_mtime: Mutex<Option<SystemTime>>,
    /// Scans counted and not yet written, and each code's tally.
    pub scans: ScanBook,
    diaries: Mutex<HashMap<TreeId, (Instant, Diary)>>,
}

/// A tree's records, shared.
type Diary = std::sync::Arc<Vec<TreeRecord>>;

/// (code, hour, coarse place) of pending scan counts.
type ScanKey = (String, DateTime<Utc>, String);

/// Scan counts of one code by (hour, coarse place).
pub type ScanRows = BTreeMap<(DateTime<Utc>, String), u64>;

/// How long a tree's diary is reused by the public page before it is read again.
const DIARY_TTL: Duration = Duration::from_secs(5);

/// A fresh random 32-byte seed from the operating system's generator (through `rand`).
pub fn random_seed() -> [u8; 32] {
    rand::random()
}

/// Where the keys of a database live by default: beside a SQLite file
/// (`orchardmap.db` → `orchardmap.db.keys.json`); for PostgreSQL or an
/// in-memory database, `orchardmap-keys.json` in the working directory.
pub fn default_key_file(db_location: &str) -> PathBuf {
    if db_location.starts_with("postgres://") || db_location.starts_with("postgresql://") || db_location == ":memory:" {
        return PathBuf::from("orchardmap-keys.json");
    }
    let path =
        db_location.strip_prefix("sqlite://").or_else(|| db_location.strip_prefix("sqlite:")).unwrap_or(db_location);
    PathBuf::from(format!("{path}.keys.json"))
}

/// Reads the key ring at `path`, creating it with a new key when the file does not exist.
pub fn load_or_create_keys(path: &Path) -> Result<KeyRing, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: not a key file: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let ring = KeyRing::generate(random_seed(), Utc::now());
            write_keys(path, &ring)?;
            tracing::info!(file = %path.display(), kid = ring.active_kid(), "created a new signing key");
            Ok(ring)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes the key ring (private keys included) readable by the owner only,
/// through a temporary file renamed over the old one.
pub fn write_keys(path: &Path, ring: &KeyRing) -> Result<(), String> {
    let text = serde_json::to_string_pretty(ring).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = options.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| format!("{}: {e}", path.display()))
}

impl Trace {
    /// Keys made up in memory for this process only (tests, `:memory:` demos).
    pub fn ephemeral(public_url: Option<String>) -> Self {
        Self::with_ring(KeyRing::generate(random_seed(), Utc::now()), None, public_url)
    }

    /// Keys from `key_file` (created on first use); the server re-reads the
    /// file when it changes (`orchardmap keys rotate`).
    pub fn from_key_file(key_file: &Path, public_url: Option<String>) -> Result<Self, String> {
        let ring = load_or_create_keys(key_file)?;
        let trace = Self::with_ring(ring, Some(key_file.to_path_buf()), public_url);
        *lock(&trace.key_mtime) = mtime(key_file);
        Ok(trace)
    }

    fn with_ring(ring: KeyRing, key_file: Option<PathBuf>, public_url: Option<String>) -> Self {
        Self {
            public_url: public_url.map(|u| u.trim_end_matches('/').to_string()),
            keys: RwLock::new(with_public(ring)),
            key_file,
            key_mtime: Mutex::new(None),
            scans: ScanBook::default(),
            diaries: Mutex::new(HashMap::new()),
        }
    }

    /// The base of printed links: `--public-url`, else `origin`.
    pub fn base(&self, origin: &str) -> String {
        self.public_url.clone().unwrap_or_else(|| origin.trim_end_matches('/').to_string())
    }

    /// The signature of a link by the active key.
    pub fn sign(&self, link: &DigitalLink) -> String {
        read(&self.keys).0.sign(&link.canonical())
    }

    /// The link's URL on `base`, signed.
    pub fn signed_url(&self, base: &str, link: &DigitalLink) -> String {
        geo_core::trace::signed_url(base, link, Some(&self.sign(link)))
    }

    /// The public keys (JWKS).
    pub fn public_keys(&self) -> PublicKeys {
        read(&self.keys).1.clone()
    }

    /// The verdict on `signature` for whichever of `candidates` (the forms a
    /// label of this item may carry) it was made for.
    pub fn verdict(&self, candidates: &[DigitalLink], signature: Option<&str>) -> Verdict {
        let held = read(&self.keys);
        let keys = &held.1;
        let mut worst = Verdict::Tampered;
        for link in candidates {
            match keys.verify(&link.canonical(), signature) {
                Verdict::Tampered => {}
                other @ Verdict::Genuine { .. } => return other,
                other => worst = other,
            }
        }
        worst
    }

    /// Re-reads the key file when it changed on disk (rotation or revocation by the CLI).
    pub fn reload_keys_if_changed(&self) {
        let Some(path) = &self.key_file else { return };
        let now = mtime(path);
        if now.is_none() || *lock(&self.key_mtime) == now {
            return;
        }
        match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<KeyRing>(&t).map_err(|e| e.to_string()))
        {
            Ok(ring) => {
                tracing::info!(file = %path.display(), kid = ring.active_kid(), "signing keys reloaded");
                *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = with_public(ring);
                *lock(&self.key_mtime) = now;
            }
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "key file changed but cannot be read"),
        }
    }

    /// A tree's diary, read at most every few seconds per tree.
    pub async fn diary(&self, store: &dyn Storage, id: TreeId) -> store::Result<std::sync::Arc<Vec<TreeRecord>>> {
        if let Some((at, records)) = lock(&self.diaries).get(&id) {
            if at.elapsed() < DIARY_TTL {
                return Ok(records.clone());
            }
        }
        let records = std::sync::Arc::new(store.tree_records(id).await?);
        let mut cache = lock(&self.diaries);
        if cache.len() > 50_000 {
            cache.clear();
        }
        cache.insert(id, (Instant::now(), records.clone()));
        Ok(records)
    }

    /// Forgets a cached diary (after this server added a record).
    pub fn forget_diary(&self, id: TreeId) {
        lock(&self.diaries).remove(&id);
    }
}

fn with_public(ring: KeyRing) -> (KeyRing, PublicKeys) {
    let public = ring.public();
    (ring, public)
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Scans counted in memory: pending counts (written in batches by
/// [`ScanBook::flush`]) and, per code seen, its tally so far.
#[derive(Debug, Default)]
pub struct ScanBook {
    pending: Mutex<HashMap<ScanKey, u64>>,
    tallies: Mutex<HashMap<String, ScanRows>>,
}

/// Codes whose tallies are kept in memory at most (then the book starts over from the database).
const MAX_TALLIES: usize = 100_000;

impl ScanBook {
    /// Counts one scan of `code` now, at `place` (a coarse place key, or empty);
    /// returns the code's tally including it. The first scan of a code seen by
    /// this process reads its stored counts.
    pub async fn count(
        &self,
        store: &dyn Storage,
        code: &str,
        place: Option<String>,
        now: DateTime<Utc>,
    ) -> store::Result<geo_core::scan::ScanTally> {
        let hour = geo_core::scan::coarse_hour(now);
        let place = place.unwrap_or_default();
        let known = lock(&self.tallies).contains_key(code);
        if !known {
            self.load(store, code).await?;
        }
        *lock(&self.pending).entry((code.to_string(), hour, place.clone())).or_insert(0) += 1;
        let mut tallies = lock(&self.tallies);
        let rows = tallies.entry(code.to_string()).or_default();
        *rows.entry((hour, place)).or_insert(0) += 1;
        Ok(tally_of(rows))
    }

    /// Records that a reader of `code` shared their coarse place this hour: the
    /// place counts towards the code's distinct places, not as another scan.
    pub async fn report_place(
        &self,
        store: &dyn Storage,
        code: &str,
        place: String,
        now: DateTime<Utc>,
    ) -> store::Result<geo_core::scan::ScanTally> {
        if !lock(&self.tallies).contains_key(code) {
            // Loads the stored counts (and counts nothing).
            self.load(store, code).await?;
        }
        let hour = geo_core::scan::coarse_hour(now);
        lock(&self.pending).entry((code.to_string(), hour, place.clone())).or_insert(0);
        let mut tallies = lock(&self.tallies);
        let rows = tallies.entry(code.to_string()).or_default();
        rows.entry((hour, place)).or_insert(0);
        Ok(tally_of(rows))
    }

    async fn load(&self, store: &dyn Storage, code: &str) -> store::Result<()> {
        let stored = store.scan_counts(code).await?;
        let mut rows = rows_of(&stored);
        for ((c, h, p), n) in lock(&self.pending).iter() {
            if c == code {
                *rows.entry((*h, p.clone())).or_insert(0) += n;
            }
        }
        let mut tallies = lock(&self.tallies);
        if tallies.len() >= MAX_TALLIES {
            tallies.clear();
        }
        tallies.entry(code.to_string()).or_insert(rows);
        Ok(())
    }

    /// The tally of a code from what this process holds (`None`: not seen yet).
    pub fn held(&self, code: &str) -> Option<geo_core::scan::ScanTally> {
        lock(&self.tallies).get(code).map(tally_of)
    }

    /// Writes the pending counts; on failure they are kept for the next try.
    pub async fn flush(&self, store: &dyn Storage) -> store::Result<usize> {
        let batch: Vec<ScanCount> = lock(&self.pending)
            .drain()
            .map(|((code, hour, place), count)| ScanCount { code, hour, place, count })
            .collect();
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(e) = store.add_scans(&batch).await {
            let mut pending = lock(&self.pending);
            for s in batch {
                *pending.entry((s.code, s.hour, s.place)).or_insert(0) += s.count;
            }
            return Err(e);
        }
        Ok(batch.len())
    }
}

/// The tally of stored or held rows (hour, place) → count.
pub fn tally_of(rows: &ScanRows) -> geo_core::scan::ScanTally {
    let mut per_hour: BTreeMap<DateTime<Utc>, u64> = BTreeMap::new();
    let mut places = std::collections::HashSet::new();
    let mut scans = 0;
    for ((hour, place), n) in rows {
        scans += n;
        *per_hour.entry(*hour).or_insert(0) += n;
        if !place.is_empty() {
            places.insert(place.as_str());
        }
    }
    geo_core::scan::ScanTally {
        scans,
        places: places.len() as u32,
        first: per_hour.keys().next().copied(),
        last: per_hour.keys().next_back().copied(),
        max_per_hour: per_hour.values().copied().max().unwrap_or(0),
    }
}

/// Stored scan rows as the map [`tally_of`] reads.
pub fn rows_of(counts: &[ScanCount]) -> ScanRows {
    let mut rows = BTreeMap::new();
    for s in counts {
        *rows.entry((s.hour, s.place.clone())).or_insert(0) += s.count;
    }
    rows
}

/// Writes pending scans every `every` and re-reads a changed key file, until `stop` turns true
/// (checked between two writes: stopping never drops a batch being written).
pub async fn keep_up(
    trace: std::sync::Arc<Trace>,
    store: std::sync::Arc<dyn Storage>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        if let Err(e) = trace.scans.flush(store.as_ref()).await {
            tracing::warn!(error = %e, "cannot write scan counts; will retry");
        }
        trace.reload_keys_if_changed();
    }
}

/// A tree's public link: the GS1 form when its orchard has a GLN.
pub fn tree_link(tree: &geo_core::Tree, orchard: Option<&geo_core::Orchard>) -> DigitalLink {
    DigitalLink::Tree { gln: orchard.and_then(|o| o.gln.clone()), code: tree.code }
}

/// A lot's public link: the GS1 form when it has a GTIN.
pub fn lot_link(lot: &geo_core::Lot) -> DigitalLink {
    DigitalLink::Lot { gtin: lot.gtin.clone(), code: lot.code.clone() }
}

/// Tree tags for a sheet: signed URL, code, cultivar with planting year, orchard name.
pub fn tree_labels(
    trace: &Trace,
    base: &str,
    trees: &[&geo_core::Tree],
    orchard: Option<&geo_core::Orchard>,
) -> Vec<tiles::print::Label> {
    trees
        .iter()
        .map(|t| {
            let mut first = t.cultivar.as_str().to_string();
            if let Some(y) = t.planted_year {
                first.push_str(&format!(" · {y}"));
            }
            let second = orchard.map(|o| o.name.clone()).unwrap_or_else(|| t.orchard_id.as_str().to_string());
            tiles::print::Label {
                url: trace.signed_url(base, &tree_link(t, orchard)),
                code: t.code.as_str().to_string(),
                lines: vec![first, second],
            }
        })
        .collect()
}

/// Pre-printed tags: signed short-form URL and code; the tree is registered by scanning.
pub fn tag_labels(trace: &Trace, base: &str, codes: &[geo_core::TreeCode]) -> Vec<tiles::print::Label> {
    codes
        .iter()
        .map(|code| tiles::print::Label {
            url: trace.signed_url(base, &DigitalLink::Tree { gln: None, code: *code }),
            code: code.as_str().to_string(),
            lines: vec!["Quét để đăng ký cây".into(), "Scan to register".into()],
        })
        .collect()
}

/// `count` labels of one lot (one per box): signed URL, lot code, harvest date and origin.
pub fn lot_labels(
    trace: &Trace,
    base: &str,
    lot: &geo_core::Lot,
    orchard: Option<&geo_core::Orchard>,
    count: usize,
) -> Vec<tiles::print::Label> {
    let url = trace.signed_url(base, &lot_link(lot));
    let origin = match orchard.and_then(|o| o.planting_area_code.clone()) {
        Some(puc) => puc,
        None if lot.domestic => "Nội địa / domestic".to_string(),
        None => lot.orchard_id.as_str().to_string(),
    };
    let label = tiles::print::Label {
        url,
        code: lot.code.as_str().to_string(),
        lines: vec![format!("{} · {:.0} kg", lot.harvest_date, lot.weight_kg), origin],
    };
    vec![label; count]
}
