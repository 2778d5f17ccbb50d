//! Domain types and spatial logic of orchardmap.
//!
//! This crate does no I/O: no files, no network, no database. It defines what a
//! [`Tree`], an [`Orchard`] and a [`Survey`] are, how a record is validated
//! ([`Tree::validate`] returns *every* problem, each naming the field and value),
//! the printable tag [`TreeCode`], the distance model ([`distance_m`]), the
//! in-memory R-tree [`TreeIndex`] and survey coordinate systems ([`Crs`]: WGS 84,
//! UTM, Web Mercator and VN-2000, in pure Rust).
//!
//! ```
//! use geo_core::{LonLat, TreeId, TreeIndex};
//!
//! let index = TreeIndex::bulk_load(vec![
//!     (TreeId(1), LonLat::new(108.0500, 12.6800)),
//!     (TreeId(2), LonLat::new(108.0501, 12.6800)),
//! ]);
//! let nearest = index.nearest(LonLat::new(108.05011, 12.68), 1);
//! assert_eq!(nearest[0].id, TreeId(2));
//! assert!(nearest[0].distance_m < 2.0);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod account;
mod bbox;
mod brief;
mod code;
pub mod crs;
pub mod epcis;
mod error;
mod filter;
mod geodesy;
mod grid;
pub mod gs1;
mod index;
mod locate;
pub mod lot;
mod model;
mod record;
pub mod scan;
pub mod trace;
pub mod trust;
mod validate;

pub use account::{Actor, Role, User, UserId};
pub use bbox::BBox;
pub use brief::{BriefFilter, CultivarTable, TreeBrief, Verdict};
pub use code::TreeCode;
pub use crs::{Crs, CrsError};
pub use error::{Error, Problem, Result};
pub use filter::{TreeFilter, fold};
pub use geodesy::{LonLat, distance_m, mercator, mercator_scale};
pub use grid::{CellHasher, PointGrid};
pub use index::{IndexedTree, Neighbor, TreeIndex, polygon_from_ring};
pub use locate::OrchardLocator;
pub use lot::{Analyte, LabResult, Lot, LotCode, LotId, LotTrees, NewLot, PhiCheck, phi_checks};
pub use model::{
    Cultivar, Health, KNOWN_CULTIVARS, NewTree, Orchard, OrchardId, Survey, SurveyId, Tree, TreeId, TreeRef,
};
pub use record::{
    ChangeAction, FieldChange, MAX_NOTE_CHARS, NewTreeRecord, RECORD_KINDS, RecordDetails, RecordId, RemovalReason,
    TreeChange, TreeRecord, diff_trees,
};
pub use validate::{Region, VIETNAM};
