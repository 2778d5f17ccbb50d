//! QR codes and label sheets of `tiles::print`, checked by decoding what they draw: PNGs with
//! rqrr, SVG paths parsed back into module matrices, and PDF pages rasterised from their content
//! streams and decoded with rqrr; PDF text read back through the ToUnicode map.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Read as _;

use quick_xml::events::Event;
use tiles::print::{
    EcLevel, Label, LabelKind, PrintError, QUIET_ZONE, QrMatrix, SheetOptions, encode, layout, qr_png, qr_svg,
    sheet_pdf, sheet_svg,
};

// ---------------------------------------------------------------------------------------------
// Fixtures

/// 86 base64url characters, like an Ed25519 signature (64 bytes) in GS1 AI 8030.
fn signature(seed: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    (0..86)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            char::from(ALPHABET[(state >> 58) as usize])
        })
        .collect()
}

/// A 7-character tag code.
fn code(i: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut n = i * 7_919 + 1_234_567;
    (0..7)
        .map(|_| {
            let c = ALPHABET[n % 32];
            n /= 32;
            char::from(c)
        })
        .collect()
}

/// A signed tree URL (GS1 Digital Link, location extension): 151 characters.
fn tree_url(i: usize) -> String {
    format!("https://orchardmap.example.vn/414/9520123456788/254/{}?8030={}", code(i), signature(i as u64))
}

/// A signed harvest-lot URL on a local server: 124 characters.
fn lot_url(i: usize) -> String {
    format!("http://127.0.0.1:8080/l/L{}?8030={}", code(i), signature(1000 + i as u64))
}

fn tree_labels(n: usize) -> Vec<Label> {
    (0..n)
        .map(|i| Label {
            url: tree_url(i),
            code: code(i),
            lines: vec!["Sầu riêng Ri6".into(), format!("Vườn ông Y Blang Niê, Đắk Lắk, hàng {}", i / 10 + 1)],
        })
        .collect()
}

fn tree_opts() -> SheetOptions {
    SheetOptions {
        kind: LabelKind::TreeTag, ec: None, title: Some("Vườn ông Y Blang Niê — Đắk Lắk".into())
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding helpers

/// Every QR code rqrr finds in a grayscale bitmap, decoded.
fn rqrr_decode(width: usize, height: usize, gray: &[u8]) -> Vec<String> {
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| gray[y * width + x]);
    image.detect_grids().iter().map(|grid| grid.decode().map(|(_, text)| text).unwrap()).collect()
}

/// A PNG as 8-bit gray pixels.
fn read_png(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let info = reader.info();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    assert_eq!(info.bit_depth, png::BitDepth::One);
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).unwrap();
    assert_eq!(frame.bit_depth, png::BitDepth::Eight);
    let (w, h) = (frame.width as usize, frame.height as usize);
    buf.truncate(w * h);
    (w, h, buf)
}

/// Dark cells of a path made of `M x y h w v h h-w z` rectangles, as a set of (x, y).
fn path_cells(d: &str) -> Vec<(usize, usize)> {
    let mut cells = Vec::new();
    for rect in d.split('z').filter(|r| !r.is_empty()) {
        let rest = rect.strip_prefix('M').unwrap_or_else(|| panic!("rect {rect:?}"));
        let (x, rest) = rest.split_once(' ').unwrap();
        let (y, rest) = rest.split_once('h').unwrap();
        let (w, rest) = rest.split_once('v').unwrap();
        let (h, back) = rest.split_once('h').unwrap();
        assert_eq!(back, format!("-{w}"), "rect {rect:?} does not close");
        let (x, y, w, h): (usize, usize, usize, usize) =
            (x.parse().unwrap(), y.parse().unwrap(), w.parse().unwrap(), h.parse().unwrap());
        for yy in y..y + h {
            for xx in x..x + w {
                cells.push((xx, yy));
            }
        }
    }
    cells.sort_unstable();
    cells
}

/// The dark modules of a matrix, offset by the quiet zone, sorted like [`path_cells`].
fn matrix_cells(qr: &QrMatrix) -> Vec<(usize, usize)> {
    let mut cells = Vec::new();
    for y in 0..qr.width() {
        for x in 0..qr.width() {
            if qr.is_dark(x, y) {
                cells.push((x + QUIET_ZONE, y + QUIET_ZONE));
            }
        }
    }
    cells.sort_unstable();
    cells
}

/// One element of a parsed SVG: name, attributes, text content.
#[derive(Debug)]
struct Element {
    name: String,
    attrs: HashMap<String, String>,
    text: String,
    /// Index of the enclosing `<g class="page">`, if any.
    page: Option<usize>,
}

