//! Deterministic generator of the orchardmap sample data.
//!
//! The sample is a made-up but realistic survey of about 10,000 durian trees
//! in 100 orchards around eight real communes of Đắk Lắk province (Central
//! Highlands, Vietnam). Everything is drawn from one [`ChaCha8Rng`] seeded
//! with [`SEED`], so the same program always writes the same bytes; the files
//! committed under `data/` are checked against a fresh run by this crate's tests.
//!
//! # Model
//! * **Place.** Each commune has an approximate real centre; its orchards are
//!   scattered within 2.5 km of it without overlapping one another.
//! * **Orchard.** 0.5 to 5 ha (most near 1 ha). Trees stand on a planting
//!   grid with 8-10 m spacing, rotated at random; some grids are tapered
//!   (rows get shorter) or skewed (rows shift sideways), so the boundary is a
//!   slightly irregular quadrilateral: the grid's outline pushed out by half a
//!   spacing plus 1-4 m, a closed counter-clockwise ring.
//! * **Trees.** 3-6 % of grid slots are empty. Rows are planted in 1-3 blocks,
//!   each with its own planting year (2012-2023) and cultivar; some orchards
//!   are (almost) a single cultivar. About 5 % of trees are later replants.
//!   Health is mostly good, with a few fair/poor and about 2 % dead trees; a
//!   third of the orchards have a disease patch where poor and dead trees cluster.
//! * **GPS.** Each orchard is surveyed with one device: reported accuracy
//!   2-8 m, sometimes a bad fix of 10-15 m. The recorded position is the true
//!   one plus an orchard-wide bias, a slowly drifting error (correlated from
//!   tree to tree, as real receivers drift) and a small independent error.
//! * **Time.** Volunteers walk the rows back and forth, 25-70 s per tree,
//!   07:00-11:00 and 13:30-16:45 local time (UTC+7); each commune is surveyed
//!   in one campaign in 2024 or 2025. Times are written in UTC.
//! * **Names.** Kinh and Ê Đê owner names (`Vườn ông Y Blang Niê`,
//!   `Vườn bà Nguyễn Thị Hoa`); most orchards have a planting-area code
//!   (`VN-DLOR-0123`), and neighbouring farms sometimes share one.
//!
//! ```no_run
//! let sample = orchardmap_sample::generate();
//! sample.write_to(std::path::Path::new("data")).expect("write sample");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::f64::consts::PI;
use std::io;
use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use geo_core::{Cultivar, Health, LonLat, NewTree, Orchard, OrchardId, distance_m};
use geo_types::{Coord, LineString, Polygon};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The seed of the committed sample.
pub const SEED: u64 = 20_240_615;

/// Province of every sample orchard.
pub const PROVINCE: &str = "Đắk Lắk";

/// Header line of `trees.csv`.
pub const TREES_CSV_HEADER: &str = "lat,lon,accuracy_m,cultivar,planted_year,health,orchard,surveyed_at";

/// Names of the files [`Sample::write_to`] writes.
pub const FILE_NAMES: [&str; 3] = ["orchards.geojson", "trees.csv", "trees.geojson"];

/// A commune (xã / phường) where sample orchards lie.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Commune {
    /// Vietnamese name.
    pub name: &'static str,
    /// District (huyện) or city.
    pub district: &'static str,
    /// ASCII district code used in orchard ids.
    pub district_code: &'static str,
    /// ASCII commune code used in orchard ids.
    pub code: &'static str,
    /// Approximate centre of the commune's farmland.
    pub center: LonLat,
    /// How many orchards the sample puts there.
    pub orchards: usize,
    /// Share of owners with Ê Đê names.
    pub ede_share: f64,
}

