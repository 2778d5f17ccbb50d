//! GeoJSON FeatureCollections of points, read feature by feature (the
//! collection is never held in memory whole), and newline-delimited GeoJSON.

use std::io::{BufRead, Read};

use serde::Deserialize;
use serde_json::Value;

use super::{Builder, Context, Field, RawRecord, Record, RecordAt, content_key, field_of};
use crate::{Error, Result};

pub(crate) struct JsonSource {
    reader: Box<dyn BufRead + Send>,
    seq: bool,
    index: u64,
    line: u64,
    done: bool,
}

fn peek(reader: &mut dyn BufRead) -> std::io::Result<Option<u8>> {
    Ok(reader.fill_buf()?.first().copied())
}

fn skip_ws(reader: &mut dyn BufRead, also: &[u8]) -> std::io::Result<Option<u8>> {
    loop {
        match peek(reader)? {
            Some(b) if b.is_ascii_whitespace() || also.contains(&b) => reader.consume(1),
            other => return Ok(other),
        }
    }
}

impl JsonSource {
    pub(crate) fn open(mut reader: Box<dyn BufRead + Send>, ctx: &Context, seq: bool) -> Result<JsonSource> {
        let io = |e: std::io::Error| Error::Io { file: ctx.file.clone(), source: e };
        if reader.fill_buf().map_err(io)?.starts_with(&[0xEF, 0xBB, 0xBF]) {
            reader.consume(3);
        }
        if !seq {
            // Walk to the `"features": [` of the top-level object, skipping other members.
            if skip_ws(reader.as_mut(), &[]).map_err(io)? != Some(b'{') {
                return Err(not_geojson(ctx, "it does not start with '{'"));
            }
            reader.consume(1);
            loop {
                match skip_ws(reader.as_mut(), b",").map_err(io)? {
                    Some(b'"') => {}
                    _ => return Err(not_geojson(ctx, "no \"features\" array")),
                }
                let mut de = serde_json::Deserializer::from_reader(&mut reader);
                let name = String::deserialize(&mut de).map_err(|e| not_geojson(ctx, &e.to_string()))?;
                drop(de);
                if skip_ws(reader.as_mut(), &[]).map_err(io)? != Some(b':') {
                    return Err(not_geojson(ctx, "expected ':' after a member name"));
                }
                reader.consume(1);
                if name == "features" {
                    if skip_ws(reader.as_mut(), &[]).map_err(io)? != Some(b'[') {
                        return Err(not_geojson(ctx, "\"features\" is not an array"));
                    }
                    reader.consume(1);
                    break;
                }
                skip_ws(reader.as_mut(), &[]).map_err(io)?;
                let mut de = serde_json::Deserializer::from_reader(&mut reader);
                serde::de::IgnoredAny::deserialize(&mut de).map_err(|e| not_geojson(ctx, &e.to_string()))?;
            }
        }
        Ok(JsonSource { reader, seq, index: 0, line: 0, done: false })
    }

    fn next_value(&mut self, ctx: &Context) -> Result<Option<Value>> {
        let io = |e: std::io::Error| Error::Io { file: ctx.file.clone(), source: e };
        if self.seq {
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = (&mut self.reader).take(64 << 20).read_until(b'\n', &mut line).map_err(io)?;
                if n == 0 {
                    return Ok(None);
                }
                self.line += 1;
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{1e}');
                if text.is_empty() {
                    continue;
                }
                return serde_json::from_str(text).map(Some).map_err(|e| Error::Malformed {
                    file: ctx.file.clone(),
                    reason: format!("line {}: not a JSON feature: {e}", self.line),
                });
            }
        }
        match skip_ws(self.reader.as_mut(), b",").map_err(io)? {
            Some(b']') | None => Ok(None),
            Some(_) => {
                let mut de = serde_json::Deserializer::from_reader(&mut self.reader);
                Value::deserialize(&mut de).map(Some).map_err(|e| Error::Malformed {
                    file: ctx.file.clone(),
                    reason: format!("feature {}: not valid JSON: {e}", self.index),
                })
            }
        }
    }

    pub(crate) fn next_record(&mut self, ctx: &Context) -> Option<Result<Record>> {
        if self.done {
            return None;
        }
        let value = match self.next_value(ctx) {
            Ok(Some(v)) => v,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        let at = RecordAt::Feature(self.index);
        self.index += 1;
        Some(Ok(feature_record(ctx, at, value)))
    }
}

fn not_geojson(ctx: &Context, why: &str) -> Error {
    Error::Malformed { file: ctx.file.clone(), reason: format!("not a GeoJSON FeatureCollection: {why}") }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn feature_record(ctx: &Context, at: RecordAt, value: Value) -> Record {
    let mut builder = Builder::new(ctx, at);
    let mut point = None;
    match value.get("geometry") {
        Some(g) if g.get("type").and_then(Value::as_str) == Some("Point") => {
            match g.get("coordinates").and_then(Value::as_array).map(|c| c.as_slice()) {
                Some([x, y, ..]) => match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => point = Some((x, y)),
                    _ => builder.reject("geometry", &g["coordinates"].to_string(), "coordinates are not numbers"),
                },
                _ => builder.reject("geometry", &g.to_string(), "a Point needs [lon, lat] coordinates"),
            }
        }
        Some(Value::Null) | None => {}
        Some(g) => {
            let kind = g.get("type").and_then(Value::as_str).unwrap_or("unknown");
            builder.reject("geometry", kind, "only Point features are trees");
        }
    }
    if value.get("type").and_then(Value::as_str) != Some("Feature") {
        builder.reject("type", &value.get("type").map(|t| t.to_string()).unwrap_or_default(), "is not a Feature");
    }
    let props: Vec<(Field, String)> = value
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| {
            let mut found: Vec<(Field, String)> = Vec::new();
            for (name, v) in m {
                let field = ctx
                    .overrides
                    .iter()
                    .find(|(_, column)| column == name)
                    .map(|(f, _)| *f)
                    .or_else(|| field_of(name).filter(|f| !ctx.overrides.iter().any(|(o, _)| o == f)));
                if let (Some(field), Some(text)) = (field, text_of(v)) {
                    if !found.iter().any(|(f, _)| *f == field) {
                        found.push((field, text));
                    }
                }
            }
            found
        })
        .unwrap_or_default();
    let get = |field: Field| props.iter().find(|(f, _)| *f == field).map(|(_, t)| t.as_str());
    let key = value.get("id").and_then(text_of);
    let serialized = || content_key(&[value.to_string().as_bytes()]);
    let content = serialized();
    builder.build(&get, point, key, || content, RawRecord::Json(value.clone()))
}
