//! Delimited text: `,` `;` or tab, with or without a BOM, CRLF or LF,
//! quoted fields with separators and newlines inside; KoboToolbox and ODK
//! Central exports are CSV with their own column names.

use std::collections::BTreeMap;
use std::io::BufRead;

use super::{Builder, Context, Field, Mapping, RawRecord, Record, RecordAt, content_key, field_of};
use crate::{Error, Result};

pub(crate) struct CsvSource {
    reader: csv::Reader<Box<dyn BufRead + Send>>,
    record: csv::ByteRecord,
    /// Column index per field.
    columns: Vec<(Field, usize)>,
    key_column: Option<usize>,
    header: csv::ByteRecord,
    delimiter: u8,
    bom: bool,
    crlf: bool,
    done: bool,
}

/// The separator of the header line: the most frequent of `,` `;` tab outside quotes.
fn sniff(line: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            b'\n' if !quoted => break,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    [b',', b';', b'\t'][best]
}

impl CsvSource {
    pub(crate) fn open(mut reader: Box<dyn BufRead + Send>, ctx: &Context) -> Result<(CsvSource, Mapping)> {
        let file = &ctx.file;
        let io = |e: std::io::Error| Error::Io { file: file.clone(), source: e };
        let head = reader.fill_buf().map_err(io)?;
        let bom = head.starts_with(&[0xEF, 0xBB, 0xBF]);
        if bom {
            reader.consume(3);
        }
        let head = reader.fill_buf().map_err(io)?;
        let first_line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
        let delimiter = sniff(head);
        let crlf = first_line_end > 0 && head.get(first_line_end - 1) == Some(&b'\r');
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(true)
            .buffer_capacity(1 << 16)
            .from_reader(reader);
        let header = reader.byte_headers().map_err(|e| csv_error(file, e))?.clone();
        let names: Vec<String> = header.iter().map(|h| String::from_utf8_lossy(h).trim().to_owned()).collect();
        if names.iter().all(|n| n.is_empty()) {
            return Err(Error::Empty { file: file.clone() });
        }

        // Detected fields (first column wins), then the --map overrides.
        let mut by_field: BTreeMap<Field, usize> = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            if let Some(field) = field_of(name) {
                by_field.entry(field).or_insert(i);
            }
        }
        for (field, column) in &ctx.overrides {
            let wanted = crate::text::fold(column);
            let Some(i) = names
                .iter()
                .position(|n| n == column)
                .or_else(|| names.iter().position(|n| crate::text::fold(n) == wanted))
            else {
                return Err(Error::Mapping {
                    file: file.clone(),
                    reason: format!(
                        "--map {}={column}: no such column (the header has: {})",
                        field.name(),
                        names.join(", ")
                    ),
                });
            };
            by_field.retain(|_, c| *c != i);
            by_field.insert(*field, i);
        }
        // A raw geopoint is only needed when there are no separate coordinate columns.
        if by_field.contains_key(&Field::Lat) || by_field.contains_key(&Field::X) {
            by_field.remove(&Field::Geopoint);
        }
        let has_position = by_field.contains_key(&Field::Geopoint)
            || (by_field.contains_key(&Field::Lat) && by_field.contains_key(&Field::Lon))
            || (by_field.contains_key(&Field::X) && by_field.contains_key(&Field::Y));
        if !has_position {
            return Err(Error::Mapping {
                file: file.clone(),
                reason: format!(
                    "no coordinate columns found (expected lat and lon, x and y with --crs, or a Kobo/ODK geopoint; \
                     use --map lat=COLUMN --map lon=COLUMN); the header has: {}",
                    names.join(", ")
                ),
            });
        }
        if (by_field.contains_key(&Field::X) && !by_field.contains_key(&Field::Lat))
            && ctx.opts.crs.as_ref().is_none_or(|c| c.is_geographic())
        {
            return Err(Error::Mapping {
                file: file.clone(),
                reason: "x and y columns need the coordinate system they are in: pass --crs EPSG:NNNN \
                         (e.g. EPSG:9218 for VN-2000 / TM-3 108°30' in Đắk Lắk)"
                    .into(),
            });
        }
        let mapping = Mapping {
            fields: by_field.iter().map(|(f, &i)| (*f, names[i].clone())).collect(),
            ignored: names
                .iter()
                .enumerate()
                .filter(|(i, n)| !n.is_empty() && !by_field.values().any(|c| c == i))
                .map(|(_, n)| n.clone())
                .collect(),
        };
        let key_column = by_field.get(&Field::ExternalId).copied();
        let src = CsvSource {
            reader,
            record: csv::ByteRecord::new(),
            columns: by_field.into_iter().collect(),
            key_column,
            header,
            delimiter,
            bom,
            crlf,
            done: false,
        };
        Ok((src, mapping))
    }

    /// Header, separator, BOM and line ending for the reject file.
    pub(crate) fn header_for_rejects(&self) -> super::reject::CsvShape {
        super::reject::CsvShape {
            header: self.header.clone(),
            delimiter: self.delimiter,
            bom: self.bom,
            crlf: self.crlf,
        }
    }

    pub(crate) fn next_record(&mut self, ctx: &Context) -> Option<Result<Record>> {
        loop {
            if self.done {
                return None;
            }
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(csv_error(&ctx.file, e)));
                }
                Ok(true) => {}
            }
            let record = &self.record;
            if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                continue; // blank line
            }
            // The csv crate reports a record from where the previous one ended: after
            // its `\r` but before its `\n` in a CRLF file, so one line early there.
            let line = record.position().map_or(0, csv::Position::line) + u64::from(self.crlf);
            let mut builder = Builder::new(ctx, RecordAt::Line(line));
            if record.len() > self.header.len() {
                builder.reject(
                    "row",
                    "",
                    format!(
                        "has {} fields but the header has {} (a value containing the separator must be quoted)",
                        record.len(),
                        self.header.len()
                    ),
                );
            }
            let mut bad_utf8 = None;
            // Values that are not UTF-8 are rejected below; here they read as missing.
            let get = |field: Field| -> Option<&str> {
                let (_, i) = self.columns.iter().find(|(f, _)| *f == field)?;
                std::str::from_utf8(record.get(*i)?).ok()
            };
            for (field, i) in &self.columns {
                if let Some(bytes) = record.get(*i) {
                    if std::str::from_utf8(bytes).is_err() {
                        bad_utf8 = Some((field.name(), String::from_utf8_lossy(bytes).into_owned()));
                    }
                }
            }
            if let Some((name, value)) = bad_utf8 {
                builder.reject(name, &value, "is not UTF-8 text (save the file as \"CSV UTF-8\")");
            }
            let key = self.key_column.and_then(|i| record.get(i)).map(|b| String::from_utf8_lossy(b).trim().to_owned());
            let key = key.filter(|k| !k.is_empty());
            let parts: Vec<&[u8]> = record.iter().collect();
            let built = builder.build(&get, None, key, || content_key(&parts), RawRecord::Csv(record.clone()));
            return Some(Ok(built));
        }
    }
}

fn csv_error(file: &str, e: csv::Error) -> Error {
    let line = e.position().map(csv::Position::line);
    match e.into_kind() {
        csv::ErrorKind::Io(source) => Error::Io { file: file.to_owned(), source },
        other => Error::Malformed {
            file: file.to_owned(),
            reason: match line {
                Some(line) => format!("line {line}: {other:?}"),
                None => format!("{other:?}"),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::sniff;

    #[test]
    fn sniffs_the_separator_outside_quotes() {
        assert_eq!(sniff(b"lat,lon,cultivar\n1;2;3"), b',');
        assert_eq!(sniff(b"lat;lon;\"a,b,c,d\"\n"), b';');
        assert_eq!(sniff(b"lat\tlon\tcultivar\r\n"), b'\t');
        assert_eq!(sniff(b"lat"), b',');
    }
}
