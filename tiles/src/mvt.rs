//! A small Mapbox Vector Tile 2.1 encoder and decoder.
//!
//! The protobuf wire format is written by hand: the MVT schema has four
//! messages and a handful of fields, so a dozen lines of varint code replace a
//! code generator and its build step.
//!
//! # Encoding
//! [`LayerBuilder`] collects features into one layer (version 2, a unique
//! name, an extent, usually [`DEFAULT_EXTENT`]). Each feature's properties
//! become pairs of indexes into the layer's key and value tables, which are
//! deduplicated so a value such as `"Ri6"` shared by a thousand trees is stored
//! once. Geometry is written as commands `(id & 7) | (count << 3)` followed by
//! zigzag-encoded deltas from the previous cursor position.
//!
//! Before writing, geometry is normalised as the spec asks
//! ([`Geometry::normalized`]): repeated consecutive points are dropped (the
//! spec forbids zero-length `LineTo`), rings are written open and closed with
//! `ClosePath`, exterior rings get positive area by the surveyor's formula in
//! tile coordinates (clockwise on screen, y down) and holes negative area, and
//! rings left with fewer than three points or no area after quantisation are
//! dropped, together with the holes of a dropped exterior.
//!
//! The output depends only on the input and its order (hash maps are used for
//! lookups only), so the same features always give the same bytes.
//!
//! Layers are independent length-delimited records of the `Tile` message, so
//! concatenating encoded layers ([`LayerBuilder::encode_into`]) gives a valid
//! tile, as long as the names differ ([`TileBuilder`] checks that).
//!
//! # Decoding
//! [`decode`] parses a tile back into layers, features, resolved properties
//! and [`Geometry`]. It exists to check our own output (unit, property and
//! end-to-end tests), so it is strict: anything the spec says MUST NOT happen
//! (zero-length `LineTo`, a polygon starting with a hole, a zero-area ring,
//! out-of-range tag indexes, duplicate layer names, ...) is an error.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::error::{Error, Result};

/// The extent (units per tile side) used by almost every tile server and by our tiles.
pub const DEFAULT_EXTENT: u32 = 4096;

/// The MVT version this encoder writes.
pub const VERSION: u32 = 2;

/// Largest command count: the count has 29 bits in a command integer.
const MAX_COUNT: usize = (1 << 29) - 1;

const CMD_MOVE_TO: u32 = 1;
const CMD_LINE_TO: u32 = 2;
const CMD_CLOSE_PATH: u32 = 7;

const GEOM_POINT: u32 = 1;
const GEOM_LINESTRING: u32 = 2;
const GEOM_POLYGON: u32 = 3;

// Protobuf wire types.
const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// A property value, one of the types the `Value` message can hold.
///
/// `Int`, `UInt` and `SInt` are different encodings of integers (`int64`,
/// `uint64`, zigzag `sint64`); `Int(5)` and `SInt(5)` are distinct entries of
/// the value table, as they are on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A UTF-8 string.
    String(String),
    /// A 32-bit float.
    Float(f32),
    /// A 64-bit float.
    Double(f64),
    /// A signed integer written as `int64`.
    Int(i64),
    /// An unsigned integer written as `uint64`.
    UInt(u64),
    /// A signed integer written zigzag-encoded as `sint64` (short for small negatives).
    SInt(i64),
    /// A boolean.
    Bool(bool),
}

