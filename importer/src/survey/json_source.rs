//! GeoJSON FeatureCollections of points, read feature by feature, and
//! newline-delimited GeoJSON (GeoJSONSeq, NDJSON).
//!
//! A scanner walks the top-level object to its `"features": [` (keeping a
//! `"crs"` member on the way) and then cuts the array into one feature's
//! bytes at a time (strings, escapes and nesting tracked), which serde_json
//! parses. So a 1 GB collection is never in memory whole, and a feature that
//! is not valid JSON becomes one rejected record instead of ending the file.
//! Newline-delimited files are read the same way, one value after another.

use std::collections::HashMap;
use std::io::BufRead;

use serde_json::Value;

use super::build::{Builder, Cache, Values};
use super::{Context, Field, MAX_RECORD_BYTES, Mapping, RawKind, RawRecord, Record, RecordAt};
use crate::{Error, Reprojector, Result};

/// How reading one JSON value ended.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// The whole value was read.
    Complete,
    /// The input ended inside the value.
    Eof,
    /// The value is larger than the limit.
    TooLarge,
}

/// The next byte that is not whitespace (nor one of `also`), not consumed.
fn skip(reader: &mut dyn BufRead, also: &[u8]) -> std::io::Result<Option<u8>> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace() && !also.contains(b)) {
            Some(i) => {
                let b = buf[i];
                reader.consume(i);
                return Ok(Some(b));
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

/// Reads one JSON value starting at the next byte (whitespace skipped
/// before), appending its bytes to `out` when given (up to `limit` bytes).
/// Only the value's extent is checked, not its syntax.
fn read_value(reader: &mut dyn BufRead, mut out: Option<&mut Vec<u8>>, limit: usize) -> std::io::Result<Scan> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut started = false;
    let mut scalar = false;
    let mut taken = 0usize;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(if started && scalar && !in_string { Scan::Complete } else { Scan::Eof });
        }
        let mut i = 0;
        let mut complete = false;
        while i < buf.len() {
            let b = buf[i];
            if !started {
                started = true;
                match b {
                    b'{' | b'[' => depth = 1,
                    b'"' => in_string = true,
                    _ => scalar = true,
                }
            } else if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                    if depth == 0 {
                        i += 1;
                        complete = true;
                        break;
                    }
                }
            } else if scalar {
                if b.is_ascii_whitespace() || matches!(b, b',' | b']' | b'}' | b'\x1e') {
                    complete = true;
                    break;
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            complete = true;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        taken += i;
        if let Some(out) = out.as_deref_mut() {
            if taken > limit {
                reader.consume(i);
                return Ok(Scan::TooLarge);
            }
            out.extend_from_slice(&buf[..i]);
        }
        reader.consume(i);
        if complete {
            return Ok(Scan::Complete);
        }
    }
}

pub(crate) struct JsonSource {
    reader: Box<dyn BufRead + Send>,
    seq: bool,
    buf: Vec<u8>,
    index: u64,
    /// The first record, read at open to show the mapping.
    pending: Option<Record>,
    /// Field of each property name seen (names repeat feature after feature).
    fields: HashMap<String, Option<Field>>,
    cache: Cache,
    done: bool,
}

fn not_geojson(ctx: &Context, why: &str) -> Error {
    Error::NotGeoJson { file: ctx.file.clone(), reason: format!("not a GeoJSON FeatureCollection: {why}") }
}

/// The EPSG code of a (2008 GeoJSON) `crs` member, as QGIS writes it:
/// `{"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::9218"}}`.
fn crs_member(value: &Value) -> Option<String> {
    let name = value.get("properties")?.get("name")?.as_str()?;
    let code = name.rsplit(':').next()?;
    if name.to_ascii_uppercase().contains("CRS84") {
        return Some("EPSG:4326".into());
    }
    code.parse::<u32>().ok().map(|c| format!("EPSG:{c}"))
}