/// Parses an XML document strictly (quick-xml checks nesting and end names), returning its
/// elements in document order with unescaped attributes and text.
fn parse_xml(xml: &str) -> Vec<Element> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut elements: Vec<Element> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut page = None;
    let mut pages = 0;
    loop {
        let event =
            reader.read_event().unwrap_or_else(|e| panic!("malformed XML at {}: {e}", reader.buffer_position()));
        let (start, is_empty) = match &event {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
            let attrs: HashMap<String, String> = e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    (String::from_utf8(a.key.as_ref().to_vec()).unwrap(), a.unescape_value().unwrap().into_owned())
                })
                .collect();
            if name == "g" && attrs.get("class").map(String::as_str) == Some("page") {
                page = Some(pages);
                pages += 1;
            }
            elements.push(Element { name, attrs, text: String::new(), page });
            if !is_empty {
                open.push(elements.len() - 1);
            }
            continue;
        }
        match event {
            Event::End(_) => {
                let index = open.pop().unwrap();
                if elements[index].name == "g" && elements[index].attrs.get("class").map(String::as_str) == Some("page")
                {
                    page = None;
                }
            }
            Event::Text(t) => {
                if let Some(&index) = open.last() {
                    elements[index].text.push_str(&t.unescape().unwrap());
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(open.is_empty(), "unclosed elements");
    elements
}

fn class_of(e: &Element) -> &str {
    e.attrs.get("class").map_or("", String::as_str)
}

/// Parses `translate(x y) scale(s)`.
fn translate_scale(transform: &str) -> (f64, f64, f64) {
    let inner = transform.strip_prefix("translate(").unwrap();
    let (xy, rest) = inner.split_once(") scale(").unwrap();
    let (x, y) = xy.split_once(' ').unwrap();
    let s = rest.strip_suffix(')').unwrap();
    (x.parse().unwrap(), y.parse().unwrap(), s.parse().unwrap())
}

// ---------------------------------------------------------------------------------------------
// A minimal PDF reader for what `sheet_pdf` writes

struct PdfFile {
    objects: HashMap<i32, (String, Option<Vec<u8>>)>,
}

impl PdfFile {
    fn parse(bytes: &[u8]) -> Self {
        let mut objects = HashMap::new();
        let mut pos = 0;
        while let Some(found) = find(&bytes[pos..], b" 0 obj\n") {
            let at = pos + found;
            let line_start = bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let id: i32 = std::str::from_utf8(&bytes[line_start..at]).unwrap().parse().unwrap();
            let body_start = at + b" 0 obj\n".len();
            let end = body_start + find(&bytes[body_start..], b"endobj").unwrap();
            let body = &bytes[body_start..end];
            let (dict, stream) = match find(body, b"stream\n") {
                Some(s) => {
                    let dict = String::from_utf8_lossy(&body[..s]).into_owned();
                    let length: usize = token_after(&dict, "/Length").parse().unwrap();
                    let data = body[s + b"stream\n".len()..s + b"stream\n".len() + length].to_vec();
                    // The stream may contain "endobj": skip past its data.
                    let after = body_start + s + b"stream\n".len() + length;
                    let end = after + find(&bytes[after..], b"endobj").unwrap();
                    pos = end;
                    (dict, Some(data))
                }
                None => {
                    pos = end;
                    (String::from_utf8_lossy(body).into_owned(), None)
                }
            };
            objects.insert(id, (dict, stream));
        }
        PdfFile { objects }
    }

    fn dict(&self, id: i32) -> &str {
        &self.objects[&id].0
    }

    /// The decompressed data of a FlateDecode stream.
    fn stream(&self, id: i32) -> Vec<u8> {
        let (dict, data) = &self.objects[&id];
        assert!(dict.contains("/Filter /FlateDecode"), "{dict}");
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(data.as_deref().unwrap()).read_to_end(&mut out).unwrap();
        out
    }

    /// The object with this `/Type`.
    fn find_type(&self, ty: &str) -> Vec<i32> {
        let mut ids: Vec<i32> = self
            .objects
            .iter()
            .filter(|(_, (dict, _))| dict.split_whitespace().collect::<Vec<_>>().windows(2).any(|w| w == ["/Type", ty]))
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Page object ids in page order (from the page tree's /Kids).
    fn pages(&self) -> Vec<i32> {
        let tree = self.find_type("/Pages");
        assert_eq!(tree.len(), 1);
        let dict = self.dict(tree[0]);
        let kids = &dict[dict.find("/Kids").unwrap()..];
        let kids = &kids[kids.find('[').unwrap() + 1..kids.find(']').unwrap()];
        let tokens: Vec<&str> = kids.split_whitespace().collect();
        tokens.chunks(3).map(|r| r[0].parse().unwrap()).collect()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn token_after<'a>(dict: &'a str, key: &str) -> &'a str {
    let rest = &dict[dict.find(key).unwrap_or_else(|| panic!("{key} in {dict}")) + key.len()..];
    rest.split_whitespace().next().unwrap()
}

fn ref_after(dict: &str, key: &str) -> i32 {
    token_after(dict, key).parse().unwrap()
}

/// A content-stream token.
#[derive(Debug, Clone)]
enum Token {
    Number(f64),
    Str(Vec<u8>),
    Name,
    Op(String),
}

fn tokenize(content: &[u8]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < content.len() {
        let b = content[i];
        match b {
            b' ' | b'\n' | b'\r' | b'\t' => i += 1,
            b'(' => {
                let mut depth = 1;
                let mut s = Vec::new();
                i += 1;
                while depth > 0 {
                    let c = content[i];
                    i += 1;
                    match c {
                        b'\\' => {
                            let e = content[i];
                            i += 1;
                            match e {
                                b'n' => s.push(b'\n'),
                                b'r' => s.push(b'\r'),
                                b't' => s.push(b'\t'),
                                b'b' => s.push(8),
                                b'f' => s.push(12),
                                b'0'..=b'7' => {
                                    let mut v = u32::from(e - b'0');
                                    for _ in 0..2 {
                                        if (b'0'..=b'7').contains(&content[i]) {
                                            v = v * 8 + u32::from(content[i] - b'0');
                                            i += 1;
                                        }
                                    }
                                    s.push(v as u8);
                                }
                                other => s.push(other),
                            }
                        }
                        b'(' => {
                            depth += 1;
                            s.push(c);
                        }
                        b')' => {
                            depth -= 1;
                            if depth > 0 {
                                s.push(c);
                            }
                        }
                        _ => s.push(c),
                    }
                }
                tokens.push(Token::Str(s));
            }
            b'<' => {
                let end = i + content[i..].iter().position(|&c| c == b'>').unwrap();
                let hex: Vec<u8> = content[i + 1..end].iter().copied().filter(u8::is_ascii_hexdigit).collect();
                let s =
                    hex.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap()).collect();
                tokens.push(Token::Str(s));
                i = end + 1;
            }
            b'/' => {
                let end = i
                    + 1
                    + content[i + 1..].iter().position(|c| c.is_ascii_whitespace()).unwrap_or(content.len() - i - 1);
                tokens.push(Token::Name);
                i = end;
            }
            b'[' | b']' => i += 1,
            _ => {
                let end = i + content[i..].iter().position(|c| c.is_ascii_whitespace()).unwrap_or(content.len() - i);
                let word = std::str::from_utf8(&content[i..end]).unwrap();
                tokens.push(match word.parse::<f64>() {
                    Ok(n) => Token::Number(n),
                    Err(_) => Token::Op(word.to_owned()),
                });
                i = end;
            }
        }
    }
    tokens
}

const PT_PER_MM: f64 = 72.0 / 25.4;
const PAGE_H_PT: f64 = 297.0 * PT_PER_MM;

/// Rasterises the filled rectangles of a content stream (text and strokes ignored) onto an A4
/// bitmap of `px_per_mm`: 0 where filled, 255 elsewhere.
fn rasterize(content: &[u8], px_per_mm: f64) -> (usize, usize, Vec<u8>) {
    let (w, h) = ((210.0 * px_per_mm).round() as usize, (297.0 * px_per_mm).round() as usize);
    let mut bitmap = vec![255_u8; w * h];
    let mut ctm = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
    let mut stack = Vec::new();
    let mut operands: Vec<f64> = Vec::new();
    let mut path: Vec<[f64; 4]> = Vec::new();
    let mut fills = 0;
    for token in tokenize(content) {
        match token {
            Token::Number(n) => operands.push(n),
            Token::Str(_) | Token::Name => {}
            Token::Op(op) => {
                match op.as_str() {
                    "q" => stack.push(ctm),
                    "Q" => ctm = stack.pop().unwrap(),
                    "cm" => {
                        let m: [f64; 6] = operands[operands.len() - 6..].try_into().unwrap();
                        // m x ctm
                        ctm = [
                            m[0] * ctm[0] + m[1] * ctm[2],
                            m[0] * ctm[1] + m[1] * ctm[3],
                            m[2] * ctm[0] + m[3] * ctm[2],
                            m[2] * ctm[1] + m[3] * ctm[3],
                            m[4] * ctm[0] + m[5] * ctm[2] + ctm[4],
                            m[4] * ctm[1] + m[5] * ctm[3] + ctm[5],
                        ];
                    }
                    "re" => path.push(operands[operands.len() - 4..].try_into().unwrap()),
                    "f" => {
                        fills += 1;
                        for [x, y, rw, rh] in path.drain(..) {
                            let map = |x: f64, y: f64| {
                                let px = ctm[0] * x + ctm[2] * y + ctm[4];
                                let py = ctm[1] * x + ctm[3] * y + ctm[5];
                                (px / PT_PER_MM * px_per_mm, (PAGE_H_PT - py) / PT_PER_MM * px_per_mm)
                            };
                            let (x1, y1) = map(x, y);
                            let (x2, y2) = map(x + rw, y + rh);
                            let (left, right) = (x1.min(x2), x1.max(x2));
                            let (top, bottom) = (y1.min(y2), y1.max(y2));
                            for py in (top - 0.5).ceil().max(0.0) as usize..((bottom - 0.5).ceil() as usize).min(h) {
                                for px in (left - 0.5).ceil().max(0.0) as usize..((right - 0.5).ceil() as usize).min(w)
                                {
                                    bitmap[py * w + px] = 0;
                                }
                            }
                        }
                    }
                    "S" | "n" => path.clear(),
                    _ => {}
                }
                operands.clear();
            }
        }
    }
    assert!(fills > 0, "no filled paths");
    (w, h, bitmap)
}

/// The text shown on a page (one string per `Tj`), mapped through the ToUnicode CMap.
fn page_text(content: &[u8], to_unicode: &HashMap<u16, String>) -> Vec<String> {
    let mut texts = Vec::new();
    let mut last_str = None;
    for token in tokenize(content) {
        match token {
            Token::Str(s) => last_str = Some(s),
            Token::Op(op) if op == "Tj" => {
                let s = last_str.take().unwrap();
                assert_eq!(s.len() % 2, 0, "Identity-H strings are two bytes per glyph");
                let text: String = s
                    .chunks(2)
                    .map(|p| {
                        let cid = u16::from_be_bytes([p[0], p[1]]);
                        to_unicode.get(&cid).unwrap_or_else(|| panic!("CID {cid} missing from ToUnicode")).clone()
                    })
                    .collect();
                texts.push(text);
            }
            _ => {}
        }
    }
    texts
}

/// The `beginbfchar` pairs of a ToUnicode CMap.
fn parse_to_unicode(cmap: &[u8]) -> HashMap<u16, String> {
    let text = std::str::from_utf8(cmap).unwrap();
    let mut map = HashMap::new();
    for block in text.split("beginbfchar").skip(1) {
        let block = &block[..block.find("endbfchar").unwrap()];
        for line in block.lines().filter(|l| !l.trim().is_empty()) {
            let parts: Vec<&str> = line.split(['<', '>']).filter(|p| !p.trim().is_empty()).collect();
            let cid = u16::from_str_radix(parts[0], 16).unwrap();
            let units: Vec<u16> = parts[1]
                .as_bytes()
                .chunks(4)
                .map(|c| u16::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
                .collect();
            map.insert(cid, String::from_utf16(&units).unwrap());
        }
    }
    map
}

// ---------------------------------------------------------------------------------------------
// Single codes

#[test]
fn png_decodes_to_its_text_at_every_level_and_module_size() {
    let texts = [
        tree_url(0),
        lot_url(1),
        "https://orchardmap.example.vn/414/9520123456788/254/K7DW3QX".to_owned(),
        // Vietnamese and Japanese UTF-8 (the latter would go to Kanji mode if we let it).
        "https://orchardmap.example.vn/vườn/Đắk-Lắk/sầu-riêng/日本語のテキスト".to_owned(),
    ];
    for text in &texts {
        for ec in EcLevel::ALL {
            let qr = encode(text, ec).unwrap();
            assert_eq!(qr.ec_level(), ec);
            for module_px in [1, 2, 3, 5, 8] {
                let png = qr_png(text, ec, module_px).unwrap();
                let (w, h, gray) = read_png(&png);
                let px = module_px as usize;
                assert_eq!((w, h), ((qr.width() + 2 * QUIET_ZONE) * px, (qr.width() + 2 * QUIET_ZONE) * px));
                // The quiet zone is white.
                let zone = QUIET_ZONE * px;
                for y in 0..h {
                    for x in 0..w {
                        if x < zone || y < zone || x >= w - zone || y >= h - zone {
                            assert_eq!(gray[y * w + x], 255, "quiet zone pixel ({x}, {y}) at {ec}, {module_px} px");
                        }
                    }
                }
                // Every pixel has the colour of its module.
                for y in 0..qr.width() * px {
                    for x in 0..qr.width() * px {
                        let dark = qr.is_dark(x / px, y / px);
                        assert_eq!(gray[(y + zone) * w + x + zone], if dark { 0 } else { 255 });
                    }
                }
                if module_px >= 2 {
                    assert_eq!(rqrr_decode(w, h, &gray), vec![text.clone()], "{ec} at {module_px} px");
                } else {
                    // One pixel per module is below what rqrr samples reliably; upscale 3x.
                    let big: Vec<u8> = (0..h * 3)
                        .flat_map(|y| (0..w * 3).map(move |x| (x, y)))
                        .map(|(x, y)| gray[(y / 3) * w + x / 3])
                        .collect();
                    assert_eq!(rqrr_decode(w * 3, h * 3, &big), vec![text.clone()], "{ec} at 1 px");
                }
            }
        }
    }
}

#[test]
fn png_module_size_is_checked() {
    for bad in [0, 41] {
        let err = qr_png("https://orchardmap.example.vn", EcLevel::M, bad).unwrap_err();
        assert_eq!(err, PrintError::PixelSize { what: "module size", value: bad, max: 40 });
        assert_eq!(err.to_string(), format!("module size of {bad} px is out of range 1..=40"));
    }
    assert!(qr_png("https://orchardmap.example.vn", EcLevel::M, 40).is_ok());
}

#[test]
fn svg_path_holds_exactly_the_dark_modules() {
    for (text, ec, size) in
        [(tree_url(3), EcLevel::Q, None), (lot_url(4), EcLevel::M, Some(300)), ("1".to_owned(), EcLevel::H, Some(64))]
    {
        let svg = qr_svg(&text, ec, size).unwrap();
        let qr = encode(&text, ec).unwrap();
        let side = qr.width() + 2 * QUIET_ZONE;
        let elements = parse_xml(&svg);
        let root = &elements[0];
        assert_eq!(root.name, "svg");
        assert_eq!(root.attrs["viewBox"], format!("0 0 {side} {side}"));
        assert_eq!(root.attrs["shape-rendering"], "crispEdges");
        match size {
            Some(px) => {
                assert_eq!(root.attrs["width"], px.to_string());
                assert_eq!(root.attrs["height"], px.to_string());
            }
            None => assert!(!root.attrs.contains_key("width") && !root.attrs.contains_key("height")),
        }
        let paths: Vec<&Element> = elements.iter().filter(|e| e.name == "path").collect();
        assert_eq!(paths.len(), 1, "one path of dark modules");
        assert_eq!(path_cells(&paths[0].attrs["d"]), matrix_cells(&qr), "{text} at {ec}");
        let rect = elements.iter().find(|e| e.name == "rect").unwrap();
        assert_eq!(rect.attrs["fill"], "#fff");
    }
    assert!(matches!(
        qr_svg("x", EcLevel::L, Some(0)),
        Err(PrintError::PixelSize { what: "image size", value: 0, .. })
    ));
}

#[test]
fn too_long_text_is_an_error_naming_length_and_level() {
    let text = "a".repeat(1700);
    let err = qr_svg(&text, EcLevel::Q, None).unwrap_err();
    assert_eq!(err, PrintError::TooLong { chars: 1700, bytes: 1700, ec: EcLevel::Q });
    assert!(err.to_string().starts_with("URL of 1700 characters (1700 bytes) does not fit a QR code at level Q"));
    assert!(qr_png(&text, EcLevel::L, 2).is_ok(), "1700 bytes fit at L");
}

// ---------------------------------------------------------------------------------------------
// Sheets

#[test]
fn sheets_have_one_page_per_grid() {
    for (kind, n, pages) in [
        (LabelKind::TreeTag, 1, 1),
        (LabelKind::TreeTag, 24, 1),
        (LabelKind::TreeTag, 25, 2),
        (LabelKind::TreeTag, 500, 21),
        (LabelKind::FruitLabel, 40, 1),
        (LabelKind::FruitLabel, 41, 2),
    ] {
        let labels = tree_labels(n);
        let opts = SheetOptions { kind, ec: None, title: None };
        let svg = sheet_svg(&labels, &opts).unwrap();
        let elements = parse_xml(&svg);
        let page_groups = elements.iter().filter(|e| e.name == "g" && class_of(e) == "page").count();
        assert_eq!(page_groups, pages, "{kind} x {n}");
        assert_eq!(elements[0].attrs["height"], format!("{}mm", 297 * pages));
        assert_eq!(elements[0].attrs["viewBox"], format!("0 0 210 {}", 297 * pages));
        assert_eq!(elements.iter().filter(|e| class_of(e) == "label").count(), n);
        let last_number = elements.iter().rfind(|e| class_of(e) == "page-number").unwrap();
        assert_eq!(last_number.text, format!("{pages}/{pages}"));

        let pdf = sheet_pdf(&labels, &opts).unwrap();
        let file = PdfFile::parse(&pdf);
        let tree = file.find_type("/Pages");
        assert_eq!(token_after(file.dict(tree[0]), "/Count"), pages.to_string(), "{kind} x {n}");
        assert_eq!(file.pages().len(), pages);
        assert_eq!(file.find_type("/Page").len(), pages);
    }
}

#[test]
fn empty_sheet_is_an_error() {
    assert_eq!(sheet_svg(&[], &tree_opts()).unwrap_err(), PrintError::NoLabels);
    assert_eq!(sheet_pdf(&[], &tree_opts()).unwrap_err(), PrintError::NoLabels);
}

#[test]
fn svg_sheet_codes_match_their_urls_and_sit_in_their_cells() {
    let mut labels = tree_labels(30);
    labels[5].lines = vec!["a<script>b&\"c'".into()];
    labels[6].code = "A&B<7>".into();
    let svg = sheet_svg(&labels, &tree_opts()).unwrap();
    assert!(!svg.contains("<script>"), "markup in a line must be escaped");
    assert!(svg.contains("&lt;script&gt;"));
    let elements = parse_xml(&svg);
    assert_eq!(elements[0].attrs["width"], "210mm");
    let layout = layout(LabelKind::TreeTag);
    let groups: Vec<usize> =
        elements.iter().enumerate().filter(|(_, e)| class_of(e) == "label").map(|(i, _)| i).collect();
    assert_eq!(groups.len(), labels.len());
    for (n, (&g, label)) in groups.iter().zip(&labels).enumerate() {
        let end = groups.get(n + 1).copied().unwrap_or(elements.len());
        let inside = &elements[g + 1..end];
        let path = inside.iter().find(|e| class_of(e) == "qr").unwrap();
        let qr = encode(&label.url, EcLevel::Q).unwrap();
        assert_eq!(path_cells(&path.attrs["d"]), matrix_cells(&qr), "label {n}");
        assert_eq!(path.attrs["shape-rendering"], "crispEdges");
        // Position: centred in its cell, on its page; the scale makes the code qr_mm wide.
        let (x, y, scale) = translate_scale(&path.attrs["transform"]);
        let (cx, cy) = layout.cell_origin_mm(n % 24);
        assert_eq!(elements[g].page, Some(n / 24));
        assert!((x - (cx + (layout.cell_w_mm - layout.qr_mm) / 2.0)).abs() < 1e-3, "label {n}: x {x}");
        assert!(y > cy && y + layout.qr_mm < cy + layout.cell_h_mm, "label {n}: y {y}");
        assert!((scale * (qr.width() + 2 * QUIET_ZONE) as f64 - layout.qr_mm).abs() < 1e-3, "label {n}: scale {scale}");
        assert!(scale >= LabelKind::TreeTag.min_module_mm());
        // Text, unescaped back to what was given.
        let code = inside.iter().find(|e| class_of(e) == "code").unwrap();
        assert_eq!(code.text, label.code);
        let lines: Vec<&str> = inside.iter().filter(|e| class_of(e) == "line").map(|e| e.text.as_str()).collect();
        if n == 5 {
            assert_eq!(lines, vec!["a<script>b&\"c'"]);
        } else {
            assert_eq!(lines[0], "Sầu riêng Ri6");
            // The second line is longer than a 42 mm cell at 2.6 mm: shortened with an ellipsis.
            assert!(lines[1].ends_with('…'), "{}", lines[1]);
            assert!(label.lines[1].starts_with(lines[1].trim_end_matches('…')), "{}", lines[1]);
        }
    }
    for e in elements.iter().filter(|e| e.name == "text") {
        assert!(e.attrs.contains_key("font-size"));
    }
    let family = elements.iter().find(|e| e.attrs.contains_key("font-family")).unwrap();
    assert_eq!(family.attrs["font-family"], "DejaVu Sans, Noto Sans, sans-serif");
    let title = elements.iter().find(|e| class_of(e) == "title").unwrap();
    assert_eq!(title.text, "Vườn ông Y Blang Niê — Đắk Lắk");
    let cut_marks: Vec<&Element> = elements.iter().filter(|e| class_of(e) == "cut-marks").collect();
    assert_eq!(cut_marks.len(), 2, "one cut-mark path per page");
    assert!(cut_marks.iter().all(|e| e.attrs["d"].starts_with('M')));
}

#[test]
fn module_size_below_the_minimum_is_refused() {
    let mut labels = tree_labels(3);
    // 200 characters need version 12 at Q: 73 modules in 35 mm = 0.479 mm.
    labels[2].url =
        format!("https://orchardmap.example.vn/414/9520123456788/254/{}?8030={}", code(2), "x".repeat(200 - 65));
    assert_eq!(labels[2].url.len(), 200);
    for result in [sheet_svg(&labels, &tree_opts()).map(|_| ()), sheet_pdf(&labels, &tree_opts()).map(|_| ())] {
        let err = result.unwrap_err();
        let PrintError::Label { number, code: ref c, ref error } = err else { panic!("{err:?}") };
        assert_eq!((number, c.as_str()), (3, code(2).as_str()));
        assert!(
            matches!(**error, PrintError::ModuleTooSmall { url_chars: 200, version: 12, ec: EcLevel::Q, .. }),
            "{error:?}"
        );
        let message = err.to_string();
        assert!(message.starts_with(&format!("label 3 ({}): module 0.", code(2))), "{message}");
        assert!(message.contains("below the 0.5 mm minimum for tree tags"), "{message}");
        assert!(message.contains("a URL of 200 characters"), "{message}");
        assert!(message.ends_with("shorten the URL"), "{message}");
    }
    // A lower level fits the same URL.
    let opts = SheetOptions { ec: Some(EcLevel::L), ..tree_opts() };
    assert!(sheet_svg(&labels, &opts).is_ok());
    // A URL too long for any code at all.
    labels[0].url = "x".repeat(2000);
    let err = sheet_pdf(&labels, &tree_opts()).unwrap_err();
    assert!(err.to_string().starts_with(&format!("label 1 ({}): URL of 2000 characters", code(0))), "{err}");
}

#[test]
fn pdf_embeds_a_font_subset_with_a_to_unicode_map() {
    let labels = tree_labels(3);
    let pdf = sheet_pdf(&labels, &tree_opts()).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(pdf.ends_with(b"%%EOF") || pdf.ends_with(b"%%EOF\n"));
    let file = PdfFile::parse(&pdf);
    let fonts = file.find_type("/Font");
    let type0 = fonts.iter().copied().find(|&id| file.dict(id).contains("/Subtype /Type0")).unwrap();
    let dict = file.dict(type0);
    assert!(dict.contains("/Encoding /Identity-H"), "{dict}");
    let base = token_after(dict, "/BaseFont");
    assert!(base.len() == "/ABCDEF+DejaVuSans".len() && base.ends_with("+DejaVuSans"), "{base}");
    let cid_font = fonts.iter().copied().find(|&id| file.dict(id).contains("/Subtype /CIDFontType2")).unwrap();
    let descriptor = ref_after(file.dict(cid_font), "/FontDescriptor");
    let font_file = ref_after(file.dict(descriptor), "/FontFile2");
    let subset = file.stream(font_file);
    assert!(subset.len() < 40_000, "subset of {} bytes", subset.len());
    assert!(subset.len() < dejavu::sans::regular().len() / 10);
    assert_eq!(token_after(file.dict(font_file), "/Length1"), subset.len().to_string());
    // The subset is a valid font whose glyphs 1.. are the used ones.
    let face = ttf_parser_face_count(&subset);
    assert!(face > 20, "{face} glyphs");
    assert!(pdf.len() < 150_000, "{} bytes for 3 labels", pdf.len());

    // Text comes back through the ToUnicode map.
    let to_unicode = parse_to_unicode(&file.stream(ref_after(dict, "/ToUnicode")));
    let page = file.pages()[0];
    let content = file.stream(ref_after(file.dict(page), "/Contents"));
    let texts = page_text(&content, &to_unicode);
    assert_eq!(texts[0], "Vườn ông Y Blang Niê — Đắk Lắk");
    assert_eq!(texts[1], "1/1");
    for label in &labels {
        assert!(texts.contains(&label.code), "{} in {texts:?}", label.code);
    }
    assert!(texts.iter().filter(|t| *t == "Sầu riêng Ri6").count() == 3);
    assert!(texts.iter().any(|t| t.starts_with("Vườn ông Y Blang Niê, Đắk") && t.ends_with('…')), "{texts:?}");
}

/// Glyphs in a TrueType font (maxp.numGlyphs), read by hand.
fn ttf_parser_face_count(font: &[u8]) -> u16 {
    let tables = u16::from_be_bytes([font[4], font[5]]) as usize;
    for t in 0..tables {
        let record = &font[12 + 16 * t..28 + 16 * t];
        if &record[0..4] == b"maxp" {
            let offset = u32::from_be_bytes(record[8..12].try_into().unwrap()) as usize;
            return u16::from_be_bytes([font[offset + 4], font[offset + 5]]);
        }
    }
    panic!("no maxp table")
}

#[test]
fn pdf_pages_rasterise_to_codes_that_decode() {
    for (kind, labels, page, ec) in [
        (LabelKind::TreeTag, tree_labels(30), 0, EcLevel::Q),
        (LabelKind::TreeTag, tree_labels(30), 1, EcLevel::Q),
        (
            LabelKind::FruitLabel,
            (0..40)
                .map(|i| Label {
                    url: lot_url(i), code: format!("L{}", code(i)), lines: vec!["Ri6 — 1.250 kg".into()]
                })
                .collect(),
            0,
            EcLevel::M,
        ),
    ] {
        let opts = SheetOptions { kind, ec: None, title: Some("Lô thu hoạch 2025".into()) };
        let pdf = sheet_pdf(&labels, &opts).unwrap();
        let file = PdfFile::parse(&pdf);
        let page_id = file.pages()[page];
        let content = file.stream(ref_after(file.dict(page_id), "/Contents"));
        let px_per_mm = 12.0;
        let (w, _, bitmap) = rasterize(&content, px_per_mm);
        let layout = layout(kind);
        let per_page = layout.per_page();
        let on_page = &labels[page * per_page..((page + 1) * per_page).min(labels.len())];
        for (i, label) in on_page.iter().enumerate() {
            // Crop the cell (cut marks are strokes, not rasterised) and decode it.
            let (cx, cy) = layout.cell_origin_mm(i);
            let (x0, y0) = ((cx * px_per_mm).round() as usize, (cy * px_per_mm).round() as usize);
            let (cw, ch) = ((layout.cell_w_mm * px_per_mm) as usize, (layout.cell_h_mm * px_per_mm) as usize);
            let cell: Vec<u8> =
                (0..ch).flat_map(|y| bitmap[(y0 + y) * w + x0..(y0 + y) * w + x0 + cw].iter().copied()).collect();
            assert_eq!(rqrr_decode(cw, ch, &cell), vec![label.url.clone()], "{kind} page {page} cell {i}");
            // The rasterised modules are exactly the matrix.
            let qr = encode(&label.url, ec).unwrap();
            let module = layout.qr_mm / (qr.width() + 2 * QUIET_ZONE) as f64;
            let qx = cx + (layout.cell_w_mm - layout.qr_mm) / 2.0;
            let qy = find_qr_top(&bitmap, w, px_per_mm, qx, cy, module);
            for y in 0..qr.width() + 2 * QUIET_ZONE {
                for x in 0..qr.width() + 2 * QUIET_ZONE {
                    let sx = ((qx + (x as f64 + 0.5) * module) * px_per_mm) as usize;
                    let sy = ((qy + (y as f64 + 0.5) * module) * px_per_mm) as usize;
                    let dark = x >= QUIET_ZONE && y >= QUIET_ZONE && qr.is_dark(x - QUIET_ZONE, y - QUIET_ZONE);
                    assert_eq!(bitmap[sy * w + sx] == 0, dark, "{kind} cell {i} module ({x}, {y})");
                }
            }
        }
    }
}

/// The top of the quiet zone of the code in a cell: the first dark row (the top finder pattern)
/// minus the quiet zone.
fn find_qr_top(bitmap: &[u8], w: usize, px_per_mm: f64, qx: f64, cy: f64, module: f64) -> f64 {
    let x = ((qx + (QUIET_ZONE as f64 + 0.5) * module) * px_per_mm) as usize;
    let start = (cy * px_per_mm) as usize;
    let first_dark = (start..).find(|&y| bitmap[y * w + x] == 0).unwrap();
    first_dark as f64 / px_per_mm - QUIET_ZONE as f64 * module
}
