//! GPX 1.1 waypoints and KML placemarks, streamed with quick-xml.
//!
//! A waypoint's values are its child elements (`ele`, `time`, `name`,
//! `desc`, `cmt`, `sym`, `type`) and the leaves of its `extensions`; a
//! placemark's are its `name`, `description`, `TimeStamp/when` and its
//! `ExtendedData` (`Data`/`value` and `SchemaData`/`SimpleData`). They are
//! mapped to fields by name like CSV columns. A `desc`, `cmt` or
//! `description` may also carry `key: value` pairs, one per line or
//! separated by `;` or `|` (`Giống: Ri6; Năm trồng: 2019; Tình trạng: tốt`),
//! as volunteers type them on a handheld unit.
//!
//! Each record keeps its element as read, so a reject file gets it back
//! with the error added.

use std::collections::HashMap;
use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::build::{Builder, Cache, Values};
use super::{Context, Field, MAX_RECORD_BYTES, Mapping, RawKind, RawRecord, Record, RecordAt};
use crate::{Error, Result};

/// A waypoint or placemark as read, with where a reject writer puts the error.
#[derive(Debug, Clone)]
pub(crate) struct XmlRaw {
    /// The element, re-serialised from the events read (text kept escaped as in the file).
    pub(crate) xml: String,
    /// Where to insert the error element.
    pub(crate) insert_at: usize,
    /// KML: `insert_at` is inside an `ExtendedData`.
    pub(crate) in_extended_data: bool,
    /// GPX: the byte range of the `<desc>` content and its text.
    pub(crate) desc: Option<(usize, usize, String)>,
}

/// GPX children that come after `desc` in the schema's order.
const AFTER_DESC: [&str; 12] =
    ["src", "link", "sym", "type", "fix", "sat", "hdop", "vdop", "pdop", "ageofdgpsdata", "dgpsid", "extensions"];

/// KML geometries (a placemark's `ExtendedData` comes before them).
const KML_GEOMETRIES: [&str; 8] =
    ["Point", "LineString", "LinearRing", "Polygon", "MultiGeometry", "Model", "Track", "MultiTrack"];

/// One waypoint or placemark being read.
#[derive(Default)]
struct Item {
    lat: String,
    lon: String,
    /// KML: the `<coordinates>` of a Point.
    coordinates: Option<String>,
    /// KML: a geometry other than a Point.
    other_geometry: Option<String>,
    values: Vec<(String, String)>,
    raw: String,
    insert_at: Option<usize>,
    in_extended_data: bool,
    desc_start: Option<usize>,
    desc: Option<(usize, usize, String)>,
}

fn attr(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .map(|a| a.unescape_value().map_or_else(|_| String::from_utf8_lossy(&a.value).into_owned(), |v| v.into_owned()))
}

fn local(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

/// `key: value` pairs in free text (lines, or `;`/`|` separated); lines a
/// reject file added (`error: ...`) are skipped.
fn pairs(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("error:") && !line.starts_with("warning:"))
        .flat_map(|line| line.split([';', '|']))
        .map(str::trim)
        .filter_map(|part| {
            let i = part.find([':', '='])?;
            let (key, value) = (part[..i].trim(), part[i + 1..].trim());
            (!key.is_empty() && !value.is_empty() && key.chars().count() <= 40).then_some((key, value))
        })
}

/// The input as quick-xml reads it, with a bound on the text between two
/// markup characters (`<`, `>`): quick-xml holds a whole text node or tag in
/// memory, so a file that is one huge text node is an error instead.
struct Guarded {
    inner: Box<dyn BufRead + Send>,
    since_markup: usize,
    too_large: bool,
}

impl std::io::Read for Guarded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.fill_buf()?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.inner.fill_buf()?[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Guarded {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.too_large {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("more than {} MiB of text without markup", MAX_RECORD_BYTES >> 20),
            ));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            let seen = &buf[..amt.min(buf.len())];
            match seen.iter().rposition(|&b| b == b'<' || b == b'>') {
                Some(i) => self.since_markup = seen.len() - i - 1,
                None => self.since_markup += seen.len(),
            }
            self.too_large |= self.since_markup > MAX_RECORD_BYTES;
        }
        self.inner.consume(amt);
    }
}

