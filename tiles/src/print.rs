//! QR codes and printable A4 label sheets for tree tags and harvest-lot labels.
//!
//! Pure computation: every function returns the bytes or text of a document and touches no file
//! or network.
//!
//! * [`encode`]: the module matrix of a QR code ([`QrMatrix`]), always the smallest version for
//!   the chosen [`EcLevel`]. Text is encoded as UTF-8 bytes (with numeric and alphanumeric
//!   segments where they are shorter), never in Kanji mode; non-ASCII text declares UTF-8
//!   with an ECI header.
//! * [`qr_svg`], [`qr_png`]: one code as SVG (vector, viewBox in modules) or PNG (1-bit
//!   grayscale), each with the [`QUIET_ZONE`] of white modules around it.
//! * [`sheet_svg`], [`sheet_pdf`]: A4 sheets of [`Label`]s in the grid of [`layout`]: the QR code,
//!   the tag code in large type and a few short lines under it, cut marks at the cell corners and
//!   the title and page number in the top margin. Text is set in DejaVu Sans, which covers
//!   Vietnamese; the PDF embeds the subset of the font it uses.
//!
//! Printing rules (see DOMAIN.md, "QR codes and traceability"): tree tags outdoors use level Q
//! and modules of at least 0.5 mm, fruit labels level M and at least 0.396 mm. The QR code of a
//! label always has the size [`Layout::qr_mm`] of its kind, so a longer URL gives smaller modules;
//! the sheet functions refuse a label whose modules would be below [`LabelKind::min_module_mm`].
//!
//! ```
//! use tiles::print::{EcLevel, Label, LabelKind, SheetOptions, encode, sheet_pdf};
//!
//! let url = "https://orchardmap.example.vn/414/9520123456788/254/K7DW3QX";
//! let qr = encode(url, EcLevel::Q)?;
//! assert_eq!(qr.width(), 17 + 4 * qr.version() as usize);
//!
//! let label = Label { url: url.into(), code: "K7DW3QX".into(), lines: vec!["Sầu riêng Ri6".into()] };
//! let opts = SheetOptions { kind: LabelKind::TreeTag, ec: None, title: Some("Vườn ông Y Blang Niê".into()) };
//! let pdf = sheet_pdf(&[label], &opts)?;
//! assert!(pdf.starts_with(b"%PDF-"));
//! # Ok::<(), tiles::print::PrintError>(())
//! ```

use std::fmt::{self, Write as _};
use std::str::FromStr;

use qrcode::bits::Bits;
use qrcode::canvas::{Canvas, MaskPattern};
use qrcode::optimize::{Optimizer, Parser, Segment, total_encoded_len};
use qrcode::types::{Mode, Version};

mod font;
mod pdf;
mod sheet;

pub use sheet::{Layout, SVG_FONT_FAMILY, layout, sheet_svg};

/// Modules of white around every code, as the QR standard requires.
pub const QUIET_ZONE: usize = 4;

/// The largest module accepted by [`qr_png`], in pixels.
pub const MAX_MODULE_PX: u32 = 40;

/// The largest `size_px` accepted by [`qr_svg`].
pub const MAX_SIZE_PX: u32 = 20_000;