impl Value {
    /// The string, when this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an `i64`, when it is an integer of any encoding that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(v) | Value::SInt(v) => Some(v),
            Value::UInt(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::UInt(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Double(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// A polygon in tile coordinates: one exterior ring and its holes.
///
/// Rings may be given open or closed (first point repeated at the end) and in
/// either orientation; [`Geometry::normalized`] fixes both.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Polygon {
    /// The outer ring.
    pub exterior: Vec<(i32, i32)>,
    /// Rings cut out of the exterior.
    pub holes: Vec<Vec<(i32, i32)>>,
}

/// Feature geometry in tile coordinates (`(x, y)`, origin at the tile's
/// north-west corner, y down; values outside `0..extent` lie in the buffer).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Geometry {
    /// One point, or several (a multipoint).
    Point(Vec<(i32, i32)>),
    /// One line string, or several.
    LineString(Vec<Vec<(i32, i32)>>),
    /// One polygon, or several (a multipolygon).
    Polygon(Vec<Polygon>),
}

impl Geometry {
    /// A single point.
    pub fn point(x: i32, y: i32) -> Self {
        Geometry::Point(vec![(x, y)])
    }

    /// The geometry as the encoder writes it and [`decode`] returns it, or
    /// `None` when nothing drawable is left.
    ///
    /// Lines lose repeated consecutive points and are dropped below two
    /// points. Rings are made open (closing point removed), lose repeated
    /// consecutive points, are dropped below three points or at zero area, and
    /// are turned to positive area (exteriors) or negative area (holes) by
    /// reversing all but their first point. A dropped exterior takes its holes
    /// with it. Points are kept as they are.
    pub fn normalized(&self) -> Option<Geometry> {
        match self {
            Geometry::Point(points) => (!points.is_empty()).then(|| self.clone()),
            Geometry::LineString(lines) => {
                let lines: Vec<_> = lines.iter().map(|l| dedup(l)).filter(|l| l.len() >= 2).collect();
                (!lines.is_empty()).then_some(Geometry::LineString(lines))
            }
            Geometry::Polygon(polygons) => {
                let polygons: Vec<_> = polygons
                    .iter()
                    .filter_map(|p| {
                        let exterior = oriented_ring(&p.exterior, true)?;
                        let holes = p.holes.iter().filter_map(|h| oriented_ring(h, false)).collect();
                        Some(Polygon { exterior, holes })
                    })
                    .collect();
                (!polygons.is_empty()).then_some(Geometry::Polygon(polygons))
            }
        }
    }

    /// The MVT `GeomType` number.
    fn type_number(&self) -> u32 {
        match self {
            Geometry::Point(_) => GEOM_POINT,
            Geometry::LineString(_) => GEOM_LINESTRING,
            Geometry::Polygon(_) => GEOM_POLYGON,
        }
    }
}

/// `points` without repeated consecutive points.
fn dedup(points: &[(i32, i32)]) -> Vec<(i32, i32)> {
    let mut out = points.to_vec();
    out.dedup();
    out
}

/// Twice the signed area of a ring by the surveyor's formula, in tile
/// coordinates (positive = clockwise on screen with y down). `i128` because
/// products of `i32` coordinates summed over a ring overflow `i64`.
pub fn ring_area2(ring: &[(i32, i32)]) -> i128 {
    let mut sum = 0i128;
    let Some(&last) = ring.last() else { return 0 };
    let mut prev = last;
    for &p in ring {
        sum += i128::from(prev.0) * i128::from(p.1) - i128::from(p.0) * i128::from(prev.1);
        prev = p;
    }
    sum
}

/// A ring made open and deduplicated, oriented positive (`exterior`) or
/// negative, or `None` when it is degenerate.
fn oriented_ring(ring: &[(i32, i32)], exterior: bool) -> Option<Vec<(i32, i32)>> {
    let mut r = dedup(ring);
    while r.len() > 1 && r.first() == r.last() {
        r.pop();
    }
    if r.len() < 3 {
        return None;
    }
    let area = ring_area2(&r);
    if area == 0 {
        return None;
    }
    if (area > 0) != exterior {
        // Keep the first point so the output starts where the input did.
        r[1..].reverse();
    }
    Some(r)
}

// ---------------------------------------------------------------- writing

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_key(buf: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(buf, (u64::from(field) << 3) | u64::from(wire));
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(buf, field, WIRE_LEN);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

fn varint_len(v: u32) -> u64 {
    // 7 payload bits per byte.
    u64::from((32 - v.leading_zeros()).max(1).div_ceil(7))
}

fn put_packed(buf: &mut Vec<u8>, field: u32, values: &[u32]) {
    put_key(buf, field, WIRE_LEN);
    put_varint(buf, values.iter().map(|v| varint_len(*v)).sum());
    for v in values {
        put_varint(buf, u64::from(*v));
    }
}

/// Zigzag encoding of a geometry parameter: small magnitudes, either sign, give small numbers.
pub fn zigzag(n: i32) -> u32 {
    ((n << 1) ^ (n >> 31)) as u32
}

/// Inverse of [`zigzag`].
pub fn unzigzag(n: u32) -> i32 {
    ((n >> 1) as i32) ^ -((n & 1) as i32)
}

fn zigzag64(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag64(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn command(id: u32, count: usize) -> u32 {
    // Callers chunk by MAX_COUNT, so the count always fits its 29 bits.
    (id & 7) | (u32::try_from(count.min(MAX_COUNT)).unwrap_or(0) << 3)
}

/// Appends geometry commands for an already normalised geometry.
fn put_geometry(geometry: &Geometry, out: &mut Vec<u32>) {
    let mut w = CommandWriter { out, cursor: (0, 0) };
    match geometry {
        Geometry::Point(points) => {
            // A multipoint is one MoveTo with a count; the chunking only
            // matters past 2^29 points.
            for chunk in points.chunks(MAX_COUNT) {
                w.out.push(command(CMD_MOVE_TO, chunk.len()));
                for &p in chunk {
                    w.step(p);
                }
            }
        }
        Geometry::LineString(lines) => {
            for line in lines {
                w.path(line, false);
            }
        }
        Geometry::Polygon(polygons) => {
            for polygon in polygons {
                w.path(&polygon.exterior, true);
                for hole in &polygon.holes {
                    w.path(hole, true);
                }
            }
        }
    }
}

/// Writes command integers, tracking the cursor the deltas are relative to
/// (one cursor for the whole feature, across parts, as the spec says).
struct CommandWriter<'a> {
    out: &'a mut Vec<u32>,
    cursor: (i32, i32),
}

impl CommandWriter<'_> {
    /// One parameter pair. Deltas use wrapping arithmetic so even coordinates
    /// too far apart for the spec's 32-bit parameters round-trip exactly
    /// through [`decode`] instead of panicking.
    fn step(&mut self, p: (i32, i32)) {
        self.out.push(zigzag(p.0.wrapping_sub(self.cursor.0)));
        self.out.push(zigzag(p.1.wrapping_sub(self.cursor.1)));
        self.cursor = p;
    }

    /// A line or ring: MoveTo the first point, LineTo the rest, and ClosePath
    /// for rings.
    fn path(&mut self, points: &[(i32, i32)], close: bool) {
        let Some((&first, rest)) = points.split_first() else { return };
        self.out.push(command(CMD_MOVE_TO, 1));
        self.step(first);
        for chunk in rest.chunks(MAX_COUNT) {
            self.out.push(command(CMD_LINE_TO, chunk.len()));
            for &p in chunk {
                self.step(p);
            }
        }
        if close {
            self.out.push(command(CMD_CLOSE_PATH, 1));
        }
    }
}

/// Hashable identity of a non-string value, for the value table's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scalar {
    Float(u32),
    Double(u64),
    Int(i64),
    UInt(u64),
    SInt(i64),
    Bool(bool),
}

/// Collects the features of one layer.
#[derive(Debug, Clone)]
pub struct LayerBuilder {
    name: String,
    extent: u32,
    keys: Vec<String>,
    key_index: HashMap<String, u32>,
    values: Vec<Value>,
    string_index: HashMap<String, u32>,
    scalar_index: HashMap<Scalar, u32>,
    /// Encoded `features` records (field 2 of `Layer`), appended as added.
    features: Vec<u8>,
    count: usize,
    scratch_tags: Vec<u32>,
    scratch_geometry: Vec<u32>,
    scratch_feature: Vec<u8>,
}

impl LayerBuilder {
    /// An empty layer called `name` with `extent` units per tile side
    /// (normally [`DEFAULT_EXTENT`]).
    pub fn new(name: impl Into<String>, extent: u32) -> Self {
        Self {
            name: name.into(),
            extent,
            keys: Vec::new(),
            key_index: HashMap::new(),
            values: Vec::new(),
            string_index: HashMap::new(),
            scalar_index: HashMap::new(),
            features: Vec::new(),
            count: 0,
            scratch_tags: Vec::new(),
            scratch_geometry: Vec::new(),
            scratch_feature: Vec::new(),
        }
    }

    /// The layer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Units per tile side.
    pub fn extent(&self) -> u32 {
        self.extent
    }

    /// Number of features added.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no feature was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds a feature: an optional id (unique within the layer, by the spec's
    /// SHOULD), its properties (keys should be unique within the feature) and
    /// its geometry, normalised as described in [`Geometry::normalized`].
    ///
    /// Returns `false`, adding nothing, when the geometry has nothing left to
    /// draw after normalisation (e.g. a polygon that quantised to a line).
    pub fn add_feature(&mut self, id: Option<u64>, properties: &[(&str, Value)], geometry: &Geometry) -> bool {
        // Points need no normalisation; skip the copy for them (the common case).
        let geometry = match geometry {
            Geometry::Point(p) if !p.is_empty() => Cow::Borrowed(geometry),
            _ => match geometry.normalized() {
                Some(g) => Cow::Owned(g),
                None => return false,
            },
        };

        let mut tags = std::mem::take(&mut self.scratch_tags);
        tags.clear();
        for (key, value) in properties {
            tags.push(self.key(key));
            tags.push(self.value(value));
        }
        let mut commands = std::mem::take(&mut self.scratch_geometry);
        commands.clear();
        put_geometry(&geometry, &mut commands);

        let mut feature = std::mem::take(&mut self.scratch_feature);
        feature.clear();
        if let Some(id) = id {
            put_key(&mut feature, 1, WIRE_VARINT);
            put_varint(&mut feature, id);
        }
        if !tags.is_empty() {
            put_packed(&mut feature, 2, &tags);
        }
        put_key(&mut feature, 3, WIRE_VARINT);
        put_varint(&mut feature, u64::from(geometry.type_number()));
        put_packed(&mut feature, 4, &commands);
        put_bytes(&mut self.features, 2, &feature);
        self.count += 1;

        self.scratch_tags = tags;
        self.scratch_geometry = commands;
        self.scratch_feature = feature;
        true
    }

    fn key(&mut self, key: &str) -> u32 {
        if let Some(&i) = self.key_index.get(key) {
            return i;
        }
        let i = table_index(self.keys.len());
        self.keys.push(key.to_string());
        self.key_index.insert(key.to_string(), i);
        i
    }

    fn value(&mut self, value: &Value) -> u32 {
        let scalar = match *value {
            Value::String(ref s) => {
                if let Some(&i) = self.string_index.get(s.as_str()) {
                    return i;
                }
                let i = table_index(self.values.len());
                self.values.push(value.clone());
                self.string_index.insert(s.clone(), i);
                return i;
            }
            // By bit pattern, so -0.0 and 0.0 stay distinct and NaN finds itself.
            Value::Float(v) => Scalar::Float(v.to_bits()),
            Value::Double(v) => Scalar::Double(v.to_bits()),
            Value::Int(v) => Scalar::Int(v),
            Value::UInt(v) => Scalar::UInt(v),
            Value::SInt(v) => Scalar::SInt(v),
            Value::Bool(v) => Scalar::Bool(v),
        };
        if let Some(&i) = self.scalar_index.get(&scalar) {
            return i;
        }
        let i = table_index(self.values.len());
        self.values.push(value.clone());
        self.scalar_index.insert(scalar, i);
        i
    }

    /// Appends this layer as one `layers` record of a `Tile` message to `tile`.
    /// An empty layer appends nothing (the spec says a layer SHOULD have at
    /// least one feature).
    pub fn encode_into(&self, tile: &mut Vec<u8>) {
        if self.is_empty() {
            return;
        }
        let mut layer = Vec::with_capacity(self.features.len() + 64 * (self.keys.len() + self.values.len()) + 32);
        put_bytes(&mut layer, 1, self.name.as_bytes());
        layer.extend_from_slice(&self.features);
        for key in &self.keys {
            put_bytes(&mut layer, 3, key.as_bytes());
        }
        let mut value_buf = Vec::new();
        for value in &self.values {
            value_buf.clear();
            put_value(&mut value_buf, value);
            put_bytes(&mut layer, 4, &value_buf);
        }
        put_key(&mut layer, 5, WIRE_VARINT);
        put_varint(&mut layer, u64::from(self.extent));
        put_key(&mut layer, 15, WIRE_VARINT);
        put_varint(&mut layer, u64::from(VERSION));
        put_bytes(tile, 3, &layer);
    }
}

/// A table position as the `u32` the tags hold. A layer would need four
/// billion distinct keys or values to overflow; saturate rather than panic.
fn table_index(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn put_value(buf: &mut Vec<u8>, value: &Value) {
    match *value {
        Value::String(ref s) => put_bytes(buf, 1, s.as_bytes()),
        Value::Float(v) => {
            put_key(buf, 2, WIRE_FIXED32);
            buf.extend_from_slice(&v.to_le_bytes());
        }
        Value::Double(v) => {
            put_key(buf, 3, WIRE_FIXED64);
            buf.extend_from_slice(&v.to_le_bytes());
        }
        Value::Int(v) => {
            put_key(buf, 4, WIRE_VARINT);
            // int64 negatives are their two's complement, ten bytes long.
            put_varint(buf, v as u64);
        }
        Value::UInt(v) => {
            put_key(buf, 5, WIRE_VARINT);
            put_varint(buf, v);
        }
        Value::SInt(v) => {
            put_key(buf, 6, WIRE_VARINT);
            put_varint(buf, zigzag64(v));
        }
        Value::Bool(v) => {
            put_key(buf, 7, WIRE_VARINT);
            put_varint(buf, u64::from(v));
        }
    }
}

/// Assembles layers into a tile, refusing duplicate layer names.
#[derive(Debug, Clone, Default)]
pub struct TileBuilder {
    layers: Vec<LayerBuilder>,
}

impl TileBuilder {
    /// An empty tile.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a layer; layers are written in the order added.
    ///
    /// # Errors
    /// [`Error::DuplicateLayer`] when a layer of that name is already there.
    pub fn add_layer(&mut self, layer: LayerBuilder) -> Result<()> {
        if self.layers.iter().any(|l| l.name == layer.name) {
            return Err(Error::DuplicateLayer { name: layer.name });
        }
        self.layers.push(layer);
        Ok(())
    }

    /// The tile's bytes. Empty layers are left out, so a tile with no features
    /// is zero bytes long, which is a valid (empty) `Tile` message.
    pub fn encode(&self) -> Vec<u8> {
        let mut tile = Vec::new();
        for layer in &self.layers {
            layer.encode_into(&mut tile);
        }
        tile
    }
}

// ---------------------------------------------------------------- reading

/// A decoded tile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tile {
    /// Layers in the order they appear.
    pub layers: Vec<Layer>,
}

impl Tile {
    /// The layer called `name`.
    pub fn layer(&self, name: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.name == name)
    }
}

/// A decoded layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Spec version (2 for our tiles; 1 when the field is missing).
    pub version: u32,
    /// Layer name.
    pub name: String,
    /// Units per tile side (4096 when the field is missing).
    pub extent: u32,
    /// The key table, as stored.
    pub keys: Vec<String>,
    /// The value table, as stored.
    pub values: Vec<Value>,
    /// Features in the order they appear.
    pub features: Vec<Feature>,
}

