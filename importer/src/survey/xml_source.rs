//! GPX 1.1 waypoints and KML placemarks, streamed with quick-xml.
//!
//! A waypoint's child elements (`ele`, `time`, `name`, `desc`, and the leaves
//! of its `extensions`) and a placemark's `name`, `description` and
//! `ExtendedData` (`Data`/`value` and `SchemaData`/`SimpleData`) are its
//! values, mapped to fields by name like CSV columns.

use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{Builder, Context, Field, RawRecord, Record, RecordAt, content_key, field_of};
use crate::{Error, Result};

pub(crate) struct XmlSource {
    reader: Reader<Box<dyn BufRead + Send>>,
    kml: bool,
    buf: Vec<u8>,
    index: u64,
    done: bool,
}

/// A waypoint or placemark being read.
#[derive(Default)]
struct Item {
    lat: String,
    lon: String,
    values: Vec<(String, String)>,
    /// KML: the `<coordinates>` of a Point; `Some("")` when it has another geometry.
    coordinates: Option<String>,
    other_geometry: Option<String>,
}

fn attr(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

fn local(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

impl XmlSource {
    pub(crate) fn new(reader: Box<dyn BufRead + Send>, kml: bool) -> XmlSource {
        let mut reader = Reader::from_reader(reader);
        reader.config_mut().trim_text(true);
        XmlSource { reader, kml, buf: Vec::new(), index: 0, done: false }
    }

    fn malformed(&self, ctx: &Context, e: impl std::fmt::Display) -> Error {
        Error::Malformed {
            file: ctx.file.clone(),
            reason: format!("byte {}: not well-formed XML: {e}", self.reader.buffer_position()),
        }
    }

    /// Reads up to the end of the next waypoint or placemark.
    fn next_item(&mut self, ctx: &Context) -> Result<Option<Item>> {
        let item_tag: &[u8] = if self.kml { b"Placemark" } else { b"wpt" };
        let mut item: Option<Item> = None;
        // Path below the item, and the name of the KML Data/SimpleData being read.
        let mut path: Vec<String> = Vec::new();
        let mut data_name: Option<String> = None;
        loop {
            self.buf.clear();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(ev) => ev.into_owned(),
                Err(e) => return Err(self.malformed(ctx, e)),
            };
            match event {
                Event::Eof => {
                    if item.is_some() {
                        return Err(self.malformed(ctx, "the file ends inside a waypoint or placemark"));
                    }
                    return Ok(None);
                }
                Event::Start(e) if item.is_none() && e.local_name().as_ref() == item_tag => {
                    let mut it = Item::default();
                    if !self.kml {
                        it.lat = attr(&e, b"lat").unwrap_or_default();
                        it.lon = attr(&e, b"lon").unwrap_or_default();
                    }
                    item = Some(it);
                    path.clear();
                }
                // `<wpt lat=".." lon=".."/>`: a waypoint with nothing but its position.
                Event::Empty(e) if item.is_none() && !self.kml && e.local_name().as_ref() == item_tag => {
                    let lat = attr(&e, b"lat").unwrap_or_default();
                    let lon = attr(&e, b"lon").unwrap_or_default();
                    return Ok(Some(Item { lat, lon, ..Item::default() }));
                }
                Event::Start(_) | Event::Empty(_) if item.is_none() => {}
                Event::Start(e) => {
                    let name = local(&e);
                    if name == "Data" || name == "SimpleData" {
                        data_name = attr(&e, b"name");
                    }
                    if self.kml && matches!(name.as_str(), "LineString" | "Polygon" | "MultiGeometry" | "LinearRing") {
                        if let Some(it) = item.as_mut() {
                            it.other_geometry = Some(name.clone());
                        }
                    }
                    path.push(name);
                }
                Event::Empty(_) => {}
                Event::Text(t) => {
                    let text = t.unescape().map_err(|e| self.malformed(ctx, e))?.into_owned();
                    self.take_text(item.as_mut(), &path, data_name.as_deref(), text);
                }
                Event::CData(c) => {
                    let text = String::from_utf8_lossy(&c).into_owned();
                    self.take_text(item.as_mut(), &path, data_name.as_deref(), text);
                }
                Event::End(e) => {
                    if e.local_name().as_ref() == item_tag && path.is_empty() {
                        return Ok(item);
                    }
                    let name = path.pop().unwrap_or_default();
                    if name == "Data" || name == "SimpleData" {
                        data_name = None;
                    }
                }
                _ => {}
            }
        }
    }

    fn take_text(&self, item: Option<&mut Item>, path: &[String], data_name: Option<&str>, text: String) {
        let Some(item) = item else { return };
        let Some(leaf) = path.last() else { return };
        if self.kml {
            match leaf.as_str() {
                "coordinates" if path.iter().any(|p| p == "Point") => item.coordinates = Some(text),
                "value" | "SimpleData" => {
                    if let Some(name) = data_name {
                        item.values.push((name.to_owned(), text));
                    }
                }
                "name" | "description" if path.len() == 1 => item.values.push((leaf.clone(), text)),
                _ => {}
            }
        } else {
            item.values.push((leaf.clone(), text));
        }
    }

    pub(crate) fn next_record(&mut self, ctx: &Context) -> Option<Result<Record>> {
        if self.done {
            return None;
        }
        let item = match self.next_item(ctx) {
            Ok(Some(item)) => item,
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
        Some(Ok(self.record(ctx, at, item)))
    }

    fn record(&self, ctx: &Context, at: RecordAt, mut item: Item) -> Record {
        let mut builder = Builder::new(ctx, at);
        let mut point = None;
        if self.kml {
            match (&item.coordinates, &item.other_geometry) {
                (Some(c), _) => {
                    let first = c.split_whitespace().next().unwrap_or("");
                    let mut parts = first.split(',');
                    let lon = parts.next().unwrap_or("").trim().to_owned();
                    let lat = parts.next().unwrap_or("").trim().to_owned();
                    match (lon.parse::<f64>(), lat.parse::<f64>()) {
                        (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => point = Some((x, y)),
                        _ => builder.reject("coordinates", c, "is not lon,lat[,alt]"),
                    }
                    item.lon = lon;
                    item.lat = lat;
                }
                (None, Some(kind)) => builder.reject("geometry", kind, "only Point placemarks are trees"),
                (None, None) => builder.reject("geometry", "", "the placemark has no Point"),
            }
        } else {
            match (item.lon.trim().parse::<f64>(), item.lat.trim().parse::<f64>()) {
                (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => point = Some((x, y)),
                _ => builder.reject(
                    "location",
                    &format!("lat={} lon={}", item.lat, item.lon),
                    "lat and lon attributes must be numbers",
                ),
            }
        }
        let mapped: Vec<(Field, String)> = {
            let mut found: Vec<(Field, String)> = Vec::new();
            for (name, text) in &item.values {
                let field = ctx
                    .overrides
                    .iter()
                    .find(|(_, column)| column == name)
                    .map(|(f, _)| *f)
                    .or_else(|| field_of(name).filter(|f| !ctx.overrides.iter().any(|(o, _)| o == f)));
                // GPX/KML positions come from the geometry, not from values that happen to be named lat/lon.
                if let Some(field) = field.filter(|f| !matches!(f, Field::Lat | Field::Lon | Field::X | Field::Y)) {
                    if !found.iter().any(|(f, _)| *f == field) {
                        found.push((field, text.clone()));
                    }
                }
            }
            found
        };
        let get = |field: Field| mapped.iter().find(|(f, _)| *f == field).map(|(_, t)| t.as_str());
        let mut parts: Vec<&[u8]> = vec![item.lat.as_bytes(), item.lon.as_bytes()];
        for (n, v) in &item.values {
            parts.push(n.as_bytes());
            parts.push(v.as_bytes());
        }
        let content = content_key(&parts);
        let raw = RawRecord::Xml { lon: item.lon.clone(), lat: item.lat.clone(), values: item.values.clone() };
        builder.build(&get, point, None, || content, raw)
    }
}