/// Everything that can go wrong while drawing codes and sheets.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PrintError {
    /// The text needs more than a version-40 QR code at this level.
    #[error(
        "URL of {chars} characters ({bytes} bytes) does not fit a QR code at level {ec}; \
         shorten it or choose a lower error-correction level"
    )]
    TooLong {
        /// Characters of the text.
        chars: usize,
        /// Its UTF-8 length.
        bytes: usize,
        /// The level asked for.
        ec: EcLevel,
    },
    /// The code of a label would be printed with modules below the minimum of its kind.
    #[error(
        "module {module_mm:.3} mm is below the {min_mm} mm minimum for {kind_plural}: a URL of {url_chars} characters \
         needs QR version {version} at level {ec} ({modules} modules with the quiet zone in {qr_mm} mm); \
         shorten the URL"
    )]
    ModuleTooSmall {
        /// Characters of the URL.
        url_chars: usize,
        /// The QR version it needs.
        version: u8,
        /// The level used.
        ec: EcLevel,
        /// Modules across the code including the quiet zone.
        modules: usize,
        /// The printed size of the code including the quiet zone.
        qr_mm: f64,
        /// The resulting module size.
        module_mm: f64,
        /// The minimum of the label kind.
        min_mm: f64,
        /// "tree tags" or "fruit labels".
        kind_plural: &'static str,
    },
    /// A problem with one label of a sheet.
    #[error("label {number} ({code}): {error}")]
    Label {
        /// Its position in the list, from 1.
        number: usize,
        /// Its code, as given.
        code: String,
        /// What is wrong.
        error: Box<PrintError>,
    },
    /// A sheet was asked for without labels.
    #[error("no labels to print")]
    NoLabels,
    /// A pixel size outside the accepted range.
    #[error("{what} of {value} px is out of range 1..={max}")]
    PixelSize {
        /// "module size" or "image size".
        what: &'static str,
        /// What was given.
        value: u32,
        /// The largest accepted value.
        max: u32,
    },
    /// An error-correction level that is not L, M, Q or H.
    #[error("unknown error-correction level {value:?}: expected L, M, Q or H")]
    UnknownEcLevel {
        /// What was given.
        value: String,
    },
    /// A label kind that is not a tree tag or a fruit label.
    #[error("unknown label kind {value:?}: expected tree-tag or fruit-label")]
    UnknownLabelKind {
        /// What was given.
        value: String,
    },
    /// The QR encoder failed for another reason than length (not expected).
    #[error("QR encoding failed: {0}")]
    Qr(String),
    /// Writing the PNG failed (not expected: it is written to memory).
    #[error("PNG encoding failed: {0}")]
    Png(String),
    /// The embedded font could not be read or subset (not expected).
    #[error("embedded font: {0}")]
    Font(String),
    /// Compressing a PDF stream failed (not expected: it is written to memory).
    #[error("PDF writing failed: {0}")]
    Pdf(String),
}

/// QR error-correction level: the share of the code that may be damaged and still read (about
/// 7 %, 15 %, 25 % and 30 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcLevel {
    /// Low, about 7 %.
    L,
    /// Medium, about 15 %: fruit labels.
    M,
    /// Quartile, about 25 %: tree tags outdoors.
    Q,
    /// High, about 30 %.
    H,
}

impl EcLevel {
    /// All levels, from the lowest.
    pub const ALL: [EcLevel; 4] = [EcLevel::L, EcLevel::M, EcLevel::Q, EcLevel::H];

    fn to_qrcode(self) -> qrcode::EcLevel {
        match self {
            EcLevel::L => qrcode::EcLevel::L,
            EcLevel::M => qrcode::EcLevel::M,
            EcLevel::Q => qrcode::EcLevel::Q,
            EcLevel::H => qrcode::EcLevel::H,
        }
    }
}

impl FromStr for EcLevel {
    type Err = PrintError;

    /// `L`, `M`, `Q` or `H` in either case; the words `low`, `medium`, `quartile` and `high` too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "l" | "low" => Ok(EcLevel::L),
            "m" | "medium" => Ok(EcLevel::M),
            "q" | "quartile" => Ok(EcLevel::Q),
            "h" | "high" => Ok(EcLevel::H),
            _ => Err(PrintError::UnknownEcLevel { value: s.to_owned() }),
        }
    }
}

impl fmt::Display for EcLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EcLevel::L => "L",
            EcLevel::M => "M",
            EcLevel::Q => "Q",
            EcLevel::H => "H",
        })
    }
}

/// What a sheet is printed for; decides the grid, the default level and the smallest module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabelKind {
    /// Weatherproof tags hung on trees: 4 x 6 per A4 page, level Q, modules >= 0.5 mm.
    TreeTag,
    /// Labels on fruit and harvest lots: 5 x 8 per A4 page, level M, modules >= 0.396 mm.
    FruitLabel,
}

impl LabelKind {
    /// The error-correction level used when [`SheetOptions::ec`] is `None`: Q for tree tags
    /// (dirt, scratches, sun), M for fruit labels.
    pub fn default_ec(self) -> EcLevel {
        match self {
            LabelKind::TreeTag => EcLevel::Q,
            LabelKind::FruitLabel => EcLevel::M,
        }
    }

    /// The smallest printed module, in millimetres: 0.5 for tree tags, 0.396 for fruit labels.
    pub fn min_module_mm(self) -> f64 {
        match self {
            LabelKind::TreeTag => 0.5,
            LabelKind::FruitLabel => 0.396,
        }
    }