/// A decoded feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    /// The feature id, if it has one.
    pub id: Option<u64>,
    /// Properties, resolved from the tag indexes, in tag order.
    pub properties: Vec<(String, Value)>,
    /// The geometry, in the normalised form of [`Geometry::normalized`].
    pub geometry: Geometry,
}

impl Feature {
    /// The value of property `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.properties.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// A protobuf cursor over one message; `base` is the message's offset in the
/// whole tile so errors point at the right byte.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Decode { offset: self.offset(), reason: reason.into() }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else { return Err(self.err("truncated varint")) };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn u32(&mut self) -> Result<u32> {
        let at = self.offset();
        let v = self.varint()?;
        u32::try_from(v).map_err(|_| Error::Decode { offset: at, reason: format!("{v} does not fit 32 bits") })
    }

    fn key(&mut self) -> Result<(u64, u8)> {
        let k = self.varint()?;
        Ok((k >> 3, (k & 7) as u8))
    }

    fn take(&mut self, n: usize) -> Result<Reader<'a>> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| self.err("field runs past the end"))?;
        let sub = Reader { buf: &self.buf[self.pos..end], pos: 0, base: self.offset() };
        self.pos = end;
        Ok(sub)
    }

    fn message(&mut self) -> Result<Reader<'a>> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| self.err("length too large"))?;
        self.take(n)
    }

    fn string(&mut self) -> Result<String> {
        let sub = self.message()?;
        String::from_utf8(sub.buf.to_vec())
            .map_err(|_| Error::Decode { offset: sub.base, reason: "string is not UTF-8".into() })
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        let sub = self.take(N)?;
        sub.buf.try_into().map_err(|_| self.err("short fixed-width field"))
    }

    fn skip(&mut self, wire: u8) -> Result<()> {
        match wire {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_FIXED64 => self.take(8).map(drop),
            WIRE_LEN => self.message().map(drop),
            WIRE_FIXED32 => self.take(4).map(drop),
            _ => Err(self.err(format!("unsupported wire type {wire}"))),
        }
    }

    /// A repeated `uint32` field, packed (the spec's form) or not.
    fn u32s(&mut self, wire: u8, out: &mut Vec<u32>) -> Result<()> {
        match wire {
            WIRE_LEN => {
                let mut sub = self.message()?;
                while !sub.done() {
                    out.push(sub.u32()?);
                }
                Ok(())
            }
            WIRE_VARINT => {
                out.push(self.u32()?);
                Ok(())
            }
            _ => Err(self.err(format!("wire type {wire} for a repeated uint32"))),
        }
    }

    fn expect(&self, wire: u8, want: u8, field: &str) -> Result<()> {
        if wire == want { Ok(()) } else { Err(self.err(format!("{field} has wire type {wire}, expected {want}"))) }
    }
}

