//! The PDF sheet: one A4 page per grid, QR modules as filled rectangles, text in an embedded
//! subset of DejaVu Sans (a Type0/CIDFontType2 font, Identity-H, with a ToUnicode map).

use std::collections::BTreeMap;
use std::io::Write as _;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use subsetter::GlyphRemapper;

use super::font::Font;
use super::sheet::{Anchor, CUT_LINE_MM, PAGE_H_MM, PAGE_W_MM, Plan, Text};
use super::{PrintError, QUIET_ZONE};

/// Points per millimetre.
const PT_PER_MM: f64 = 72.0 / 25.4;

/// The resource name of the font on every page.
const FONT_NAME: Name<'static> = Name(b"F1");

/// A length in millimetres as PDF points.
fn pt(mm: f64) -> f32 {
    (mm * PT_PER_MM) as f32
}

/// A page position (millimetres from the top-left corner) in PDF user space (points from the
/// bottom-left corner).
fn at(x_mm: f64, y_mm: f64) -> (f32, f32) {
    (pt(x_mm), pt(PAGE_H_MM - y_mm))
}

/// The glyphs used so far, numbered as they will be in the font subset (CID = new glyph id).
struct Glyphs {
    remapper: GlyphRemapper,
    /// The character each CID stands for, for the ToUnicode map.
    unicode: BTreeMap<u16, char>,
}

impl Glyphs {
    /// The text as a string of big-endian CIDs (Identity-H).
    fn encode(&mut self, font: &Font, text: &str) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(text.len() * 2);
        for c in text.chars() {
            let (gid, shown) = font.glyph(c);
            let cid = self.remapper.remap(gid);
            self.unicode.entry(cid).or_insert(shown);
            bytes.extend_from_slice(&cid.to_be_bytes());
        }
        bytes
    }
}

pub(crate) fn write(plan: &Plan) -> Result<Vec<u8>, PrintError> {
    let font = plan.font;
    let mut glyphs = Glyphs { remapper: GlyphRemapper::new(), unicode: BTreeMap::new() };
    let mut contents = Vec::with_capacity(plan.pages);
    for page in 0..plan.pages {
        contents.push(deflate(&page_content(plan, page, &mut glyphs))?);
    }

    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let info = Ref::new(3);
    let type0 = Ref::new(4);
    let cid_font = Ref::new(5);
    let descriptor = Ref::new(6);
    let font_file = Ref::new(7);
    let to_unicode = Ref::new(8);
    let first_page = 9;
    let page_ref = |page: usize| Ref::new(first_page + 2 * page as i32);
    let content_ref = |page: usize| Ref::new(first_page + 2 * page as i32 + 1);

    let size: usize = contents.iter().map(Vec::len).sum();
    let mut pdf = Pdf::with_capacity(size + 64 * 1024);
    pdf.catalog(catalog).pages(tree);
    let title = plan.title.as_deref().unwrap_or("orchardmap labels");
    pdf.document_info(info).title(TextStr(title)).producer(TextStr("orchardmap"));
    pdf.pages(tree).kids((0..plan.pages).map(page_ref)).count(i32::try_from(plan.pages).unwrap_or(i32::MAX));
    for (page, content) in contents.iter().enumerate() {
        let mut writer = pdf.page(page_ref(page));
        writer.parent(tree).media_box(Rect::new(0.0, 0.0, pt(PAGE_W_MM), pt(PAGE_H_MM))).contents(content_ref(page));
        writer.resources().fonts().pair(FONT_NAME, type0);
        writer.finish();
        pdf.stream(content_ref(page), content).filter(Filter::FlateDecode);
    }

    // The font: only the glyphs used, CIDs equal to the glyph ids of the subset.
    let subset = subsetter::subset(font.data(), 0, &glyphs.remapper).map_err(|e| PrintError::Font(e.to_string()))?;
    let base_font = format!("{}+DejaVuSans", subset_tag(&glyphs.remapper));
    let base_font = Name(base_font.as_bytes());
    let face = font.face();
    let to_1000 = |v: f64| (v * 1000.0 / font.units_per_em()) as f32;
    let widths: Vec<f32> = glyphs.remapper.remapped_gids().map(|gid| (font.advance(gid) * 1000.0) as f32).collect();
    let identity = SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 };

    pdf.type0_font(type0)
        .base_font(base_font)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid_font)
        .to_unicode(to_unicode);
    let mut cid = pdf.cid_font(cid_font);
    cid.subtype(CidFontType::Type2)
        .base_font(base_font)
        .system_info(identity)
        .font_descriptor(descriptor)
        .default_width(widths.first().copied().unwrap_or(0.0))
        .cid_to_gid_map_predefined(Name(b"Identity"));
    cid.widths().consecutive(0, widths);
    cid.finish();
    let bbox = face.global_bounding_box();
    let ascent = to_1000(f64::from(face.ascender()));
    pdf.font_descriptor(descriptor)
        .name(base_font)
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(
            to_1000(f64::from(bbox.x_min)),
            to_1000(f64::from(bbox.y_min)),
            to_1000(f64::from(bbox.x_max)),
            to_1000(f64::from(bbox.y_max)),
        ))
        .italic_angle(face.italic_angle())
        .ascent(ascent)
        .descent(to_1000(f64::from(face.descender())))
        .cap_height(face.capital_height().map_or(ascent, |h| to_1000(f64::from(h))))
        .stem_v(80.0)
        .font_file2(font_file);
    let subset_len = i32::try_from(subset.len()).unwrap_or(i32::MAX);
    pdf.stream(font_file, &deflate(&subset)?).filter(Filter::FlateDecode).pair(Name(b"Length1"), subset_len);

    let mut cmap = UnicodeCmap::new(
        Name(b"Adobe-Identity-UCS"),
        SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"UCS"), supplement: 0 },
    );
    for (&cid, &c) in &glyphs.unicode {
        cmap.pair(cid, c);
    }
    pdf.stream(to_unicode, &deflate(&cmap.finish())?).filter(Filter::FlateDecode);

    Ok(pdf.finish())
}