    fn plural(self) -> &'static str {
        match self {
            LabelKind::TreeTag => "tree tags",
            LabelKind::FruitLabel => "fruit labels",
        }
    }
}

impl FromStr for LabelKind {
    type Err = PrintError;

    /// `tree-tag` (also `tree`, `tree_tag`, `treetag`) or `fruit-label` (also `fruit`, `lot`),
    /// in either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "tree-tag" | "tree" | "treetag" => Ok(LabelKind::TreeTag),
            "fruit-label" | "fruit" | "fruitlabel" | "lot" => Ok(LabelKind::FruitLabel),
            _ => Err(PrintError::UnknownLabelKind { value: s.to_owned() }),
        }
    }
}

impl fmt::Display for LabelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LabelKind::TreeTag => "tree-tag",
            LabelKind::FruitLabel => "fruit-label",
        })
    }
}

/// One label of a sheet.
#[derive(Debug, Clone)]
pub struct Label {
    /// What the QR code holds.
    pub url: String,
    /// Printed large under the code, e.g. the tag code `K7DW3QX`.
    pub code: String,
    /// Printed small under the code (cultivar, orchard, ...): the first two lines that are not
    /// blank, each shortened with an ellipsis to the width of the cell; further lines are not
    /// printed. Control characters (line breaks, tabs) print as spaces.
    pub lines: Vec<String>,
}

/// How to print a sheet.
#[derive(Debug, Clone)]
pub struct SheetOptions {
    /// Tree tags or fruit labels.
    pub kind: LabelKind,
    /// The error-correction level; `None` for [`LabelKind::default_ec`].
    pub ec: Option<EcLevel>,
    /// Printed small in the top margin of every page, beside the page number ("1/3").
    pub title: Option<String>,
}

/// The module matrix of a QR code, without the quiet zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrMatrix {
    width: usize,
    version: u8,
    ec: EcLevel,
    dark: Vec<bool>,
}

impl QrMatrix {
    /// Modules across (and down), without the quiet zone: `17 + 4 * version`.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether the module in column `x`, row `y` is dark; `false` outside the matrix (the
    /// quiet zone is light).
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.dark[y * self.width + x]
    }

    /// The QR version, 1 to 40.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The error-correction level it was encoded at.
    pub fn ec_level(&self) -> EcLevel {
        self.ec
    }

    /// Modules across including the quiet zone on both sides.
    pub fn width_with_quiet_zone(&self) -> usize {
        self.width + 2 * QUIET_ZONE
    }

    /// The dark modules as rectangles `(x, y, w, h)` in modules (matrix coordinates, without the
    /// quiet zone): horizontal runs, merged with identical runs of the rows below. They cover
    /// exactly the dark modules and do not overlap.
    pub(crate) fn dark_rects(&self) -> Vec<[usize; 4]> {
        let mut done: Vec<[usize; 4]> = Vec::new();
        // Rectangles still growing downwards, keyed by their run (x, w), sorted by x.
        let mut open: Vec<[usize; 4]> = Vec::new();
        let mut next_open: Vec<[usize; 4]> = Vec::new();
        for y in 0..self.width {
            let row = &self.dark[y * self.width..(y + 1) * self.width];
            let mut cursor = 0; // into `open`, which is sorted by x
            let mut x = 0;
            while x < self.width {
                if !row[x] {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < self.width && row[x] {
                    x += 1;
                }
                let w = x - start;
                while cursor < open.len() && open[cursor][0] < start {
                    done.push(open[cursor]);
                    cursor += 1;
                }
                if cursor < open.len() && open[cursor][0] == start && open[cursor][2] == w {
                    let mut rect = open[cursor];
                    rect[3] += 1;
                    next_open.push(rect);
                    cursor += 1;
                } else {
                    next_open.push([start, y, w, 1]);
                }
            }
            done.extend_from_slice(&open[cursor..]);
            open.clear();
            std::mem::swap(&mut open, &mut next_open);
        }
        done.extend(open);
        done
    }
}