impl JsonSource {
    pub(crate) fn open(
        mut reader: Box<dyn BufRead + Send>,
        ctx: &mut Context,
        seq: bool,
    ) -> Result<(JsonSource, Mapping)> {
        let file = ctx.file.clone();
        let io = |e: std::io::Error| Error::Io { file: file.clone(), source: e };
        if reader.fill_buf().map_err(io)?.starts_with(b"\xEF\xBB\xBF") {
            reader.consume(3);
        }
        if !seq {
            Self::walk_to_features(reader.as_mut(), ctx)?;
        }
        let mut src = JsonSource {
            reader,
            seq,
            buf: Vec::new(),
            index: 0,
            pending: None,
            fields: HashMap::new(),
            cache: Cache::default(),
            done: false,
        };
        // The first feature shows the mapping and checks the `--map` names.
        let mut mapping = Mapping { position: Some("geometry".into()), ..Mapping::default() };
        match src.next_value(ctx) {
            Ok(Some(text)) => {
                if let Ok(value) = serde_json::from_slice::<Value>(&text) {
                    let names: Vec<String> = value
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    ctx.check_overrides(names.iter().map(String::as_str), "property in the first feature")?;
                    for name in &names {
                        match ctx.field_for(name) {
                            Some(f) if !src.fields.values().any(|v| *v == Some(f)) => {
                                mapping.fields.insert(f, name.clone());
                                src.fields.insert(name.clone(), Some(f));
                            }
                            _ => {
                                mapping.ignored.push(name.clone());
                                src.fields.insert(name.clone(), None);
                            }
                        }
                    }
                }
                let record = src.record(ctx, &text);
                src.pending = Some(record);
            }
            Ok(None) => src.done = true,
            Err(e) => return Err(e),
        }
        if let Some(crs) = &ctx.crs {
            mapping.position = Some(format!("geometry, {} converted to WGS 84", crs.name()));
        }
        Ok((src, mapping))
    }

    /// Reads `{ ... "features": [`, keeping `crs` and checking `type`.
    fn walk_to_features(reader: &mut dyn BufRead, ctx: &mut Context) -> Result<()> {
        let file = ctx.file.clone();
        let io = |e: std::io::Error| Error::Io { file: file.clone(), source: e };
        if skip(reader, &[]).map_err(io)? != Some(b'{') {
            return Err(not_geojson(ctx, "it does not start with '{'"));
        }
        reader.consume(1);
        let mut small = Vec::new();
        loop {
            match skip(reader, b",").map_err(io)? {
                Some(b'"') => {}
                Some(b'}') | None => return Err(not_geojson(ctx, "it has no \"features\" array")),
                Some(b) => return Err(not_geojson(ctx, &format!("unexpected {:?}", char::from(b)))),
            }
            small.clear();
            if read_value(reader, Some(&mut small), 1 << 16).map_err(io)? != Scan::Complete {
                return Err(not_geojson(ctx, "a member name never ends"));
            }
            let name: String =
                serde_json::from_slice(&small).map_err(|e| not_geojson(ctx, &format!("bad member name: {e}")))?;
            if skip(reader, &[]).map_err(io)? != Some(b':') {
                return Err(not_geojson(ctx, &format!("expected ':' after \"{name}\"")));
            }
            reader.consume(1);
            skip(reader, &[]).map_err(io)?;
            match name.as_str() {
                "features" => {
                    if skip(reader, &[]).map_err(io)? != Some(b'[') {
                        return Err(not_geojson(ctx, "\"features\" is not an array"));
                    }
                    reader.consume(1);
                    return Ok(());
                }
                "type" | "crs" => {
                    small.clear();
                    if read_value(reader, Some(&mut small), 1 << 20).map_err(io)? != Scan::Complete {
                        return Err(not_geojson(ctx, &format!("\"{name}\" never ends")));
                    }
                    let value: Value = serde_json::from_slice(&small)
                        .map_err(|e| not_geojson(ctx, &format!("\"{name}\" is not valid JSON: {e}")))?;
                    if name == "type" {
                        match value.as_str() {
                            Some("FeatureCollection") => {}
                            Some("Feature") => {
                                return Err(not_geojson(ctx, "it is a single Feature; put it in a FeatureCollection"));
                            }
                            other => return Err(not_geojson(ctx, &format!("its type is {other:?}"))),
                        }
                    } else if ctx.opts.crs.is_none() {
                        if let Some(code) = crs_member(&value) {
                            let crs = Reprojector::parse(&code).map_err(|e| Error::Mapping {
                                file: ctx.file.clone(),
                                reason: format!("the file's crs {code} cannot be converted ({e}); pass --crs"),
                            })?;
                            ctx.crs = Some(crs).filter(|c| !c.is_wgs84());
                        }
                    }
                }
                "geometry" | "properties" => {
                    return Err(not_geojson(ctx, "it is a single Feature; put it in a FeatureCollection"));
                }
                _ => {
                    if read_value(reader, None, usize::MAX).map_err(io)? != Scan::Complete {
                        return Err(not_geojson(ctx, &format!("\"{name}\" never ends")));
                    }
                }
            }
        }
    }