/// The sample's communes (approximate real positions).
pub const COMMUNES: [Commune; 8] = [
    Commune {
        name: "Ea Tiêu",
        district: "Cư Kuin",
        district_code: "CK",
        code: "EATIEU",
        center: LonLat::new(108.125, 12.640),
        orchards: 16,
        ede_share: 0.35,
    },
    Commune {
        name: "Ea Ktur",
        district: "Cư Kuin",
        district_code: "CK",
        code: "EAKTUR",
        center: LonLat::new(108.072, 12.598),
        orchards: 13,
        ede_share: 0.3,
    },
    Commune {
        name: "Ea Kênh",
        district: "Krông Pắc",
        district_code: "KP",
        code: "EAKENH",
        center: LonLat::new(108.190, 12.705),
        orchards: 14,
        ede_share: 0.2,
    },
    Commune {
        name: "Ea Yông",
        district: "Krông Pắc",
        district_code: "KP",
        code: "EAYONG",
        center: LonLat::new(108.255, 12.725),
        orchards: 12,
        ede_share: 0.25,
    },
    Commune {
        name: "Ea Kly",
        district: "Krông Pắc",
        district_code: "KP",
        code: "EAKLY",
        center: LonLat::new(108.315, 12.780),
        orchards: 11,
        ede_share: 0.35,
    },
    Commune {
        name: "Cư Né",
        district: "Krông Búk",
        district_code: "KB",
        code: "CUNE",
        center: LonLat::new(108.185, 12.955),
        orchards: 12,
        ede_share: 0.5,
    },
    Commune {
        name: "Pơng Drang",
        district: "Krông Búk",
        district_code: "KB",
        code: "PONGDRANG",
        center: LonLat::new(108.235, 12.885),
        orchards: 12,
        ede_share: 0.3,
    },
    Commune {
        name: "Hòa Thuận",
        district: "Buôn Ma Thuột",
        district_code: "BMT",
        code: "HOATHUAN",
        center: LonLat::new(108.065, 12.735),
        orchards: 10,
        ede_share: 0.15,
    },
];

/// Cultivars and their weight when a block's cultivar is drawn.
const CULTIVAR_WEIGHTS: [(&str, f64); 6] = [
    ("Ri6", 0.55),
    ("Monthong", 0.30),
    ("Musang King", 0.08),
    ("Black Thorn", 0.03),
    ("Chuồng Bò", 0.02),
    ("Khổ Qua Xanh", 0.02),
];

/// One surveyed tree, as written to `trees.csv` and `trees.geojson`.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleTree {
    /// Recorded position (rounded to 7 decimals, as written).
    pub location: LonLat,
    /// Reported horizontal GPS accuracy in metres (one decimal).
    pub accuracy_m: f64,
    /// Canonical cultivar name (one of `geo_core::KNOWN_CULTIVARS`).
    pub cultivar: &'static str,
    /// Year planted.
    pub planted_year: i32,
    /// Health.
    pub health: Health,
    /// The orchard the tree stands in.
    pub orchard: OrchardId,
    /// When the tree was recorded.
    pub surveyed_at: DateTime<Utc>,
}

impl SampleTree {
    /// The tree as the importer produces it from a CSV row.
    pub fn to_new_tree(&self) -> NewTree {
        NewTree {
            code: None,
            location: self.location,
            accuracy_m: Some(self.accuracy_m),
            cultivar: Cultivar::new(self.cultivar),
            planted_year: Some(self.planted_year),
            health: self.health,
            height_m: None,
            girth_cm: None,
            orchard_id: self.orchard.clone(),
            survey_id: None,
        }
    }
}

/// The generated sample: orchards (with boundaries) and their trees, in survey order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Orchards, commune by commune.
    pub orchards: Vec<Orchard>,
    /// Trees, orchard by orchard, in the order they were walked.
    pub trees: Vec<SampleTree>,
}

/// The committed sample (seed [`SEED`]).
pub fn generate() -> Sample {
    generate_with_seed(SEED)
}

/// A sample drawn with another seed (same model).
pub fn generate_with_seed(seed: u64) -> Sample {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut g = Generator {
        placed: Vec::new(),
        next_puc: rng.gen_range(60..140),
        planted: [0; CULTIVAR_WEIGHTS.len()],
        sample: Sample { orchards: Vec::new(), trees: Vec::new() },
    };
    for commune in &COMMUNES {
        g.commune(&mut rng, commune);
    }
    g.sample
}

fn round7(x: f64) -> f64 {
    (x * 1e7).round() / 1e7
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A standard normal draw (Box-Muller; portable and deterministic).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.r#gen::<f64>();
    let u2: f64 = rng.r#gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
}

fn weighted<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0.0..total);
    for &(item, w) in items {
        if x < w {
            return item;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

fn cultivar(rng: &mut ChaCha8Rng) -> &'static str {
    weighted(rng, &CULTIVAR_WEIGHTS)
}

/// A point in a local east/north frame, metres.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Xy {
    e: f64,
    n: f64,
}