/// Parses a vector tile (uncompressed; gunzip first if it came gzipped).
///
/// # Errors
/// [`Error::Decode`] with the byte offset when the bytes are not a
/// well-formed tile by the strict reading described in the module docs.
pub fn decode(bytes: &[u8]) -> Result<Tile> {
    let mut r = Reader::new(bytes, 0);
    let mut tile = Tile::default();
    while !r.done() {
        let (field, wire) = r.key()?;
        if field == 3 {
            r.expect(wire, WIRE_LEN, "layer")?;
            let at = r.offset();
            let layer = decode_layer(r.message()?)?;
            if tile.layer(&layer.name).is_some() {
                return Err(Error::Decode { offset: at, reason: format!("layer name {:?} appears twice", layer.name) });
            }
            tile.layers.push(layer);
        } else {
            r.skip(wire)?;
        }
    }
    Ok(tile)
}

/// A feature as read, before its tags can be resolved (the tables may come after it).
struct RawFeature {
    offset: usize,
    id: Option<u64>,
    tags: Vec<u32>,
    kind: Option<u64>,
    geometry: Vec<u32>,
}

fn decode_layer(mut r: Reader<'_>) -> Result<Layer> {
    let start = r.offset();
    let (mut version, mut name, mut extent) = (1u32, None, DEFAULT_EXTENT);
    let (mut keys, mut values, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            15 => {
                r.expect(wire, WIRE_VARINT, "version")?;
                version = r.u32()?;
            }
            1 => {
                r.expect(wire, WIRE_LEN, "name")?;
                name = Some(r.string()?);
            }
            2 => {
                r.expect(wire, WIRE_LEN, "feature")?;
                raw.push(decode_feature(r.message()?)?);
            }
            3 => {
                r.expect(wire, WIRE_LEN, "key")?;
                keys.push(r.string()?);
            }
            4 => {
                r.expect(wire, WIRE_LEN, "value")?;
                values.push(decode_value(r.message()?)?);
            }
            5 => {
                r.expect(wire, WIRE_VARINT, "extent")?;
                extent = r.u32()?;
            }
            _ => r.skip(wire)?,
        }
    }
    let name = name.ok_or(Error::Decode { offset: start, reason: "layer has no name".into() })?;
    let mut features = Vec::with_capacity(raw.len());
    for f in raw {
        let err = |reason: String| Error::Decode { offset: f.offset, reason };
        if f.tags.len() % 2 != 0 {
            return Err(err("odd number of tag indexes".into()));
        }
        let mut properties = Vec::with_capacity(f.tags.len() / 2);
        for pair in f.tags.chunks_exact(2) {
            let key = keys.get(pair[0] as usize).ok_or_else(|| err(format!("key index {} out of range", pair[0])))?;
            let value =
                values.get(pair[1] as usize).ok_or_else(|| err(format!("value index {} out of range", pair[1])))?;
            properties.push((key.clone(), value.clone()));
        }
        let kind = f.kind.ok_or_else(|| err("feature has no geometry type".into()))?;
        let geometry = decode_geometry(kind, &f.geometry).map_err(err)?;
        features.push(Feature { id: f.id, properties, geometry });
    }
    Ok(Layer { version, name, extent, keys, values, features })
}