/// The QR code of `data` at level `ec`, in the smallest version that holds it.
///
/// `data` is encoded as its UTF-8 bytes; runs of digits and of the upper-case alphanumeric set
/// get their own shorter segments where that saves space. Kanji mode is never used, and text
/// that is not pure ASCII starts with the ECI designator of UTF-8 (26), so text with Vietnamese
/// letters decodes back to the same UTF-8 (readers that ignore ECI guess UTF-8 too).
///
/// # Errors
///
/// [`PrintError::TooLong`] if a version-40 code at `ec` cannot hold it (about 2,300 bytes at M,
/// 1,600 at Q).
pub fn encode(data: &str, ec: EcLevel) -> Result<QrMatrix, PrintError> {
    let bytes = data.as_bytes();
    let qec = ec.to_qrcode();
    let segments: Vec<Segment> =
        Parser::new(bytes).map(|s| if s.mode == Mode::Kanji { Segment { mode: Mode::Byte, ..s } } else { s }).collect();
    let all_bytes = [Segment { mode: Mode::Byte, begin: 0, end: bytes.len() }];
    // The length fields change size at versions 10 and 27; segment each band at its last version.
    for (first, last) in [(1_i16, 9_i16), (10, 26), (27, 40)] {
        let mut optimized: Vec<Segment> = Optimizer::new(segments.iter().copied(), Version::Normal(last)).collect();
        let mut needed = total_encoded_len(&optimized, Version::Normal(last));
        // The optimizer is greedy: a numeric run inside a URL can cost more than it saves.
        let plain = total_encoded_len(&all_bytes, Version::Normal(last));
        if !bytes.is_empty() && plain < needed {
            optimized = all_bytes.to_vec();
            needed = plain;
        }
        // Non-ASCII text declares UTF-8 (ECI 26: 4 + 8 bits); without it some readers (zbar)
        // guess Shift-JIS or Latin-1 for the bytes.
        let utf8 = !data.is_ascii();
        if utf8 {
            needed += 12;
        }
        for v in first..=last {
            let mut bits = Bits::new(Version::Normal(v));
            if needed > bits.max_len(qec).map_err(qr_error)? {
                continue;
            }
            if utf8 {
                bits.push_eci_designator(UTF8_ECI).map_err(qr_error)?;
            }
            bits.push_segments(bytes, optimized.iter().copied()).map_err(qr_error)?;
            bits.push_terminator(qec).map_err(qr_error)?;
            let version = Version::Normal(v);
            let (data, ec_data) =
                qrcode::ec::construct_codewords(&bits.into_bytes(), version, qec).map_err(qr_error)?;
            let mut canvas = Canvas::new(version, qec);
            canvas.draw_all_functional_patterns();
            canvas.draw_data(&data, &ec_data);
            let width = (17 + 4 * v) as usize;
            let dark = best_mask(&canvas, width);
            return Ok(QrMatrix { width, version: u8::try_from(v).unwrap_or(40), ec, dark });
        }
    }
    Err(PrintError::TooLong { chars: data.chars().count(), bytes: bytes.len(), ec })
}

/// The modules of `canvas` under the mask with the lowest penalty, as dark flags.
///
/// The same choice as `Canvas::apply_best_mask` of the qrcode crate (same scores, first of equal
/// ones), which spends most of the time of an encoding on boxed closures and allocations.
fn best_mask(canvas: &Canvas, width: usize) -> Vec<bool> {
    let mut best: Option<(i64, Vec<bool>)> = None;
    for pattern in MASKS {
        let mut masked = canvas.clone();
        masked.apply_mask(pattern);
        let dark: Vec<bool> = masked.into_colors().into_iter().map(|c| c == qrcode::Color::Dark).collect();
        let score = penalty(&dark, width);
        if best.as_ref().is_none_or(|(lowest, _)| score < *lowest) {
            best = Some((score, dark));
        }
    }
    best.map(|(_, dark)| dark).unwrap_or_default()
}

const MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// The mask penalty of ISO/IEC 18004 section 7.8.3 as the qrcode crate computes it: runs of five
/// or more modules of one colour, 2 x 2 blocks of one colour, finder-like `#.###.#` patterns not
/// followed or preceded by four light modules (outside the matrix counts as light), and the
/// deviation of the dark share from 50 %.
fn penalty(dark: &[bool], width: usize) -> i64 {
    let mut columns = vec![false; dark.len()];
    for (y, row) in dark.chunks_exact(width).enumerate() {
        for (x, &d) in row.iter().enumerate() {
            columns[x * width + y] = d;
        }
    }
    let mut score: i64 = dark.chunks_exact(width).chain(columns.chunks_exact(width)).map(line_penalty).sum();
    // Blocks.
    for (upper, lower) in dark.chunks_exact(width).zip(dark.chunks_exact(width).skip(1)) {
        for x in 0..width - 1 {
            let c = upper[x];
            if upper[x + 1] == c && lower[x] == c && lower[x + 1] == c {
                score += 3;
            }
        }
    }
    // Balance.
    let ratio = (dark.iter().filter(|&&d| d).count() * 200 / dark.len().max(1)) as i64;
    score + (ratio - 100).abs()
}