impl Xy {
    fn add(self, o: Xy) -> Xy {
        Xy { e: self.e + o.e, n: self.n + o.n }
    }
}

/// Signed area (counter-clockwise positive) of a ring of local points.
fn ring_area(ring: &[Xy]) -> f64 {
    let mut a = 0.0;
    for i in 0..ring.len() {
        let p = ring[i];
        let q = ring[(i + 1) % ring.len()];
        a += p.e * q.n - q.e * p.n;
    }
    a / 2.0
}

/// The layout of one orchard in its own frame (centred on the origin).
struct Layout {
    /// Along-row spacing.
    sx: f64,
    /// Between-row spacing.
    sy: f64,
    /// Slots per row.
    row_len: Vec<usize>,
    /// Row shift per row (skew), metres.
    shift: f64,
    /// Rotation, radians.
    theta: f64,
    /// Offset so the grid is centred.
    centre: Xy,
    /// Boundary corners, counter-clockwise, not closed.
    boundary: Vec<Xy>,
}

impl Layout {
    fn draw(rng: &mut ChaCha8Rng) -> Layout {
        loop {
            let sx: f64 = *[8.0, 9.0, 9.0, 10.0].choose(rng).unwrap_or(&9.0) * rng.gen_range(0.98..1.02);
            let sy = if rng.gen_bool(0.3) { (sx + 1.0).min(10.2) } else { sx * rng.gen_range(0.99..1.01) };
            let area_m2 = 5_000.0 * (0.62 * normal(rng).abs()).exp();
            let aspect = rng.gen_range(1.0..2.6);
            let cols = ((area_m2 * aspect).sqrt() / sx).round().max(4.0) as usize;
            let rows = ((area_m2 / aspect).sqrt() / sy).round().max(4.0) as usize;
            let taper = if rng.gen_bool(0.35) { rng.gen_range(0.1..0.4) } else { 0.0 };
            let shift = if rng.gen_bool(0.25) { sy * rng.gen_range(-15.0f64..15.0).to_radians().tan() } else { 0.0 };
            let row_len: Vec<usize> = (0..rows)
                .map(|r| {
                    let cut = (taper * cols as f64 * r as f64 / (rows - 1) as f64).round() as usize;
                    cols - cut
                })
                .collect();
            let theta = rng.gen_range(0.0..PI);
            let last = rows - 1;
            // Grid outline (u along rows, v across), counter-clockwise.
            let outline = [
                Xy { e: 0.0, n: 0.0 },
                Xy { e: (row_len[0] - 1) as f64 * sx, n: 0.0 },
                Xy { e: last as f64 * shift + (row_len[last] - 1) as f64 * sx, n: last as f64 * sy },
                Xy { e: last as f64 * shift, n: last as f64 * sy },
            ];
            let half = sx.max(sy) / 2.0;
            let margins: Vec<f64> = (0..4).map(|_| half + rng.gen_range(1.0..4.0)).collect();
            let Some(outer) = offset_polygon(&outline, &margins) else { continue };
            let area_ha = ring_area(&outer) / 10_000.0;
            if !(0.5..=5.0).contains(&area_ha) {
                continue;
            }
            let centre = Xy {
                e: outline.iter().map(|p| p.e).sum::<f64>() / 4.0,
                n: outline.iter().map(|p| p.n).sum::<f64>() / 4.0,
            };
            let mut layout = Layout { sx, sy, row_len, shift, theta, centre, boundary: Vec::new() };
            layout.boundary = outer.iter().map(|&p| layout.to_frame(p)).collect();
            return layout;
        }
    }

    /// Grid coordinates (u, v) to the orchard's rotated, centred frame.
    fn to_frame(&self, p: Xy) -> Xy {
        let u = p.e - self.centre.e;
        let v = p.n - self.centre.n;
        let (s, c) = self.theta.sin_cos();
        Xy { e: u * c - v * s, n: u * s + v * c }
    }

    /// The grid slot `k` of row `r`, in grid coordinates.
    fn slot(&self, r: usize, k: usize) -> Xy {
        Xy { e: r as f64 * self.shift + k as f64 * self.sx, n: r as f64 * self.sy }
    }

    /// Radius of a circle around the origin holding the boundary.
    fn radius(&self) -> f64 {
        self.boundary.iter().map(|p| p.e.hypot(p.n)).fold(0.0, f64::max)
    }
}