fn decode_feature(mut r: Reader<'_>) -> Result<RawFeature> {
    let mut f = RawFeature { offset: r.offset(), id: None, tags: Vec::new(), kind: None, geometry: Vec::new() };
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                r.expect(wire, WIRE_VARINT, "id")?;
                f.id = Some(r.varint()?);
            }
            2 => r.u32s(wire, &mut f.tags)?,
            3 => {
                r.expect(wire, WIRE_VARINT, "type")?;
                f.kind = Some(r.varint()?);
            }
            4 => r.u32s(wire, &mut f.geometry)?,
            _ => r.skip(wire)?,
        }
    }
    Ok(f)
}

fn decode_value(mut r: Reader<'_>) -> Result<Value> {
    let mut value = None;
    while !r.done() {
        let (field, wire) = r.key()?;
        let v = match field {
            1 => {
                r.expect(wire, WIRE_LEN, "string_value")?;
                Value::String(r.string()?)
            }
            2 => {
                r.expect(wire, WIRE_FIXED32, "float_value")?;
                Value::Float(f32::from_le_bytes(r.fixed()?))
            }
            3 => {
                r.expect(wire, WIRE_FIXED64, "double_value")?;
                Value::Double(f64::from_le_bytes(r.fixed()?))
            }
            4 => {
                r.expect(wire, WIRE_VARINT, "int_value")?;
                Value::Int(r.varint()? as i64)
            }
            5 => {
                r.expect(wire, WIRE_VARINT, "uint_value")?;
                Value::UInt(r.varint()?)
            }
            6 => {
                r.expect(wire, WIRE_VARINT, "sint_value")?;
                Value::SInt(unzigzag64(r.varint()?))
            }
            7 => {
                r.expect(wire, WIRE_VARINT, "bool_value")?;
                Value::Bool(r.varint()? != 0)
            }
            _ => {
                r.skip(wire)?;
                continue;
            }
        };
        // The spec says exactly one of the fields is present.
        if value.replace(v).is_some() {
            return Err(r.err("value has more than one field"));
        }
    }
    value.ok_or_else(|| r.err("value has no field"))
}