    /// The bytes of the next feature, or `None` at the end.
    fn next_value(&mut self, ctx: &Context) -> Result<Option<Vec<u8>>> {
        let io = |e: std::io::Error| Error::Io { file: ctx.file.clone(), source: e };
        let separators: &[u8] = if self.seq { b"\x1e," } else { b"," };
        match skip(self.reader.as_mut(), separators).map_err(io)? {
            None if !self.seq => Err(Error::Malformed {
                file: ctx.file.clone(),
                reason: format!("the file ends inside the features array, after feature {}", self.index),
            }),
            None => Ok(None),
            Some(b']') if !self.seq => Ok(None),
            Some(_) => {
                let mut buf = std::mem::take(&mut self.buf);
                buf.clear();
                match read_value(self.reader.as_mut(), Some(&mut buf), MAX_RECORD_BYTES).map_err(io)? {
                    Scan::Complete => Ok(Some(buf)),
                    Scan::Eof => Err(Error::Malformed {
                        file: ctx.file.clone(),
                        reason: format!("feature {} never ends (the file is cut short?)", self.index),
                    }),
                    Scan::TooLarge => Err(Error::Malformed {
                        file: ctx.file.clone(),
                        reason: format!("feature {} is larger than {} MiB", self.index, MAX_RECORD_BYTES >> 20),
                    }),
                }
            }
        }
    }

