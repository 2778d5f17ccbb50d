//! Survey files: GPX waypoints, read through
//! `importer::SurveySource` with the import options of the CLI and `POST /api/imports`.
//! Input: two option bytes, then the file (see `orchardmap_fuzz::survey`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use orchardmap_fuzz::{Family, survey};

fuzz_target!(|data: &[u8]| survey(data, Family::Gpx));