/// The content stream of one page: cut marks, QR codes, then all text in one text object.
fn page_content(plan: &Plan, page: usize, glyphs: &mut Glyphs) -> Vec<u8> {
    let mut content = Content::new();

    content.set_line_width(pt(CUT_LINE_MM)).set_stroke_gray(0.0);
    for [x1, y1, x2, y2] in plan.cut_marks(page) {
        let (x1, y1) = at(x1, y1);
        let (x2, y2) = at(x2, y2);
        content.move_to(x1, y1).line_to(x2, y2);
    }
    content.stroke();

    content.set_fill_gray(0.0);
    for label in plan.page_labels(page) {
        // Module units, y down, origin at the outer corner of the quiet zone; one path per code
        // so that touching rectangles fill without seams.
        let (qx, qy) = plan.qr_origin(label);
        let (x, y) = at(qx, qy);
        let module = pt(plan.module_mm(label));
        content.save_state().transform([module, 0.0, 0.0, -module, x, y]);
        for [mx, my, w, h] in label.qr.dark_rects() {
            content.rect((mx + QUIET_ZONE) as f32, (my + QUIET_ZONE) as f32, w as f32, h as f32);
        }
        content.fill_nonzero().restore_state();
    }

    content.begin_text();
    let mut size = None;
    let number = plan.page_number(page);
    let margin = plan.margin_texts(&number);
    let labels = plan.page_labels(page).iter().flat_map(|label| plan.texts(label));
    for text in margin.into_iter().chain(labels) {
        show(&mut content, plan.font, glyphs, &text, &mut size);
    }
    content.end_text();
    content.finish().into_vec()
}

fn show(content: &mut Content, font: &Font, glyphs: &mut Glyphs, text: &Text<'_>, size: &mut Option<f32>) {
    if text.text.is_empty() {
        return;
    }
    let width = font.width(text.text) * text.size;
    let x = match text.anchor {
        Anchor::Start => text.x,
        Anchor::Middle => text.x - width / 2.0,
        Anchor::End => text.x - width,
    };
    let font_size = pt(text.size);
    if *size != Some(font_size) {
        content.set_font(FONT_NAME, font_size);
        *size = Some(font_size);
    }
    let (x, y) = at(x, text.y);
    content.set_text_matrix([1.0, 0.0, 0.0, 1.0, x, y]);
    content.show(Str(&glyphs.encode(font, text.text)));
}

/// Six capital letters that name the subset (PDF 32000-1, 9.6.4), derived from its glyphs.
fn subset_tag(remapper: &GlyphRemapper) -> String {
    // FNV-1a over the glyph ids in subset order.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for gid in remapper.remapped_gids() {
        for byte in gid.to_be_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    (0..6)
        .map(|i| {
            let letter = (hash >> (i * 8)) % 26;
            char::from(b'A' + letter as u8)
        })
        .collect()
}

/// zlib-compressed bytes, for a `/FlateDecode` stream.
fn deflate(data: &[u8]) -> Result<Vec<u8>, PrintError> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::with_capacity(data.len() / 3), flate2::Compression::new(6));
    encoder.write_all(data).map_err(|e| PrintError::Pdf(e.to_string()))?;
    encoder.finish().map_err(|e| PrintError::Pdf(e.to_string()))
}