/// Pushes each edge of a convex counter-clockwise polygon outwards by its margin.
fn offset_polygon(ring: &[Xy], margins: &[f64]) -> Option<Vec<Xy>> {
    let n = ring.len();
    // Each edge as a line n·p = c with outward unit normal n.
    let lines: Vec<(f64, f64, f64)> = (0..n)
        .map(|i| {
            let p = ring[i];
            let q = ring[(i + 1) % n];
            let (dx, dy) = (q.e - p.e, q.n - p.n);
            let len = dx.hypot(dy);
            let (nx, ny) = (dy / len, -dx / len);
            (nx, ny, nx * p.e + ny * p.n + margins[i])
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (a1, b1, c1) = lines[(i + n - 1) % n];
        let (a2, b2, c2) = lines[i];
        let det = a1 * b2 - a2 * b1;
        if det.abs() < 1e-9 || !det.is_finite() {
            return None;
        }
        out.push(Xy { e: (c1 * b2 - c2 * b1) / det, n: (a1 * c2 - a2 * c1) / det });
    }
    Some(out)
}

/// An owner.
#[derive(Debug, Clone)]
struct Person {
    name: String,
    female: bool,
    orchards: usize,
}

const KINH_SURNAMES: [(&str, f64); 16] = [
    ("Nguyễn", 30.0),
    ("Trần", 11.0),
    ("Lê", 9.0),
    ("Phạm", 7.0),
    ("Hoàng", 5.0),
    ("Huỳnh", 4.0),
    ("Phan", 4.0),
    ("Vũ", 4.0),
    ("Võ", 4.0),
    ("Đặng", 2.0),
    ("Bùi", 2.0),
    ("Đỗ", 2.0),
    ("Hồ", 2.0),
    ("Ngô", 2.0),
    ("Dương", 1.0),
    ("Lý", 1.0),
];
const KINH_MALE_MIDDLE: [&str; 8] = ["Văn", "Văn", "Văn", "Đức", "Minh", "Quang", "Hữu", "Công"];
const KINH_MALE_GIVEN: [&str; 18] = [
    "Hùng", "Dũng", "Tuấn", "Nam", "Sơn", "Thành", "Hải", "Long", "Phúc", "Bình", "Cường", "Tâm", "Trung", "Hiếu",
    "Quý", "Lộc", "Tài", "Thắng",
];
const KINH_FEMALE_MIDDLE: [&str; 5] = ["Thị", "Thị", "Thị", "Ngọc", "Thu"];
const KINH_FEMALE_GIVEN: [&str; 14] =
    ["Hoa", "Lan", "Hương", "Mai", "Hạnh", "Thủy", "Nga", "Hằng", "Thảo", "Linh", "Nhung", "Loan", "Tuyết", "Hiền"];
const EDE_CLANS: [&str; 12] =
    ["Niê", "Êban", "Mlô", "Ayun", "Byă", "Adrơng", "Ktla", "Buôn Yă", "Hwing", "Kđoh", "Ênuôl", "Knul"];
const EDE_MALE_GIVEN: [&str; 12] =
    ["Blang", "Thu", "Jôn", "Ngông", "Khuê", "Đhăm", "Bhin", "Yơn", "Suôl", "Kiêng", "Nuê", "Sem"];
const EDE_FEMALE_GIVEN: [&str; 10] = ["Hen", "Yim", "Lan", "Nga", "Bia", "Ruth", "Doan", "Liên", "Djuê", "Phi"];

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[rng.gen_range(0..items.len())]
}

fn person(rng: &mut ChaCha8Rng, ede_share: f64) -> Person {
    let female = rng.gen_bool(0.27);
    let name = if rng.gen_bool(ede_share) {
        if female {
            format!("H'{} {}", pick(rng, &EDE_FEMALE_GIVEN), pick(rng, &EDE_CLANS))
        } else {
            format!("Y {} {}", pick(rng, &EDE_MALE_GIVEN), pick(rng, &EDE_CLANS))
        }
    } else {
        let surname = weighted(rng, &KINH_SURNAMES);
        if female {
            format!("{surname} {} {}", pick(rng, &KINH_FEMALE_MIDDLE), pick(rng, &KINH_FEMALE_GIVEN))
        } else {
            format!("{surname} {} {}", pick(rng, &KINH_MALE_MIDDLE), pick(rng, &KINH_MALE_GIVEN))
        }
    };
    Person { name, female, orchards: 0 }
}