    pub(crate) fn next_record(&mut self, ctx: &Context) -> Option<Result<Record>> {
        if let Some(record) = self.pending.take() {
            return Some(Ok(record));
        }
        if self.done {
            return None;
        }
        match self.next_value(ctx) {
            Ok(Some(text)) => {
                let record = self.record(ctx, &text);
                self.buf = text;
                Some(Ok(record))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn record(&mut self, ctx: &Context, text: &[u8]) -> Record {
        let at = RecordAt::Feature(self.index);
        self.index += 1;
        match serde_json::from_slice::<Value>(text) {
            Ok(value) => self.feature(ctx, at, value, text),
            Err(e) => {
                let mut builder = Builder::new(ctx, at);
                builder.reject("feature", &String::from_utf8_lossy(text), format!("is not valid JSON: {e}"));
                let raw = RawRecord(RawKind::JsonText(String::from_utf8_lossy(text).into_owned()));
                builder.finish_unreadable(text, raw)
            }
        }
    }

    fn field_of(&mut self, ctx: &Context, name: &str) -> Option<Field> {
        if let Some(f) = self.fields.get(name) {
            return *f;
        }
        let f = ctx.field_for(name);
        if self.fields.len() < 10_000 {
            self.fields.insert(name.to_owned(), f);
        }
        f
    }

    fn feature(&mut self, ctx: &Context, at: RecordAt, value: Value, text: &[u8]) -> Record {
        let mut builder = Builder::new(ctx, at);
        if value.get("type").and_then(Value::as_str) != Some("Feature") {
            let found = value.get("type").map(Value::to_string).unwrap_or_else(|| "no type".into());
            builder.reject("type", &found, "is not a Feature");
        }
        let mut point = None;
        match value.get("geometry") {
            None | Some(Value::Null) => {}
            Some(g) => {
                let kind = g.get("type").and_then(Value::as_str).unwrap_or("");
                let coords = g.get("coordinates");
                let position = match (kind, coords) {
                    ("Point", Some(c)) => Some(c),
                    ("MultiPoint", Some(Value::Array(points))) if points.len() == 1 => points.first(),
                    _ => None,
                };
                match position.and_then(Value::as_array).map(Vec::as_slice) {
                    Some([x, y, ..]) => match (x.as_f64(), y.as_f64()) {
                        (Some(x), Some(y)) => point = Some((x, y)),
                        _ => builder.reject_position("geometry", &g.to_string(), "coordinates must be numbers [x, y]"),
                    },
                    _ if matches!(kind, "Point" | "MultiPoint") => builder.reject_position(
                        "geometry",
                        &g.to_string(),
                        "a tree is one point: coordinates [lon, lat]",
                    ),
                    _ => {
                        let kind = if kind.is_empty() { "no type" } else { kind };
                        builder.reject("geometry", kind, "only Point features are trees");
                        return builder.finish_unreadable(text, RawRecord(RawKind::Json(value)));
                    }
                }
            }
        }
        // Properties as text: numbers and booleans are written out.
        let mut texts: Vec<(Field, std::borrow::Cow<'_, str>)> = Vec::new();
        if let Some(props) = value.get("properties").and_then(Value::as_object) {
            for (name, v) in props {
                let Some(field) = self.field_of(ctx, name) else { continue };
                let text = match v {
                    Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
                    Value::Number(n) => std::borrow::Cow::Owned(n.to_string()),
                    Value::Bool(b) => std::borrow::Cow::Owned(b.to_string()),
                    Value::Null => continue,
                    other => {
                        builder.fail(field, &other.to_string(), "is not a text or a number");
                        continue;
                    }
                };
                texts.push((field, text));
            }
        }
        let mut values = Values::new();
        for (field, text) in &texts {
            values.offer(*field, text);
        }
        let id = match value.get("id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let geometry = point;
        let record =
            builder.finish(&mut self.cache, &values, geometry, id.as_deref(), RawRecord(RawKind::Json(Value::Null)));
        drop(texts);
        Record { raw: RawRecord(RawKind::Json(value)), ..record }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(input: &str) -> (Scan, String, String) {
        let mut reader = input.as_bytes();
        let mut out = Vec::new();
        let scan = read_value(&mut reader, Some(&mut out), 1 << 20).unwrap_or(Scan::Eof);
        (scan, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(reader).into_owned())
    }

    #[test]
    fn values_are_cut_where_they_end() {
        assert_eq!(
            scan(r#"{"a": "}", "b": [1, {"c": "\"]"}]}, {"next": 1}"#).1,
            r#"{"a": "}", "b": [1, {"c": "\"]"}]}"#
        );
        assert_eq!(scan(r#"{"a": 1}]"#).2, "]");
        assert_eq!(scan(r#""x\\" , 2"#).1, r#""x\\""#);
        assert_eq!(scan("12.5, 3").1, "12.5");
        assert_eq!(scan("true").0, Scan::Complete);
        assert_eq!(scan(r#"{"a": [1, 2"#).0, Scan::Eof);
        assert_eq!(scan(r#""open"#).0, Scan::Eof);
        let mut big = "[".repeat(10);
        big.push_str(&"1,".repeat(1 << 20));
        let mut reader = big.as_bytes();
        assert_eq!(read_value(&mut reader, Some(&mut Vec::new()), 1000).ok(), Some(Scan::TooLarge));
    }

    #[test]
    fn crs_members_name_epsg_codes() {
        let qgis = serde_json::json!({"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::9218"}});
        assert_eq!(crs_member(&qgis).as_deref(), Some("EPSG:9218"));
        let crs84 = serde_json::json!({"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}});
        assert_eq!(crs_member(&crs84).as_deref(), Some("EPSG:4326"));
        assert_eq!(crs_member(&serde_json::json!({"type": "name"})), None);
    }
}
