//! Orchard boundary files (`data/orchards.geojson` and its like), read by
//! `importer::parse_orchards_geojson` and `read_orchards_geojson` (the CLI and
//! the orchards import of the API): all or nothing, every problem naming the file.
#![no_main]

use geo_core::VIETNAM;
use importer::{Error, parse_orchards_geojson, read_orchards_geojson};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzz-orchards.geojson";

fuzz_target!(|data: &[u8]| {
    let parsed = parse_orchards_geojson(data, FILE);
    let read = read_orchards_geojson(data, FILE);
    match (&parsed, &read) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "read and parse disagree"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "read and parse disagree"),
        _ => panic!("read and parse disagree: {parsed:?} vs {read:?}"),
    }
    match parsed {
        Ok(import) => {
            assert_eq!(import.file_name, FILE);
            let mut ids = std::collections::HashSet::new();
            for orchard in &import.orchards {
                if let Err(e) = orchard.validate(&VIETNAM) {
                    panic!("orchard {} is accepted but invalid: {e}", orchard.id);
                }
                assert!(ids.insert(orchard.id.clone()), "orchard {} twice", orchard.id);
            }
            for w in &import.warnings {
                let _ = w.describe();
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert_eq!(e.file(), FILE, "{message}");
            assert!(message.starts_with(FILE), "{message}");
            if let Error::InvalidFeatures { problems, .. } = &e {
                assert!(!problems.is_empty(), "{message}");
            }
        }
    }
});