/// Turns commands back into geometry, checking the spec's MUSTs.
fn decode_geometry(kind: u64, commands: &[u32]) -> std::result::Result<Geometry, String> {
    let kind = match kind {
        1 => GEOM_POINT,
        2 => GEOM_LINESTRING,
        3 => GEOM_POLYGON,
        0 => return Err("geometry type UNKNOWN is not supported".into()),
        k => return Err(format!("geometry type {k} does not exist")),
    };
    let mut cursor = (0i32, 0i32);
    let mut points = Vec::new();
    let mut parts: Vec<Vec<(i32, i32)>> = Vec::new();
    // Whether the last polygon ring is still waiting for its ClosePath.
    let mut open = false;
    let mut i = 0;
    while let Some(&c) = commands.get(i) {
        i += 1;
        let (id, count) = (c & 7, (c >> 3) as usize);
        if count == 0 {
            return Err(format!("command {id} with count 0"));
        }
        match id {
            CMD_MOVE_TO | CMD_LINE_TO => {
                let end = count.checked_mul(2).and_then(|n| n.checked_add(i)).ok_or("command count too large")?;
                let params = commands.get(i..end).ok_or("command parameters run past the end")?;
                i = end;
                if id == CMD_MOVE_TO && kind != GEOM_POINT {
                    if count != 1 {
                        return Err("MoveTo count must be 1 in lines and polygons".into());
                    }
                    if open {
                        return Err("polygon ring not closed before the next MoveTo".into());
                    }
                    open = kind == GEOM_POLYGON;
                }
                if id == CMD_LINE_TO && (kind == GEOM_POINT || parts.is_empty() || (kind == GEOM_POLYGON && !open)) {
                    return Err("LineTo without a path to continue".into());
                }
                for pair in params.chunks_exact(2) {
                    let (dx, dy) = (unzigzag(pair[0]), unzigzag(pair[1]));
                    if id == CMD_LINE_TO && dx == 0 && dy == 0 {
                        return Err("zero-length LineTo".into());
                    }
                    cursor = (cursor.0.wrapping_add(dx), cursor.1.wrapping_add(dy));
                    match (id, kind) {
                        (CMD_MOVE_TO, GEOM_POINT) => points.push(cursor),
                        (CMD_MOVE_TO, _) => parts.push(vec![cursor]),
                        _ => {
                            if let Some(part) = parts.last_mut() {
                                part.push(cursor);
                            }
                        }
                    }
                }
            }
            CMD_CLOSE_PATH => {
                if kind != GEOM_POLYGON || count != 1 || !open {
                    return Err("ClosePath outside an open polygon ring".into());
                }
                // A closing point written out (the first point again) is dropped: decoded
                // rings are open, as `Geometry::normalized` makes them.
                if let Some(ring) = parts.last_mut() {
                    if ring.len() > 1 && ring.first() == ring.last() {
                        ring.pop();
                    }
                }
                if parts.last().is_none_or(|r| r.len() < 3) {
                    return Err("ring with fewer than 3 points".into());
                }
                open = false;
            }
            _ => return Err(format!("unknown command {id}")),
        }
    }
    match kind {
        GEOM_POINT => {
            if points.is_empty() {
                return Err("point geometry without points".into());
            }
            Ok(Geometry::Point(points))
        }
        GEOM_LINESTRING => {
            if parts.is_empty() || parts.iter().any(|l| l.len() < 2) {
                return Err("line with fewer than 2 points".into());
            }
            Ok(Geometry::LineString(parts))
        }
        _ => {
            if open {
                return Err("last polygon ring not closed".into());
            }
            let mut polygons: Vec<Polygon> = Vec::new();
            for ring in parts {
                let area = ring_area2(&ring);
                if area > 0 {
                    polygons.push(Polygon { exterior: ring, holes: Vec::new() });
                } else if area < 0 {
                    polygons.last_mut().ok_or("polygon starts with an interior ring")?.holes.push(ring);
                } else {
                    return Err("zero-area ring".into());
                }
            }
            if polygons.is_empty() {
                return Err("polygon geometry without rings".into());
            }
            Ok(Geometry::Polygon(polygons))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A feature to add: id, properties, geometry.
    type Input<'a> = (Option<u64>, Vec<(&'a str, Value)>, Geometry);

    fn one_layer(features: &[Input<'_>]) -> Vec<u8> {
        let mut layer = LayerBuilder::new("test", DEFAULT_EXTENT);
        for (id, props, geom) in features {
            layer.add_feature(*id, props, geom);
        }
        let mut tile = TileBuilder::new();
        tile.add_layer(layer).unwrap();
        tile.encode()
    }

    #[test]
    fn zigzag_matches_the_spec_table() {
        for (n, z) in [(0, 0u32), (-1, 1), (1, 2), (-2, 3), (2, 4), (i32::MAX, u32::MAX - 1), (i32::MIN, u32::MAX)] {
            assert_eq!(zigzag(n), z, "{n}");
            assert_eq!(unzigzag(z), n);
        }
        assert_eq!(zigzag64(-1), 1);
        assert_eq!(unzigzag64(zigzag64(i64::MIN)), i64::MIN);
    }

    #[test]
    fn point_bytes_match_the_spec_example() {
        // Spec 4.3.5.1: a point at (25, 17) is [9, 50, 34].
        let mut out = Vec::new();
        put_geometry(&Geometry::point(25, 17), &mut out);
        assert_eq!(out, [9, 50, 34]);
        // Spec 4.3.5.2 multipoint (5,7) (3,2): [17, 10, 14, 3, 9].
        out.clear();
        put_geometry(&Geometry::Point(vec![(5, 7), (3, 2)]), &mut out);
        assert_eq!(out, [17, 10, 14, 3, 9]);
    }

    #[test]
    fn polygon_bytes_match_the_spec_example() {
        // Spec 4.3.5.6: (3,6) (8,12) (20,34) -> [9, 6, 12, 18, 10, 12, 24, 44, 15].
        let g = Geometry::Polygon(vec![Polygon { exterior: vec![(3, 6), (8, 12), (20, 34), (3, 6)], holes: vec![] }]);
        let g = g.normalized().unwrap();
        let mut out = Vec::new();
        put_geometry(&g, &mut out);
        assert_eq!(out, [9, 6, 12, 18, 10, 12, 24, 44, 15]);
    }

    #[test]
    fn whole_tile_bytes_are_exact() {
        // Layer "a", one feature id 1 with tag k="v" at point (1,1), extent 4096, version 2.
        let bytes = one_layer(&[(Some(1), vec![("k", Value::from("v"))], Geometry::point(1, 1))]);
        let feature = [0x08, 1, 0x12, 2, 0, 0, 0x18, 1, 0x22, 3, 9, 2, 2];
        let mut layer = vec![0x0a, 4, b't', b'e', b's', b't', 0x12, feature.len() as u8];
        layer.extend_from_slice(&feature);
        layer.extend_from_slice(&[0x1a, 1, b'k', 0x22, 3, 0x0a, 1, b'v', 0x28, 0x80, 0x20, 0x78, 2]);
        let mut want = vec![0x1a, layer.len() as u8];
        want.extend_from_slice(&layer);
        assert_eq!(bytes, want);
    }

    #[test]
    fn tags_are_deduplicated() {
        let f = |id: u64, cultivar: &str, year: i64| {
            (
                Some(id),
                vec![("cultivar", Value::from(cultivar)), ("year", Value::Int(year)), ("alive", Value::Bool(true))],
                Geometry::point(1, 2),
            )
        };
        let bytes = one_layer(&[f(1, "Ri6", 2015), f(2, "Ri6", 2016), f(3, "Monthong", 2015)]);
        let tile = decode(&bytes).unwrap();
        let layer = &tile.layers[0];
        assert_eq!(layer.keys, ["cultivar", "year", "alive"]);
        assert_eq!(
            layer.values,
            [Value::from("Ri6"), Value::Int(2015), Value::Bool(true), Value::Int(2016), Value::from("Monthong")]
        );
        assert_eq!(layer.features[2].get("cultivar"), Some(&Value::from("Monthong")));
        assert_eq!(layer.features[1].get("year").and_then(Value::as_i64), Some(2016));
        // Same number in different encodings are different table entries.
        let bytes = one_layer(&[(
            None,
            vec![("a", Value::Int(5)), ("b", Value::SInt(5)), ("c", Value::UInt(5))],
            Geometry::point(0, 0),
        )]);
        assert_eq!(decode(&bytes).unwrap().layers[0].values.len(), 3);
    }

    #[test]
    fn every_value_type_round_trips() {
        let values = vec![
            ("s", Value::from("Sầu riêng")),
            ("f", Value::Float(1.5)),
            ("d", Value::Double(-2.25)),
            ("i", Value::Int(-7)),
            ("u", Value::UInt(u64::MAX)),
            ("z", Value::SInt(i64::MIN)),
            ("b", Value::Bool(false)),
        ];
        let bytes = one_layer(&[(Some(u64::MAX), values.clone(), Geometry::point(-5, 5000))]);
        let f = &decode(&bytes).unwrap().layers[0].features[0];
        assert_eq!(f.id, Some(u64::MAX));
        let want: Vec<(String, Value)> = values.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(f.properties, want);
        assert_eq!(f.geometry, Geometry::point(-5, 5000));
    }

    #[test]
    fn polygon_winding_is_fixed_and_degenerate_rings_dropped() {
        // Counter-clockwise on screen (negative area) exterior, clockwise hole.
        let ccw = vec![(0, 0), (0, 100), (100, 100), (100, 0)];
        let cw_hole = vec![(10, 10), (20, 10), (20, 20), (10, 20)];
        assert!(ring_area2(&ccw) < 0 && ring_area2(&cw_hole) > 0);
        let g = Geometry::Polygon(vec![
            Polygon { exterior: ccw, holes: vec![cw_hole, vec![(50, 50), (60, 60), (50, 50)]] },
            // Collapsed to a line by quantisation: dropped with its hole.
            Polygon { exterior: vec![(0, 0), (5, 5), (10, 10)], holes: vec![vec![(1, 1), (2, 1), (2, 2)]] },
        ]);
        let bytes = one_layer(&[(None, vec![], g)]);
        let f = &decode(&bytes).unwrap().layers[0].features[0];
        let Geometry::Polygon(polys) = &f.geometry else { panic!("{:?}", f.geometry) };
        assert_eq!(polys.len(), 1);
        assert_eq!(polys[0].exterior, [(0, 0), (100, 0), (100, 100), (0, 100)]);
        assert!(ring_area2(&polys[0].exterior) > 0);
        assert_eq!(polys[0].holes, [vec![(10, 10), (10, 20), (20, 20), (20, 10)]]);
        assert!(ring_area2(&polys[0].holes[0]) < 0);
    }

    #[test]
    fn nothing_to_draw_adds_nothing() {
        let mut layer = LayerBuilder::new("x", DEFAULT_EXTENT);
        assert!(!layer.add_feature(None, &[], &Geometry::Point(vec![])));
        assert!(!layer.add_feature(None, &[], &Geometry::LineString(vec![vec![(1, 1), (1, 1)]])));
        let flat = Polygon { exterior: vec![(0, 0), (1, 0), (2, 0)], holes: vec![] };
        assert!(!layer.add_feature(None, &[], &Geometry::Polygon(vec![flat])));
        assert!(layer.is_empty());
        let mut tile = Vec::new();
        layer.encode_into(&mut tile);
        assert!(tile.is_empty());
        assert_eq!(decode(&tile).unwrap(), Tile::default());
    }

    #[test]
    fn duplicate_layers_are_refused() {
        let mut tile = TileBuilder::new();
        tile.add_layer(LayerBuilder::new("trees", 4096)).unwrap();
        assert_eq!(
            tile.add_layer(LayerBuilder::new("trees", 4096)),
            Err(Error::DuplicateLayer { name: "trees".into() })
        );
        let mut a = LayerBuilder::new("t", 4096);
        a.add_feature(None, &[], &Geometry::point(0, 0));
        let mut bytes = Vec::new();
        a.encode_into(&mut bytes);
        a.encode_into(&mut bytes);
        assert!(matches!(decode(&bytes), Err(Error::Decode { .. })));
    }

    #[test]
    fn decoder_refuses_malformed_input() {
        let good = one_layer(&[(Some(1), vec![("k", Value::from("v"))], Geometry::point(1, 1))]);
        for cut in 1..good.len() {
            assert!(decode(&good[..cut]).is_err(), "prefix of {cut} bytes");
        }
        // A zero-length LineTo: MoveTo(0,0) LineTo(0,0) in a line string.
        let mut layer = vec![0x0a, 1, b'l'];
        let feature = [0x18, 2, 0x22, 6, 9, 0, 0, 10, 0, 0];
        layer.extend_from_slice(&[0x12, feature.len() as u8]);
        layer.extend_from_slice(&feature);
        let mut tile = vec![0x1a, layer.len() as u8];
        tile.extend_from_slice(&layer);
        let err = decode(&tile).unwrap_err().to_string();
        assert!(err.contains("zero-length LineTo"), "{err}");
    }

    /// Found by fuzzing (`fuzz/fuzz_targets/tile.rs`): a ring whose last LineTo
    /// returns to its first point decoded with that point twice, so the decoded
    /// geometry was not in the normalised form `decode` promises, and encoding
    /// it again gave a different geometry.
    #[test]
    fn explicit_closing_points_are_dropped() {
        // The hole of the fuzzer's input: MoveTo(40,40) LineTo(40,80)(80,80)(40,40) ClosePath,
        // inside MoveTo(10,10) LineTo(110,10)(110,110)(10,110) ClosePath.
        let commands = [9, 20, 20, 26, 200, 0, 0, 200, 199, 0, 15, 9, 60, 139, 26, 0, 80, 80, 0, 79, 79, 15];
        let g = decode_geometry(3, &commands).unwrap();
        let square = vec![(10, 10), (110, 10), (110, 110), (10, 110)];
        let want =
            Geometry::Polygon(vec![Polygon { exterior: square, holes: vec![vec![(40, 40), (40, 80), (80, 80)]] }]);
        assert_eq!(g, want);
        assert_eq!(g.normalized(), Some(g.clone()));
        // A ring that is only its closing point and one other is still refused.
        assert!(decode_geometry(3, &[9, 0, 0, 18, 2, 0, 1, 0, 15]).is_err());
    }

    fn coord() -> impl Strategy<Value = (i32, i32)> {
        prop_oneof![(-200i32..4300, -200i32..4300), any::<(i32, i32)>()]
    }

    fn ring() -> impl Strategy<Value = Vec<(i32, i32)>> {
        prop::collection::vec((-200i32..4300, -200i32..4300), 0..8)
    }

    fn geometry() -> impl Strategy<Value = Geometry> {
        prop_oneof![
            prop::collection::vec(coord(), 0..5).prop_map(Geometry::Point),
            prop::collection::vec(prop::collection::vec(coord(), 0..6), 0..3).prop_map(Geometry::LineString),
            prop::collection::vec(
                (ring(), prop::collection::vec(ring(), 0..3)).prop_map(|(exterior, holes)| Polygon { exterior, holes }),
                0..3
            )
            .prop_map(Geometry::Polygon),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            "[a-zA-Zà-ỹ0-9 ]{0,8}".prop_map(Value::String),
            any::<f32>().prop_map(Value::Float),
            any::<f64>().prop_map(Value::Double),
            any::<i64>().prop_map(Value::Int),
            any::<u64>().prop_map(Value::UInt),
            any::<i64>().prop_map(Value::SInt),
            any::<bool>().prop_map(Value::Bool),
        ]
    }

    /// Equality that treats NaN as equal to itself bit for bit.
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
            (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
            _ => a == b,
        }
    }

    proptest! {
        #[test]
        fn encode_then_decode_gives_the_normalised_features(
            features in prop::collection::vec(
                (prop::option::of(any::<u64>()), prop::collection::btree_map("[a-z]{1,3}", value(), 0..4), geometry()),
                0..6,
            )
        ) {
            let mut layer = LayerBuilder::new("p", DEFAULT_EXTENT);
            let mut want = Vec::new();
            for (id, props, geom) in &features {
                let props: Vec<(&str, Value)> = props.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                let added = layer.add_feature(*id, &props, geom);
                prop_assert_eq!(added, geom.normalized().is_some());
                if let Some(g) = geom.normalized() {
                    want.push((*id, props, g));
                }
            }
            let mut bytes = Vec::new();
            layer.encode_into(&mut bytes);
            // Deterministic: a second identical layer gives identical bytes.
            let mut again = LayerBuilder::new("p", DEFAULT_EXTENT);
            for (id, props, geom) in &features {
                let props: Vec<(&str, Value)> = props.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                again.add_feature(*id, &props, geom);
            }
            let mut bytes2 = Vec::new();
            again.encode_into(&mut bytes2);
            prop_assert_eq!(&bytes, &bytes2);

            let tile = decode(&bytes).unwrap();
            if want.is_empty() {
                prop_assert!(tile.layers.is_empty());
                return Ok(());
            }
            let l = &tile.layers[0];
            prop_assert_eq!((l.version, l.name.as_str(), l.extent), (2, "p", 4096));
            prop_assert_eq!(l.features.len(), want.len());
            for (f, (id, props, g)) in l.features.iter().zip(&want) {
                prop_assert_eq!(f.id, *id);
                prop_assert_eq!(&f.geometry, g);
                prop_assert_eq!(f.properties.len(), props.len());
                for ((k1, v1), (k2, v2)) in f.properties.iter().zip(props) {
                    prop_assert_eq!(k1, k2);
                    prop_assert!(same(v1, v2), "{v1:?} != {v2:?}");
                }
            }
        }

        #[test]
        fn normalised_is_a_fixed_point(g in geometry()) {
            if let Some(n) = g.normalized() {
                prop_assert_eq!(n.normalized(), Some(n.clone()));
            }
        }

        #[test]
        fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decoder_never_panics_on_damaged_tiles(g in geometry(), flip in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = one_layer(&[(Some(3), vec![("k", Value::from("v"))], g)]);
            if !bytes.is_empty() {
                let i = flip.index(bytes.len());
                bytes[i] = byte;
            }
            let _ = decode(&bytes);
        }
    }
}