/// A planting block: consecutive rows planted the same year with the same cultivar.
#[derive(Debug, Clone, Copy)]
struct Block {
    first_row: usize,
    year: i32,
    cultivar: &'static str,
}

/// The clock of a survey team: local time (UTC+7), working hours only.
struct Clock {
    local: NaiveDateTime,
}

impl Clock {
    fn morning(day: NaiveDate, rng: &mut ChaCha8Rng) -> Clock {
        let start = NaiveTime::from_hms_opt(7, 0, 0).unwrap_or_default();
        Clock { local: day.and_time(start) + Duration::seconds(rng.gen_range(0..5_400)) }
    }

    fn advance(&mut self, seconds: i64, rng: &mut ChaCha8Rng) {
        self.local += Duration::seconds(seconds);
        let t = self.local.time();
        let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default();
        if t >= at(16, 45) {
            let next = self.local.date() + Duration::days(1);
            *self = Clock::morning(next, rng);
        } else if t >= at(11, 0) && t < at(13, 30) {
            self.local = self.local.date().and_time(at(13, 30)) + Duration::seconds(rng.gen_range(0..1_500));
        }
    }

    fn utc(&self) -> DateTime<Utc> {
        (self.local - Duration::hours(7)).and_utc()
    }
}

struct Generator {
    /// Orchards placed so far: centre and radius (metres).
    placed: Vec<(LonLat, f64)>,
    next_puc: u32,
    /// Trees planted so far per cultivar (index into [`CULTIVAR_WEIGHTS`]).
    planted: [usize; CULTIVAR_WEIGHTS.len()],
    sample: Sample,
}

impl Generator {
    /// A block cultivar for `slots` trees: drawn in proportion to how far each
    /// cultivar lags behind its target share, so the whole sample keeps close to
    /// [`CULTIVAR_WEIGHTS`] while single blocks stay random (minor cultivars
    /// tend to get the small blocks).
    fn block_cultivar(&self, rng: &mut ChaCha8Rng, slots: usize) -> &'static str {
        let total: usize = self.planted.iter().sum::<usize>() + slots;
        let lags: Vec<(&'static str, f64)> = CULTIVAR_WEIGHTS
            .iter()
            .zip(self.planted)
            .map(|(&(name, share), done)| (name, (share * total as f64 - done as f64).max(0.0) + 1.0))
            .collect();
        weighted(rng, &lags)
    }

    fn count(&mut self, name: &str) {
        if let Some(i) = CULTIVAR_WEIGHTS.iter().position(|(c, _)| *c == name) {
            self.planted[i] += 1;
        }
    }

    fn commune(&mut self, rng: &mut ChaCha8Rng, commune: &Commune) {
        let first = NaiveDate::from_ymd_opt(2024, 1, 8).unwrap_or_default();
        let mut day = first + Duration::days(rng.gen_range(0..620));
        let mut owners: Vec<Person> = Vec::new();
        // The previous orchard's code, where it is, and how many orchards share it.
        let mut last_code: Option<(String, LonLat, usize)> = None;
        for index in 1..=commune.orchards {
            let layout = Layout::draw(rng);
            let radius = layout.radius();
            let (centre, centre_ll) = self.place(rng, commune, radius);
            self.placed.push((centre_ll, radius));

            let owner_idx = if !owners.is_empty() && rng.gen_bool(0.07) {
                rng.gen_range(0..owners.len())
            } else {
                owners.push(person(rng, commune.ede_share));
                owners.len() - 1
            };
            let owner = &mut owners[owner_idx];
            owner.orchards += 1;
            let title = if owner.female { "bà" } else { "ông" };
            let name = if owner.orchards > 1 {
                format!("Vườn {title} {} (lô {})", owner.name, owner.orchards)
            } else {
                format!("Vườn {title} {}", owner.name)
            };
            let owner_name = owner.name.clone();

            let code = if rng.gen_bool(0.82) {
                match &mut last_code {
                    Some((code, at, members))
                        if *members < 3 && distance_m(*at, centre_ll) < 1_500.0 && rng.gen_bool(0.2) =>
                    {
                        *members += 1;
                        Some(code.clone())
                    }
                    _ => {
                        self.next_puc += rng.gen_range(1..25);
                        let code = format!("VN-DLOR-{:04}", self.next_puc);
                        last_code = Some((code.clone(), centre_ll, 1));
                        Some(code)
                    }
                }
            } else {
                last_code = None;
                None
            };

            let id = format!("DL-{}-{}-{index:03}", commune.district_code, commune.code);
            let id = OrchardId::new(id).unwrap_or_else(|e| panic!("generated orchard id is invalid: {e}"));
            let ring: Vec<Coord<f64>> = layout
                .boundary
                .iter()
                .chain(layout.boundary.first())
                .map(|p| {
                    let ll = commune.center.offset_m(centre.e + p.e, centre.n + p.n);
                    Coord { x: round7(ll.lon), y: round7(ll.lat) }
                })
                .collect();
            self.sample.orchards.push(Orchard {
                id: id.clone(),
                name,
                owner: owner_name,
                commune: commune.name.to_string(),
                district: commune.district.to_string(),
                province: PROVINCE.to_string(),
                planting_area_code: code,
                gln: None,
                boundary: Some(Polygon::new(LineString(ring), Vec::new())),
            });

            let mut clock = Clock::morning(day, rng);
            self.trees(rng, commune, &layout, centre, &id, &mut clock);
            day = clock.local.date() + Duration::days(rng.gen_range(1..5));
        }
    }

