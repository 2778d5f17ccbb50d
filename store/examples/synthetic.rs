//! Fills a database with N synthetic trees (orchards of 100 on 9 m grids over
//! a 100 km square of Đắk Lắk), for load tests and start-up measurements.
//!
//! `cargo run --release -p orchardmap-store --example synthetic -- big.db 1000000`
// A panic in a test, bench or example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use geo_core::{Cultivar, Health, LonLat, NewTree, Orchard, OrchardId, Survey, SurveyId};
use store::ImportBatch;

const PER_ORCHARD: usize = 100;
const ORIGIN: LonLat = LonLat::new(107.9, 12.3);

/// A small deterministic generator (xorshift) so the example needs no extra crates.
struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let db = args.next().unwrap_or_else(|| "synthetic.db".into());
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    let store = store::open(&db).await?;
    let started = std::time::Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let cultivars = ["Ri6", "Ri6", "Ri6", "Monthong", "Monthong", "Musang King"];
    let orchards_total = n.div_ceil(PER_ORCHARD);
    // Batches of 1,000 orchards (100,000 trees) keep each transaction's memory modest.
    for first in (0..orchards_total).step_by(1000) {
        let mut batch = ImportBatch {
            survey: Some(Survey {
                id: SurveyId(0),
                surveyor: "synthetic".into(),
                surveyed_at: Utc::now(),
                source: format!("synthetic batch {first}"),
                device: None,
            }),
            ..ImportBatch::default()
        };
        for o in first..(first + 1000).min(orchards_total) {
            let id = OrchardId::new(format!("SYN-{o:06}"))?;
            let centre = ORIGIN.offset_m(rng.unit() * 100_000.0, rng.unit() * 100_000.0);
            batch.orchards.push(Orchard {
                id: id.clone(),
                name: format!("Vườn tổng hợp {o}"),
                owner: "synthetic".into(),
                commune: "Ea Tiêu".into(),
                district: "Cư Kuin".into(),
                province: "Đắk Lắk".into(),
                planting_area_code: None,
                gln: None,
                boundary: None,
            });
            for slot in 0..PER_ORCHARD.min(n - o * PER_ORCHARD) {
                let east = (slot % 10) as f64 * 9.0 + rng.unit() * 3.0 - 1.5;
                let north = (slot / 10) as f64 * 9.0 + rng.unit() * 3.0 - 1.5;
                batch.trees.push(NewTree {
                    code: None,
                    location: centre.offset_m(east, north),
                    accuracy_m: Some(2.0 + rng.unit() * 6.0),
                    cultivar: Cultivar::new(cultivars[slot % cultivars.len()]),
                    planted_year: Some(2012 + (o % 12) as i32),
                    health: if slot % 50 == 0 { Health::Poor } else { Health::Good },
                    height_m: None,
                    girth_cm: None,
                    orchard_id: id.clone(),
                    survey_id: None,
                });
            }
        }
        store.import(batch).await?;
    }
    println!("{db}: {} trees in {:.1} s", store.count_trees().await?, started.elapsed().as_secs_f64());
    Ok(())
}