pub(crate) struct XmlSource {
    reader: Reader<Guarded>,
    kml: bool,
    buf: Vec<u8>,
    index: u64,
    /// The document's root start tag as written (namespaces for the reject file).
    root: Option<String>,
    pending: Option<Record>,
    fields: HashMap<String, Option<Field>>,
    cache: Cache,
    done: bool,
}

impl XmlSource {
    pub(crate) fn open(reader: Box<dyn BufRead + Send>, ctx: &Context, kml: bool) -> Result<(XmlSource, Mapping)> {
        let mut reader = Reader::from_reader(Guarded { inner: reader, since_markup: 0, too_large: false });
        reader.config_mut().trim_text(true);
        let mut src = XmlSource {
            reader,
            kml,
            buf: Vec::new(),
            index: 0,
            root: None,
            pending: None,
            fields: HashMap::new(),
            cache: Cache::default(),
            done: false,
        };
        let position = if kml { "Placemark Point coordinates" } else { "<wpt lat lon>" };
        let mut mapping = Mapping { position: Some(position.into()), ..Mapping::default() };
        match src.next_item(ctx)? {
            Some(item) => {
                let names: Vec<&str> = item.values.iter().map(|(n, _)| n.as_str()).collect();
                ctx.check_overrides(names.iter().copied(), if kml { "placemark value" } else { "waypoint value" })?;
                let free_text: &[&str] = if kml { &["description"] } else { &["desc", "cmt"] };
                for (name, text) in &item.values {
                    let mut used = false;
                    if let Some(f) = src.field_of(ctx, name) {
                        mapping.fields.entry(f).or_insert_with(|| name.clone());
                        used = true;
                    } else if free_text.contains(&name.as_str()) {
                        for (key, _) in pairs(text) {
                            if let Some(f) = src.field_of(ctx, key) {
                                mapping.fields.entry(f).or_insert_with(|| format!("{name} \"{key}: ...\""));
                                used = true;
                            }
                        }
                    }
                    if !used && !mapping.ignored.contains(name) {
                        mapping.ignored.push(name.clone());
                    }
                }
                let record = src.record(ctx, item);
                src.pending = Some(record);
            }
            None => src.done = true,
        }
        Ok((src, mapping))
    }

    /// The root start tag, for the reject file.
    pub(crate) fn root_tag(&self) -> Option<String> {
        self.root.clone()
    }