    /// Finds a spot for an orchard of `radius` metres near the commune centre.
    fn place(&self, rng: &mut ChaCha8Rng, commune: &Commune, radius: f64) -> (Xy, LonLat) {
        let mut reach = 2_500.0;
        loop {
            for _ in 0..200 {
                let r = reach * rng.r#gen::<f64>().sqrt();
                let a = rng.gen_range(0.0..2.0 * PI);
                let at = Xy { e: r * a.cos(), n: r * a.sin() };
                let ll = commune.center.offset_m(at.e, at.n);
                if self.placed.iter().all(|&(c, cr)| distance_m(c, ll) > cr + radius + 25.0) {
                    return (at, ll);
                }
            }
            reach += 500.0;
        }
    }

    fn trees(
        &mut self,
        rng: &mut ChaCha8Rng,
        commune: &Commune,
        layout: &Layout,
        centre: Xy,
        id: &OrchardId,
        clock: &mut Clock,
    ) {
        let rows = layout.row_len.len();
        // Planting blocks.
        let n_blocks = weighted(rng, &[(1usize, 0.5), (2, 0.35), (3, 0.15)]).min(rows / 3).max(1);
        let mut cuts: Vec<usize> = (1..n_blocks).map(|_| rng.gen_range(2..rows - 1)).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mono = rng.gen_bool(0.45);
        let slots_in = |from: usize, to: usize| layout.row_len[from..to].iter().sum::<usize>();
        let main = self.block_cultivar(
            rng,
            if mono { slots_in(0, rows) } else { slots_in(0, cuts.first().copied().unwrap_or(rows)) },
        );
        let years: Vec<(i32, f64)> = (2012..=2021).map(|y| (y, 1.0 + (y - 2012) as f64 * 0.35)).collect();
        let mut year = weighted(rng, &years);
        let mut blocks = vec![Block { first_row: 0, year, cultivar: main }];
        for (i, &first_row) in cuts.iter().enumerate() {
            year = (year + rng.gen_range(1..6)).min(2023);
            let end = cuts.get(i + 1).copied().unwrap_or(rows);
            let name = if mono { main } else { self.block_cultivar(rng, slots_in(first_row, end)) };
            blocks.push(Block { first_row, year, cultivar: name });
        }
        let block_purity = if mono { rng.gen_range(0.93..1.0) } else { rng.gen_range(0.85..0.97) };

        // Health.
        let p_fair = rng.gen_range(0.08..0.22);
        let p_poor = rng.gen_range(0.02..0.07);
        let p_dead = rng.gen_range(0.008..0.025);
        let patch = rng.gen_bool(0.33).then(|| {
            let r = rng.gen_range(0..rows);
            let k = rng.gen_range(0..layout.row_len[r]);
            (layout.slot(r, k), rng.gen_range(12.0..30.0))
        });
        let gap_rate = rng.gen_range(0.03..0.06);

        // GPS: device quality, orchard-wide bias, drift.
        let device = rng.gen_range(2.5..5.5);
        let bias = Xy { e: normal(rng) * 1.2, n: normal(rng) * 1.2 };
        let mut drift = Xy { e: 0.0, n: 0.0 };
        const RHO: f64 = 0.93;
        const DRIFT_SD: f64 = 0.8;

        for r in 0..rows {
            let block = blocks.iter().rev().find(|b| b.first_row <= r).copied().unwrap_or(blocks[0]);
            let len = layout.row_len[r];
            for step in 0..len {
                let k = if r % 2 == 0 { step } else { len - 1 - step };
                if rng.gen_bool(gap_rate) {
                    clock.advance(rng.gen_range(8..20), rng);
                    continue;
                }
                let planted = layout.slot(r, k);
                let jitter = Xy { e: normal(rng) * 0.25, n: normal(rng) * 0.25 };
                let truth = layout.to_frame(planted.add(jitter));

                let (mut name, mut planted_year) =
                    if rng.gen_bool(block_purity) { (block.cultivar, block.year) } else { (cultivar(rng), block.year) };
                if block.year <= 2020 && rng.gen_bool(0.05) {
                    planted_year = rng.gen_range(block.year + 2..=2023);
                    if rng.gen_bool(0.4) {
                        name = cultivar(rng);
                    }
                }

                self.count(name);
                let in_patch = patch.is_some_and(|(c, radius)| (planted.e - c.e).hypot(planted.n - c.n) < radius);
                let (pf, pp, pd) = if in_patch { (0.30, 0.25, 0.10) } else { (p_fair, p_poor, p_dead) };
                let x: f64 = rng.r#gen();
                let health = if x < pd {
                    Health::Dead
                } else if x < pd + pp {
                    Health::Poor
                } else if x < pd + pp + pf {
                    Health::Fair
                } else {
                    Health::Good
                };

                let bad_fix = rng.gen_bool(0.02);
                let accuracy = if bad_fix {
                    rng.gen_range(10.0..15.5)
                } else {
                    (device * (0.25 * normal(rng)).exp()).clamp(1.8, 9.5)
                };
                let accuracy = round1(accuracy);
                drift = Xy {
                    e: RHO * drift.e + (1.0 - RHO * RHO).sqrt() * DRIFT_SD * normal(rng),
                    n: RHO * drift.n + (1.0 - RHO * RHO).sqrt() * DRIFT_SD * normal(rng),
                };
                let white_sd = if bad_fix { accuracy / 3.0 } else { accuracy / 5.0 };
                let white = Xy { e: normal(rng) * white_sd, n: normal(rng) * white_sd };
                let seen = centre.add(truth).add(bias).add(drift).add(white);
                let ll = commune.center.offset_m(seen.e, seen.n);

                clock.advance(rng.gen_range(25..70), rng);
                self.sample.trees.push(SampleTree {
                    location: LonLat::new(round7(ll.lon), round7(ll.lat)),
                    accuracy_m: accuracy,
                    cultivar: name,
                    planted_year,
                    health,
                    orchard: id.clone(),
                    surveyed_at: clock.utc(),
                });
            }
        }
    }
}