/// Runs and finder-like patterns of one row or column.
fn line_penalty(line: &[bool]) -> i64 {
    const FINDER: [bool; 7] = [true, false, true, true, true, false, true];
    let mut score = 0;
    let mut run = 1;
    for i in 1..=line.len() {
        if i < line.len() && line[i] == line[i - 1] {
            run += 1;
        } else {
            if run >= 5 {
                score += run - 2;
            }
            run = 1;
        }
    }
    for (j, window) in line.windows(7).enumerate() {
        if window == FINDER {
            let before = &line[j.saturating_sub(4)..j];
            let after = &line[j + 7..(j + 11).min(line.len())];
            if !before.contains(&true) || !after.contains(&true) {
                score += 40;
            }
        }
    }
    score
}

/// The ECI assignment number of UTF-8.
const UTF8_ECI: u32 = 26;

fn qr_error(e: qrcode::types::QrError) -> PrintError {
    PrintError::Qr(e.to_string())
}

/// The QR code of `data` as a standalone SVG document.
///
/// The viewBox is in modules and includes the [`QUIET_ZONE`]: a white square under one `<path>`
/// of the dark modules (`shape-rendering="crispEdges"`). With `size_px` the document gets
/// `width` and `height` attributes of that many pixels; without, it scales to its container.
///
/// # Errors
///
/// [`PrintError::TooLong`] as for [`encode`]; [`PrintError::PixelSize`] if `size_px` is 0 or
/// above [`MAX_SIZE_PX`].
pub fn qr_svg(data: &str, ec: EcLevel, size_px: Option<u32>) -> Result<String, PrintError> {
    if let Some(size) = size_px.filter(|size| !(1..=MAX_SIZE_PX).contains(size)) {
        return Err(PrintError::PixelSize { what: "image size", value: size, max: MAX_SIZE_PX });
    }
    let qr = encode(data, ec)?;
    let side = qr.width_with_quiet_zone();
    let mut svg = String::with_capacity(64 + qr.width * qr.width);
    svg.push_str(r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1""#);
    if let Some(size) = size_px {
        let _ = write!(svg, r#" width="{size}" height="{size}""#);
    }
    let _ = write!(
        svg,
        r##" viewBox="0 0 {side} {side}" shape-rendering="crispEdges"><rect width="{side}" height="{side}" fill="#fff"/><path fill="#000" d=""##
    );
    push_module_path(&mut svg, &qr, QUIET_ZONE);
    svg.push_str("\"/></svg>\n");
    Ok(svg)
}

/// Appends the path data of the dark modules of `qr`, offset by `offset` modules (the quiet
/// zone): one `M x y h w v h h-w z` per rectangle of [`QrMatrix::dark_rects`].
pub(crate) fn push_module_path(out: &mut String, qr: &QrMatrix, offset: usize) {
    for [x, y, w, h] in qr.dark_rects() {
        let _ = write!(out, "M{} {}h{w}v{h}h-{w}z", x + offset, y + offset);
    }
}

/// The QR code of `data` as a PNG: 1-bit grayscale, `module_px` pixels per module, the
/// [`QUIET_ZONE`] included (a version-1 code at 8 px is 200 x 200 pixels).
///
/// # Errors
///
/// [`PrintError::PixelSize`] if `module_px` is not in 1..=[`MAX_MODULE_PX`];
/// [`PrintError::TooLong`] as for [`encode`].
pub fn qr_png(data: &str, ec: EcLevel, module_px: u32) -> Result<Vec<u8>, PrintError> {
    if !(1..=MAX_MODULE_PX).contains(&module_px) {
        return Err(PrintError::PixelSize { what: "module size", value: module_px, max: MAX_MODULE_PX });
    }
    let qr = encode(data, ec)?;
    let px = module_px as usize;
    let side = qr.width_with_quiet_zone() * px;
    let stride = side.div_ceil(8);
    let mut pixels = vec![0xFF_u8; stride * side];
    let mut row = vec![0xFF_u8; stride];
    for y in 0..qr.width {
        row.fill(0xFF);
        for x in (0..qr.width).filter(|&x| qr.is_dark(x, y)) {
            for p in (x + QUIET_ZONE) * px..(x + QUIET_ZONE + 1) * px {
                row[p / 8] &= !(0x80 >> (p % 8));
            }
        }
        let first = (y + QUIET_ZONE) * px;
        for line in pixels[first * stride..(first + px) * stride].chunks_exact_mut(stride) {
            line.copy_from_slice(&row);
        }
    }
    let side = u32::try_from(side).map_err(|e| PrintError::Png(e.to_string()))?;
    let mut out = Vec::with_capacity(pixels.len() / 16 + 256);
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    encoder.set_deflate_compression(png::DeflateCompression::FdeflateUltraFast);
    encoder.set_filter(png::Filter::Up);
    let png_error = |e: png::EncodingError| PrintError::Png(e.to_string());
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(&pixels).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

/// All pages of a sheet as one multi-page A4 PDF.
///
/// QR modules are filled rectangles (vector); text is set in an embedded subset of DejaVu Sans
/// with a ToUnicode map, so it can be searched and copied. See [`sheet_svg`] for the layout and
/// the errors (the same, plus the unexpected [`PrintError::Font`] and [`PrintError::Pdf`]).
///
/// # Errors
///
/// [`PrintError::NoLabels`] for an empty list (no empty page is printed);
/// [`PrintError::Label`] naming the first label whose URL is too long for the code size of the
/// kind (a [`PrintError::ModuleTooSmall`] or [`PrintError::TooLong`] inside).
pub fn sheet_pdf(labels: &[Label], opts: &SheetOptions) -> Result<Vec<u8>, PrintError> {
    let plan = sheet::plan(labels, opts)?;
    pdf::write(&plan)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn ec_level_parses_and_displays() {
        for (s, ec) in
            [("l", EcLevel::L), ("M", EcLevel::M), ("q", EcLevel::Q), ("H", EcLevel::H), ("high", EcLevel::H)]
        {
            assert_eq!(s.parse::<EcLevel>().unwrap(), ec);
        }
        for ec in EcLevel::ALL {
            assert_eq!(ec.to_string().parse::<EcLevel>().unwrap(), ec);
        }
        let err = "x".parse::<EcLevel>().unwrap_err();
        assert_eq!(err.to_string(), "unknown error-correction level \"x\": expected L, M, Q or H");
    }

    #[test]
    fn label_kind_parses_and_displays() {
        for kind in [LabelKind::TreeTag, LabelKind::FruitLabel] {
            assert_eq!(kind.to_string().parse::<LabelKind>().unwrap(), kind);
        }
        assert_eq!("Tree_Tag".parse::<LabelKind>().unwrap(), LabelKind::TreeTag);
        assert!("box".parse::<LabelKind>().unwrap_err().to_string().contains("\"box\""));
        assert_eq!(LabelKind::TreeTag.default_ec(), EcLevel::Q);
        assert_eq!(LabelKind::FruitLabel.default_ec(), EcLevel::M);
    }

    #[test]
    fn dark_rects_cover_exactly_the_dark_modules() {
        for (data, ec) in
            [("https://orchardmap.example.vn/414/9520123456788/254/K7DW3QX", EcLevel::Q), ("1", EcLevel::L)]
        {
            let qr = encode(data, ec).unwrap();
            let mut covered = vec![0_u8; qr.width * qr.width];
            for [x, y, w, h] in qr.dark_rects() {
                for yy in y..y + h {
                    for xx in x..x + w {
                        covered[yy * qr.width + xx] += 1;
                    }
                }
            }
            for y in 0..qr.width {
                for x in 0..qr.width {
                    assert_eq!(covered[y * qr.width + x], u8::from(qr.is_dark(x, y)), "({x}, {y})");
                }
            }
            let runs: usize = (0..qr.width)
                .map(|y| (0..qr.width).filter(|&x| qr.is_dark(x, y) && (x == 0 || !qr.is_dark(x - 1, y))).count())
                .sum();
            assert!(qr.dark_rects().len() < runs, "merging rows must save rectangles");
        }
    }

    #[test]
    fn mask_choice_equals_the_qrcode_crate() {
        for (data, v, ec) in [
            ("https://orchardmap.example.vn/414/9520123456788/254/K7DW3QX", 6, qrcode::EcLevel::Q),
            ("1", 1, qrcode::EcLevel::L),
            ("HELLO WORLD 0123456789", 4, qrcode::EcLevel::H),
            (&"Sầu riêng Ri6, Đắk Lắk. ".repeat(8), 14, qrcode::EcLevel::M),
            (&"x".repeat(700), 20, qrcode::EcLevel::L),
        ] {
            let version = Version::Normal(v);
            let mut bits = Bits::new(version);
            bits.push_byte_data(data.as_bytes()).unwrap();
            bits.push_terminator(ec).unwrap();
            let (data, ec_data) = qrcode::ec::construct_codewords(&bits.into_bytes(), version, ec).unwrap();
            let mut canvas = Canvas::new(version, ec);
            canvas.draw_all_functional_patterns();
            canvas.draw_data(&data, &ec_data);
            let theirs: Vec<bool> =
                canvas.apply_best_mask().into_colors().into_iter().map(|c| c == qrcode::Color::Dark).collect();
            assert!(best_mask(&canvas, (17 + 4 * v) as usize) == theirs, "version {v}");
        }
    }

    #[test]
    fn non_ascii_text_declares_utf8() {
        let matrix = |text: &str, eci: bool| {
            let version = Version::Normal(2);
            let mut bits = Bits::new(version);
            if eci {
                bits.push_eci_designator(26).unwrap();
            }
            bits.push_byte_data(text.as_bytes()).unwrap();
            bits.push_terminator(qrcode::EcLevel::M).unwrap();
            let (data, ec_data) =
                qrcode::ec::construct_codewords(&bits.into_bytes(), version, qrcode::EcLevel::M).unwrap();
            let mut canvas = Canvas::new(version, qrcode::EcLevel::M);
            canvas.draw_all_functional_patterns();
            canvas.draw_data(&data, &ec_data);
            best_mask(&canvas, 25)
        };
        let vietnamese = "vườn Đắk Lắk";
        let qr = encode(vietnamese, EcLevel::M).unwrap();
        assert_eq!(qr.version(), 2);
        assert!(qr.dark == matrix(vietnamese, true));
        let ascii = "orchardmap.example.vn/x";
        assert!(encode(ascii, EcLevel::M).unwrap().dark == matrix(ascii, false));
    }

    #[test]
    fn encode_never_uses_kanji_mode() {
        // Japanese text in UTF-8 forms Shift-JIS byte pairs that the qrcode crate's own
        // segmentation encodes in Kanji mode (readers would then decode Shift-JIS, not UTF-8).
        // Short pairs inside Vietnamese text are merged into byte segments either way.
        let text = "https://orchardmap.example.vn/Sầu-riêng/日本語のテキスト";
        let kanji = Parser::new(text.as_bytes()).optimize(Version::Normal(9)).any(|s| s.mode == Mode::Kanji);
        assert!(kanji, "the test text should trigger Kanji mode in the qrcode crate");
        let naive = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).unwrap();
        let naive: Vec<bool> = naive.to_colors().into_iter().map(|c| c == qrcode::Color::Dark).collect();
        assert!(encode(text, EcLevel::M).unwrap().dark != naive);
    }

    #[test]
    fn versions_grow_with_length_and_level() {
        let url =
            |n: usize| format!("https://orchardmap.example.vn/414/9520123456788/254/K7DW3QX?8030={}", "a".repeat(n));
        let mut last = 0;
        for n in [0, 20, 60, 86, 200, 1000] {
            let v = encode(&url(n), EcLevel::M).unwrap().version();
            assert!(v >= last);
            last = v;
        }
        let data = url(86);
        let versions: Vec<u8> = EcLevel::ALL.iter().map(|&ec| encode(&data, ec).unwrap().version()).collect();
        assert!(versions.windows(2).all(|w| w[0] <= w[1]), "{versions:?}");
        let err = encode(&"x".repeat(3000), EcLevel::H).unwrap_err();
        assert_eq!(
            err.to_string(),
            "URL of 3000 characters (3000 bytes) does not fit a QR code at level H; \
             shorten it or choose a lower error-correction level"
        );
    }
}
