//! Errors of the tiles crate.

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in tile math, encoding and decoding.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The zoom level is above [`crate::MAX_ZOOM`].
    #[error("tile zoom z={z} is out of range: allowed 0..={max}")]
    Zoom {
        /// What was given.
        z: u32,
        /// The highest zoom accepted.
        max: u8,
    },
    /// The column is not below `2^z`.
    #[error("tile column x={x} is out of range at zoom {z}: allowed 0..={max}")]
    Column {
        /// What was given.
        x: u32,
        /// The (valid) zoom it was given with.
        z: u8,
        /// The highest column at that zoom (`2^z - 1`).
        max: u32,
    },
    /// The row is not below `2^z`.
    #[error("tile row y={y} is out of range at zoom {z}: allowed 0..={max}")]
    Row {
        /// What was given.
        y: u32,
        /// The (valid) zoom it was given with.
        z: u8,
        /// The highest row at that zoom (`2^z - 1`).
        max: u32,
    },
    /// A tile address could not be parsed from text.
    #[error("tile address {value:?}: {reason}")]
    Parse {
        /// What was given.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A position is not a finite longitude in -180..180 and latitude in -90..90.
    #[error("position lon={lon} lat={lat} is not a valid WGS 84 longitude/latitude")]
    Position {
        /// Longitude given.
        lon: f64,
        /// Latitude given.
        lat: f64,
    },
    /// Two layers of one tile have the same name (the MVT spec requires unique names).
    #[error("layer name {name:?} is used twice in one tile")]
    DuplicateLayer {
        /// The repeated name.
        name: String,
    },
    /// Bytes that are not a well-formed vector tile.
    #[error("malformed vector tile at byte {offset}: {reason}")]
    Decode {
        /// Byte offset in the tile where the problem was found.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}