/// Properties of a tree feature in `trees.geojson`.
#[derive(Serialize)]
struct TreeProperties<'a> {
    accuracy_m: f64,
    cultivar: &'a str,
    planted_year: i32,
    health: &'a str,
    orchard: &'a str,
    surveyed_at: String,
}

/// Properties of an orchard feature in `orchards.geojson`.
#[derive(Serialize)]
struct OrchardProperties<'a> {
    id: &'a str,
    name: &'a str,
    owner: &'a str,
    commune: &'a str,
    district: &'a str,
    province: &'a str,
    planting_area_code: Option<&'a str>,
}

fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn to_io(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

/// Joins features one per line into a FeatureCollection.
fn collection(features: impl Iterator<Item = io::Result<String>>) -> io::Result<String> {
    let mut out = String::from("{\"type\":\"FeatureCollection\",\"features\":[\n");
    let mut first = true;
    for feature in features {
        if !first {
            out.push_str(",\n");
        }
        first = false;
        out.push_str(&feature?);
    }
    out.push_str("\n]}\n");
    Ok(out)
}

impl Sample {
    /// `trees.csv`: header [`TREES_CSV_HEADER`], one row per tree, `\n` line ends.
    pub fn trees_csv(&self) -> io::Result<Vec<u8>> {
        let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
        w.write_record(TREES_CSV_HEADER.split(',')).map_err(to_io)?;
        for t in &self.trees {
            w.write_record([
                format!("{:.7}", t.location.lat).as_str(),
                format!("{:.7}", t.location.lon).as_str(),
                format!("{:.1}", t.accuracy_m).as_str(),
                t.cultivar,
                t.planted_year.to_string().as_str(),
                t.health.as_str(),
                t.orchard.as_str(),
                timestamp(&t.surveyed_at).as_str(),
            ])
            .map_err(to_io)?;
        }
        w.into_inner().map_err(|e| io::Error::other(e.to_string()))
    }

    /// `trees.geojson`: a FeatureCollection of Points (`[lon, lat]`), one feature per line.
    pub fn trees_geojson(&self) -> io::Result<String> {
        collection(self.trees.iter().map(|t| {
            let props = serde_json::to_string(&TreeProperties {
                accuracy_m: t.accuracy_m,
                cultivar: t.cultivar,
                planted_year: t.planted_year,
                health: t.health.as_str(),
                orchard: t.orchard.as_str(),
                surveyed_at: timestamp(&t.surveyed_at),
            })
            .map_err(to_io)?;
            Ok(format!(
                "{{\"type\":\"Feature\",\"geometry\":{{\"type\":\"Point\",\"coordinates\":[{:.7},{:.7}]}},\"properties\":{props}}}",
                t.location.lon, t.location.lat
            ))
        }))
    }

    /// `orchards.geojson`: a FeatureCollection of Polygons, one feature per line.
    pub fn orchards_geojson(&self) -> io::Result<String> {
        collection(self.orchards.iter().map(|o| {
            let props = serde_json::to_string(&OrchardProperties {
                id: o.id.as_str(),
                name: &o.name,
                owner: &o.owner,
                commune: &o.commune,
                district: &o.district,
                province: &o.province,
                planting_area_code: o.planting_area_code.as_deref(),
            })
            .map_err(to_io)?;
            let ring: Vec<String> = o
                .boundary
                .iter()
                .flat_map(|p| p.exterior().0.iter())
                .map(|c| format!("[{:.7},{:.7}]", c.x, c.y))
                .collect();
            Ok(format!(
                "{{\"type\":\"Feature\",\"geometry\":{{\"type\":\"Polygon\",\"coordinates\":[[{}]]}},\"properties\":{props}}}",
                ring.join(",")
            ))
        }))
    }

    /// Writes the three files of [`FILE_NAMES`] into `dir` (created if needed).
    pub fn write_to(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("orchards.geojson"), self.orchards_geojson()?)?;
        std::fs::write(dir.join("trees.csv"), self.trees_csv()?)?;
        std::fs::write(dir.join("trees.geojson"), self.trees_geojson()?)?;
        Ok(())
    }

    /// A short human-readable account of the sample (counts and mixes).
    pub fn summary(&self) -> String {
        use std::collections::BTreeMap;
        let n = self.trees.len();
        let pct = |c: usize| 100.0 * c as f64 / n.max(1) as f64;
        let mut cultivars: BTreeMap<&str, usize> = BTreeMap::new();
        let mut health: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &self.trees {
            *cultivars.entry(t.cultivar).or_default() += 1;
            *health.entry(t.health.as_str()).or_default() += 1;
        }
        let mut communes: Vec<&str> = self.orchards.iter().map(|o| o.commune.as_str()).collect();
        communes.dedup();
        let coded = self.orchards.iter().filter(|o| o.planting_area_code.is_some()).count();
        let mut codes: Vec<&str> = self.orchards.iter().filter_map(|o| o.planting_area_code.as_deref()).collect();
        codes.sort_unstable();
        codes.dedup();
        let mut out = format!(
            "{n} trees in {} orchards in {} communes; {coded} orchards have a planting-area code ({} distinct codes)\n",
            self.orchards.len(),
            communes.len(),
            codes.len()
        );
        let mut by_count: Vec<_> = cultivars.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mix: Vec<String> = by_count.iter().map(|(c, k)| format!("{c} {k} ({:.1}%)", pct(*k))).collect();
        out.push_str(&format!("cultivars: {}\n", mix.join(", ")));
        let hs: Vec<String> = Health::ALL
            .iter()
            .map(|h| health.get(h.as_str()).copied().unwrap_or(0))
            .zip(Health::ALL)
            .map(|(k, h)| format!("{h} {k} ({:.1}%)", pct(k)))
            .collect();
        out.push_str(&format!("health: {}\n", hs.join(", ")));
        out
    }
}