    fn field_of(&mut self, ctx: &Context, name: &str) -> Option<Field> {
        if let Some(f) = self.fields.get(name) {
            return *f;
        }
        // Positions come from the geometry, not from values that happen to be named like coordinates.
        let f = ctx
            .field_for(name)
            .filter(|f| !matches!(f, Field::Lat | Field::Lon | Field::X | Field::Y | Field::Geopoint));
        if self.fields.len() < 10_000 {
            self.fields.insert(name.to_owned(), f);
        }
        f
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
        // Element names below the item, and the name of the KML Data/SimpleData being read.
        let mut path: Vec<String> = Vec::new();
        let mut data_name: Option<String> = None;
        // Depth at which an old `error` Data element (from a reject file) is being skipped.
        let mut skipping: Option<usize> = None;
        loop {
            self.buf.clear();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(event) => event,
                Err(e) => return Err(self.malformed(ctx, e)),
            };
            let empty = matches!(event, Event::Empty(_));
            if item.as_ref().is_some_and(|it| it.raw.len() > MAX_RECORD_BYTES) {
                let what = if self.kml { "placemark" } else { "waypoint" };
                return Err(self.malformed(ctx, format!("a {what} larger than {} MiB", MAX_RECORD_BYTES >> 20)));
            }
            let Some(it) = item.as_mut() else {
                // Outside any item: find the root and the next item.
                match event {
                    Event::Eof => return Ok(None),
                    Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == item_tag => {
                        let mut it = Item::default();
                        if !self.kml {
                            it.lat = attr(&e, b"lat").unwrap_or_default();
                            it.lon = attr(&e, b"lon").unwrap_or_default();
                        }
                        it.raw.push('<');
                        it.raw.push_str(&String::from_utf8_lossy(&e));
                        it.raw.push('>');
                        if empty {
                            // `<wpt lat=".." lon=".."/>`: nothing but its position.
                            it.insert_at = Some(it.raw.len());
                            it.raw.push_str(&format!("</{}>", String::from_utf8_lossy(e.name().as_ref())));
                            return Ok(Some(it));
                        }
                        item = Some(it);
                        path.clear();
                    }
                    Event::Start(e) if self.root.is_none() => {
                        self.root = Some(format!("<{}>", String::from_utf8_lossy(&e)));
                    }
                    _ => {}
                }
                continue;
            };
            if let Some(depth) = skipping {
                match event {
                    Event::Start(_) => path.push(String::new()),
                    Event::End(_) => {
                        path.pop();
                        if path.len() < depth {
                            skipping = None;
                            data_name = None;
                        }
                    }
                    Event::Eof => return Err(self.malformed(ctx, "the file ends inside a placemark")),
                    _ => {}
                }
                continue;
            }
            match event {
                Event::Eof => {
                    let what = if self.kml { "placemark" } else { "waypoint" };
                    return Err(self.malformed(ctx, format!("the file ends inside a {what}")));
                }
                Event::Start(e) | Event::Empty(e) => {
                    let name = local(&e);
                    if name == "Data" || name == "SimpleData" {
                        data_name = attr(&e, b"name");
                        if name == "Data" && data_name.as_deref() == Some("error") {
                            if !empty {
                                path.push(name);
                                skipping = Some(path.len());
                            }
                            continue;
                        }
                    }
                    let direct = path.is_empty();
                    if self.kml {
                        if KML_GEOMETRIES.contains(&name.as_str()) && name != "Point" {
                            it.other_geometry.get_or_insert_with(|| name.clone());
                        }
                        if direct && it.insert_at.is_none() && KML_GEOMETRIES.contains(&name.as_str()) {
                            it.insert_at = Some(it.raw.len());
                        }
                    } else if direct && it.insert_at.is_none() && AFTER_DESC.contains(&name.as_str()) {
                        it.insert_at = Some(it.raw.len());
                    }
                    it.raw.push('<');
                    it.raw.push_str(&String::from_utf8_lossy(&e));
                    it.raw.push('>');
                    if self.kml && direct && name == "ExtendedData" && !it.in_extended_data {
                        it.insert_at = Some(it.raw.len());
                        it.in_extended_data = true;
                    }
                    if !self.kml && direct && name == "desc" {
                        it.desc_start = Some(it.raw.len());
                    }
                    if empty {
                        if !self.kml && direct && name == "desc" {
                            let at = it.raw.len();
                            it.desc = Some((at, at, String::new()));
                        }
                        it.raw.push_str(&format!("</{}>", String::from_utf8_lossy(e.name().as_ref())));
                    } else {
                        path.push(name);
                    }
                }
                Event::End(e) => {
                    if path.is_empty() {
                        if e.local_name().as_ref() == item_tag {
                            if it.insert_at.is_none() {
                                it.insert_at = Some(it.raw.len());
                            }
                            it.raw.push_str(&format!("</{}>", String::from_utf8_lossy(e.name().as_ref())));
                            return Ok(item);
                        }
                        // A stray end tag: quick-xml reports mismatches itself; ignore.
                        continue;
                    }
                    let name = path.pop().unwrap_or_default();
                    if !self.kml && path.is_empty() && name == "desc" {
                        if let Some(start) = it.desc_start.take() {
                            let text = it
                                .values
                                .iter()
                                .rev()
                                .find(|(n, _)| n == "desc")
                                .map(|(_, v)| v.clone())
                                .unwrap_or_default();
                            it.desc = Some((start, it.raw.len(), text));
                        }
                    }
                    if name == "Data" || name == "SimpleData" {
                        data_name = None;
                    }
                    it.raw.push_str(&format!("</{}>", String::from_utf8_lossy(e.name().as_ref())));
                }
                Event::Text(t) => {
                    it.raw.push_str(&String::from_utf8_lossy(&t));
                    let text =
                        t.unescape().map_or_else(|_| String::from_utf8_lossy(&t).into_owned(), |c| c.into_owned());
                    take_text(self.kml, it, &path, data_name.as_deref(), text);
                }
                Event::CData(c) => {
                    it.raw.push_str("<![CDATA[");
                    it.raw.push_str(&String::from_utf8_lossy(&c));
                    it.raw.push_str("]]>");
                    let text = String::from_utf8_lossy(&c).into_owned();
                    take_text(self.kml, it, &path, data_name.as_deref(), text);
                }
                _ => {}
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
        match self.next_item(ctx) {
            Ok(Some(item)) => Some(Ok(self.record(ctx, item))),
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

    fn record(&mut self, ctx: &Context, item: Item) -> Record {
        let at = RecordAt::Feature(self.index);
        self.index += 1;
        let mut builder = Builder::new(ctx, at);
        let mut point = None;
        if self.kml {
            match (&item.coordinates, &item.other_geometry) {
                (Some(c), _) => {
                    let first = c.split_whitespace().next().unwrap_or("");
                    let mut parts = first.split(',').map(str::trim);
                    match (parts.next().map(str::parse::<f64>), parts.next().map(str::parse::<f64>)) {
                        (Some(Ok(x)), Some(Ok(y))) if x.is_finite() && y.is_finite() => point = Some((x, y)),
                        _ => builder.reject_position("coordinates", c, "is not lon,lat[,altitude]"),
                    }
                }
                (None, Some(kind)) => {
                    builder.reject("geometry", kind, "only Point placemarks are trees");
                    let raw = XmlRaw {
                        insert_at: item.insert_at.unwrap_or(item.raw.len()).min(item.raw.len()),
                        in_extended_data: item.in_extended_data,
                        desc: None,
                        xml: item.raw,
                    };
                    let content = raw.xml.clone();
                    return builder.finish_unreadable(content.as_bytes(), RawRecord(RawKind::Xml(Box::new(raw))));
                }
                (None, None) => builder.reject_position("geometry", "", "the placemark has no Point"),
            }
        } else {
            match (item.lon.trim().parse::<f64>(), item.lat.trim().parse::<f64>()) {
                (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => point = Some((x, y)),
                _ => builder.reject_position(
                    "location",
                    &format!("lat=\"{}\" lon=\"{}\"", item.lat, item.lon),
                    "the waypoint's lat and lon must be numbers",
                ),
            }
        }
        let mut mapped: Vec<(Field, &str)> = Vec::new();
        for (name, text) in &item.values {
            if let Some(f) = self.field_of(ctx, name) {
                mapped.push((f, text));
            }
        }
        let free_text: &[&str] = if self.kml { &["description"] } else { &["desc", "cmt"] };
        let mut from_pairs: Vec<(Field, &str)> = Vec::new();
        for (name, text) in &item.values {
            if free_text.contains(&name.as_str()) && ctx.override_for(name).is_none() {
                for (key, value) in pairs(text) {
                    if let Some(f) = self.field_of(ctx, key) {
                        from_pairs.push((f, value));
                    }
                }
            }
        }
        let mut values = Values::new();
        for (f, text) in mapped.iter().chain(&from_pairs) {
            values.offer(*f, text);
        }
        let raw = XmlRaw {
            insert_at: item.insert_at.unwrap_or(item.raw.len()).min(item.raw.len()),
            in_extended_data: item.in_extended_data,
            desc: item.desc.clone(),
            xml: item.raw.clone(),
        };
        builder.finish(&mut self.cache, &values, point, None, RawRecord(RawKind::Xml(Box::new(raw))))
    }
}

fn take_text(kml: bool, item: &mut Item, path: &[String], data_name: Option<&str>, text: String) {
    let Some(leaf) = path.last() else { return };
    if kml {
        match leaf.as_str() {
            "coordinates" if path.iter().any(|p| p == "Point") => {
                item.coordinates.get_or_insert(text);
            }
            "value" | "SimpleData" => {
                if let Some(name) = data_name {
                    item.values.push((name.to_owned(), text));
                }
            }
            "name" | "description" if path.len() == 1 => item.values.push((leaf.clone(), text)),
            "when" if path.len() == 2 && path[0] == "TimeStamp" => item.values.push(("TimeStamp".into(), text)),
            _ => {}
        }
    } else if path.len() == 1 || path.first().is_some_and(|p| p == "extensions") {
        item.values.push((leaf.clone(), text));
    }
}

#[cfg(test)]
mod tests {
    use super::pairs;

    #[test]
    fn free_text_pairs() {
        let found: Vec<_> =
            pairs("Giống: Ri6; Năm trồng = 2019 | Tình trạng: tốt\nghi chú\nerror: lat 108: bad").collect();
        assert_eq!(found, vec![("Giống", "Ri6"), ("Năm trồng", "2019"), ("Tình trạng", "tốt")]);
        assert_eq!(pairs("").count(), 0);
        assert_eq!(pairs(": x; y:").count(), 0);
    }
}
