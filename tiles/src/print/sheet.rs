//! The A4 label grid, the placement of everything on it, and the SVG sheet.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::font::{Font, clean, font};
use super::{Label, LabelKind, PrintError, QUIET_ZONE, QrMatrix, SheetOptions, encode, push_module_path};

/// A4 width in millimetres.
pub(crate) const PAGE_W_MM: f64 = 210.0;
/// A4 height in millimetres.
pub(crate) const PAGE_H_MM: f64 = 297.0;

/// The label grid of a page. All lengths in millimetres.
///
/// The cells touch (they are cut apart along their edges); the grid is centred on the A4 page,
/// so the left and right margins are [`Layout::margin_mm`] and the top and bottom margins
/// `(297 - rows * cell_h_mm) / 2`. The QR code, quiet zone included, is a square of
/// [`Layout::qr_mm`] centred horizontally near the top of its cell, with the code and the lines
/// of the label under it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    /// Cells across the page.
    pub columns: u32,
    /// Cells down the page.
    pub rows: u32,
    /// Width of a cell.
    pub cell_w_mm: f64,
    /// Height of a cell.
    pub cell_h_mm: f64,
    /// Side of the QR code including its quiet zone.
    pub qr_mm: f64,
    /// Left and right page margin.
    pub margin_mm: f64,
}

impl Layout {
    /// Labels per page.
    pub fn per_page(&self) -> usize {
        (self.columns * self.rows) as usize
    }

    /// The top (and bottom) page margin.
    pub fn top_margin_mm(&self) -> f64 {
        (PAGE_H_MM - f64::from(self.rows) * self.cell_h_mm) / 2.0
    }

    /// The top-left corner of the cell of the `index`-th label of a page, from the top-left
    /// corner of the page.
    pub fn cell_origin_mm(&self, index: usize) -> (f64, f64) {
        let columns = self.columns.max(1) as usize;
        let (row, column) = (index / columns, index % columns);
        (self.margin_mm + column as f64 * self.cell_w_mm, self.top_margin_mm() + row as f64 * self.cell_h_mm)
    }

    /// The module size of a code of `modules` modules across (quiet zone included).
    pub fn module_mm(&self, modules: usize) -> f64 {
        self.qr_mm / modules as f64
    }
}

/// The grid of a label kind on an A4 page.
///
/// * Tree tags: 4 x 6 cells of 48 x 46.5 mm with a 35 mm code. At level Q a URL of up to 177
///   bytes (version 11, 69 modules with the quiet zone) gets modules of 0.507 mm; a longer one
///   needs version 12 and would fall below the 0.5 mm minimum. A signed tree URL such as
///   `https://orchardmap.example.vn/414/9520123456788/254/K7DW3QX?8030=` + 86 characters (151
///   in all) is version 10 at Q: 0.538 mm.
/// * Fruit labels: 5 x 8 cells of 39 x 35 mm with a 25 mm code. At level M a URL of up to 180
///   bytes (version 9, 61 modules) gets modules of 0.410 mm; version 10 would give 0.385 mm,
///   below the 0.396 mm minimum.
pub fn layout(kind: LabelKind) -> Layout {
    match kind {
        LabelKind::TreeTag => {
            Layout { columns: 4, rows: 6, cell_w_mm: 48.0, cell_h_mm: 46.5, qr_mm: 35.0, margin_mm: 9.0 }
        }
        LabelKind::FruitLabel => {
            Layout { columns: 5, rows: 8, cell_w_mm: 39.0, cell_h_mm: 35.0, qr_mm: 25.0, margin_mm: 7.5 }
        }
    }
}

/// Type sizes and positions inside a cell, in millimetres.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    /// From the top of the cell to the top of the QR code (its quiet zone).
    pub qr_top: f64,
    /// Font size (em) of the code.
    pub code_size: f64,
    /// Font size of the lines.
    pub line_size: f64,
    /// Lines printed at most.
    pub max_lines: usize,
    /// Space kept free of text on the left and right of a cell.
    pub text_pad: f64,
    /// Length of the cut-mark arms from each cell corner.
    pub cut_arm: f64,
    /// Font size of the title and page number.
    pub title_size: f64,
}

/// Line width of cut marks.
pub(crate) const CUT_LINE_MM: f64 = 0.1;

fn style(kind: LabelKind) -> Style {
    match kind {
        LabelKind::TreeTag => Style {
            qr_top: 1.0,
            code_size: 3.8,
            line_size: 2.4,
            max_lines: 2,
            text_pad: 3.0,
            cut_arm: 2.0,
            title_size: 2.5,
        },
        LabelKind::FruitLabel => Style {
            qr_top: 1.0,
            code_size: 3.2,
            line_size: 2.1,
            max_lines: 2,
            text_pad: 2.5,
            cut_arm: 1.5,
            title_size: 2.5,
        },
    }
}

/// One label placed on its page.
pub(crate) struct Placed {
    /// Top-left corner of the cell on its page.
    pub x: f64,
    pub y: f64,
    pub qr: QrMatrix,
    /// The code and lines as printed: cleaned and shortened to the cell.
    pub code: String,
    pub lines: Vec<String>,
}

/// A line of text to draw, anchored at its baseline.
pub(crate) struct Text<'a> {
    pub text: &'a str,
    pub size: f64,
    pub y: f64,
    /// Anchor x and how the text hangs from it.
    pub x: f64,
    pub anchor: Anchor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

/// Everything on a sheet, placed, validated and measured: what the SVG and PDF writers draw.
pub(crate) struct Plan {
    pub layout: Layout,
    pub style: Style,
    pub pages: usize,
    pub labels: Vec<Placed>,
    pub title: Option<String>,
    pub font: &'static Font,
}

/// Encodes, checks and places the labels of a sheet.
pub(crate) fn plan(labels: &[Label], opts: &SheetOptions) -> Result<Plan, PrintError> {
    if labels.is_empty() {
        return Err(PrintError::NoLabels);
    }
    let font = font()?;
    let kind = opts.kind;
    let layout = layout(kind);
    let style = style(kind);
    let ec = opts.ec.unwrap_or(kind.default_ec());
    let per_page = layout.per_page();
    let text_w = layout.cell_w_mm - 2.0 * style.text_pad;
    let mut placed = Vec::with_capacity(labels.len());
    for (i, label) in labels.iter().enumerate() {
        let in_label =
            |error: PrintError| PrintError::Label { number: i + 1, code: label.code.clone(), error: Box::new(error) };
        let qr = encode(&label.url, ec).map_err(in_label)?;
        let modules = qr.width_with_quiet_zone();
        let module_mm = layout.module_mm(modules);
        if module_mm < kind.min_module_mm() - 1e-9 {
            return Err(in_label(PrintError::ModuleTooSmall {
                url_chars: label.url.chars().count(),
                version: qr.version(),
                ec,
                modules,
                qr_mm: layout.qr_mm,
                module_mm,
                min_mm: kind.min_module_mm(),
                kind_plural: kind.plural(),
            }));
        }
        let (x, y) = layout.cell_origin_mm(i % per_page);
        let lines = label
            .lines
            .iter()
            .filter(|line| !clean(line).is_empty())
            .take(style.max_lines)
            .map(|line| font.fit(line, style.line_size, text_w))
            .collect();
        placed.push(Placed { x, y, qr, code: font.fit(&label.code, style.code_size, text_w), lines });
    }
    let pages = labels.len().div_ceil(per_page);
    // The title shares the top margin with the page number at the right.
    let number_w = font.width(&format!("{pages}/{pages}")) * style.title_size;
    let title_w = f64::from(layout.columns) * layout.cell_w_mm - number_w - 5.0;
    let title = opts.title.as_deref().map(|t| font.fit(t, style.title_size, title_w)).filter(|t| !t.is_empty());
    Ok(Plan { layout, style, pages, labels: placed, title, font })
}

impl Plan {
    /// The top-left corner of the QR code of a label (its quiet zone), on its page.
    pub fn qr_origin(&self, label: &Placed) -> (f64, f64) {
        (label.x + (self.layout.cell_w_mm - self.layout.qr_mm) / 2.0, label.y + self.style.qr_top)
    }

    /// The module size of a label's code.
    pub fn module_mm(&self, label: &Placed) -> f64 {
        self.layout.module_mm(label.qr.width_with_quiet_zone())
    }

    /// The code and lines of a label, centred under its QR code.
    pub fn texts<'a>(&self, label: &'a Placed) -> Vec<Text<'a>> {
        let x = label.x + self.layout.cell_w_mm / 2.0;
        let code_y = label.y + self.style.qr_top + self.layout.qr_mm + 0.3 + 0.76 * self.style.code_size;
        let mut texts = Vec::with_capacity(1 + label.lines.len());
        if !label.code.is_empty() {
            texts.push(Text { text: &label.code, size: self.style.code_size, x, y: code_y, anchor: Anchor::Middle });
        }
        for (i, line) in label.lines.iter().enumerate() {
            let y = code_y + (i + 1) as f64 * 1.2 * self.style.line_size;
            texts.push(Text { text: line, size: self.style.line_size, x, y, anchor: Anchor::Middle });
        }
        texts
    }

    /// The page number ("2/5") of page `page` (from 0).
    pub fn page_number(&self, page: usize) -> String {
        format!("{}/{}", page + 1, self.pages)
    }

    /// The title and page number in the top margin of a page.
    pub fn margin_texts<'a>(&'a self, page_number: &'a str) -> Vec<Text<'a>> {
        let y = self.layout.top_margin_mm() - 2.0;
        let left = self.layout.margin_mm;
        let right = left + f64::from(self.layout.columns) * self.layout.cell_w_mm;
        let size = self.style.title_size;
        let mut texts = Vec::with_capacity(2);
        if let Some(title) = &self.title {
            texts.push(Text { text: title, size, x: left, y, anchor: Anchor::Start });
        }
        texts.push(Text { text: page_number, size, x: right, y, anchor: Anchor::End });
        texts
    }

    /// The labels of a page.
    pub fn page_labels(&self, page: usize) -> &[Placed] {
        let per_page = self.layout.per_page();
        let start = (page * per_page).min(self.labels.len());
        let end = ((page + 1) * per_page).min(self.labels.len());
        &self.labels[start..end]
    }

    /// The cut marks of a page as line segments `[x1, y1, x2, y2]`: at every grid corner of a
    /// used cell, short arms along the cell edges that meet there (a cross between four used
    /// cells, an L at the corner of the grid), each drawn once.
    pub fn cut_marks(&self, page: usize) -> Vec<[f64; 4]> {
        let used = self.page_labels(page).len();
        let columns = self.layout.columns as usize;
        let rows = self.layout.rows as usize;
        let is_used = |c: isize, r: isize| {
            c >= 0
                && r >= 0
                && (c as usize) < columns
                && (r as usize) < rows
                && (r as usize) * columns + (c as usize) < used
        };
        let arm = self.style.cut_arm;
        let (x0, y0) = self.layout.cell_origin_mm(0);
        let mut marks = Vec::new();
        for r in 0..=rows as isize {
            for c in 0..=columns as isize {
                let x = x0 + c as f64 * self.layout.cell_w_mm;
                let y = y0 + r as f64 * self.layout.cell_h_mm;
                // Right, left, down, up: each arm lies on the edge between two cells.
                if is_used(c, r - 1) || is_used(c, r) {
                    marks.push([x, y, x + arm, y]);
                }
                if is_used(c - 1, r - 1) || is_used(c - 1, r) {
                    marks.push([x - arm, y, x, y]);
                }
                if is_used(c - 1, r) || is_used(c, r) {
                    marks.push([x, y, x, y + arm]);
                }
                if is_used(c - 1, r - 1) || is_used(c, r - 1) {
                    marks.push([x, y - arm, x, y]);
                }
            }
        }
        marks
    }
}

/// The font stack of SVG text: the font the layout was measured with first.
pub const SVG_FONT_FAMILY: &str = "DejaVu Sans, Noto Sans, sans-serif";

/// All pages of a sheet as one SVG document.
///
/// Units are millimetres: the document is 210 mm wide and `297 * pages` mm high, page `k` (from
/// 0) at `y = k * 297`. Each page is a `<g class="page">` holding a white A4 rectangle, the
/// title and page number (`<text class="title">`, `<text class="page-number">`), the cut marks
/// (`<path class="cut-marks">`) and one `<g class="label">` per label with the code as
/// `<path class="qr">` (module units scaled to millimetres, quiet zone at the origin) and its
/// `<text class="code">` and `<text class="line">`s. Text uses the font family
/// [`SVG_FONT_FAMILY`] and is XML-escaped; lines were shortened with DejaVu Sans metrics.
///
/// # Errors
///
/// [`PrintError::NoLabels`] for an empty list (no empty page is printed);
/// [`PrintError::Label`] naming the first label whose URL is too long for the code size of the
/// kind (a [`PrintError::ModuleTooSmall`] or [`PrintError::TooLong`] inside).
pub fn sheet_svg(labels: &[Label], opts: &SheetOptions) -> Result<String, PrintError> {
    let plan = plan(labels, opts)?;
    let height = PAGE_H_MM * plan.pages as f64;
    let mut svg = String::with_capacity(4096 + plan.labels.len() * 12_000);
    svg.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{PAGE_W_MM}mm" height="{}mm" viewBox="0 0 {PAGE_W_MM} {}">"#,
        num(height),
        num(height)
    );
    if let Some(title) = &plan.title {
        let _ = writeln!(svg, "<title>{}</title>", escape(title));
    }
    let _ = writeln!(svg, r##"<g font-family="{SVG_FONT_FAMILY}" fill="#000">"##);
    for page in 0..plan.pages {
        let _ = writeln!(
            svg,
            r##"<g class="page" id="page-{}" transform="translate(0 {})"><rect class="sheet" width="{PAGE_W_MM}" height="{PAGE_H_MM}" fill="#fff"/>"##,
            page + 1,
            num(PAGE_H_MM * page as f64)
        );
        let number = plan.page_number(page);
        for (i, text) in plan.margin_texts(&number).iter().enumerate() {
            push_text(&mut svg, if i == 0 && plan.title.is_some() { "title" } else { "page-number" }, text);
        }
        svg.push_str(r##"<path class="cut-marks" fill="none" stroke="#000" stroke-width=""##);
        svg.push_str(&num(CUT_LINE_MM));
        svg.push_str(r#"" d=""#);
        for [x1, y1, x2, y2] in plan.cut_marks(page) {
            let _ = write!(svg, "M{} {}L{} {}", num(x1), num(y1), num(x2), num(y2));
        }
        svg.push_str("\"/>\n");
        for label in plan.page_labels(page) {
            let (qx, qy) = plan.qr_origin(label);
            let _ = write!(
                svg,
                r#"<g class="label"><path class="qr" shape-rendering="crispEdges" transform="translate({} {}) scale({})" d=""#,
                num(qx),
                num(qy),
                num_precise(plan.module_mm(label))
            );
            push_module_path(&mut svg, &label.qr, QUIET_ZONE);
            svg.push_str("\"/>");
            for (i, text) in plan.texts(label).iter().enumerate() {
                push_text(&mut svg, if i == 0 && !label.code.is_empty() { "code" } else { "line" }, text);
            }
            svg.push_str("</g>\n");
        }
        svg.push_str("</g>\n");
    }
    svg.push_str("</g>\n</svg>\n");
    Ok(svg)
}

fn push_text(svg: &mut String, class: &str, text: &Text<'_>) {
    let anchor = match text.anchor {
        Anchor::Start => "",
        Anchor::Middle => r#" text-anchor="middle""#,
        Anchor::End => r#" text-anchor="end""#,
    };
    let _ = write!(
        svg,
        r#"<text class="{class}" x="{}" y="{}" font-size="{}"{anchor}>{}</text>"#,
        num(text.x),
        num(text.y),
        num(text.size),
        escape(text.text)
    );
}

/// A length in millimetres with at most three decimals (a micrometre), trailing zeros dropped.
pub(crate) fn num(v: f64) -> String {
    trim_decimals(format!("{v:.3}"))
}

/// A scale factor with six decimals: enough for a 177-module code to stay within a micrometre.
fn num_precise(v: f64) -> String {
    trim_decimals(format!("{v:.6}"))
}

fn trim_decimals(mut s: String) -> String {
    if s.contains('.') {
        let len = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(len);
    }
    if s == "-0" { "0".to_owned() } else { s }
}

/// Text escaped for XML content and attribute values.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(9.0), "9");
        assert_eq!(num(10.5), "10.5");
        assert_eq!(num(0.1), "0.1");
        assert_eq!(num(38.9932), "38.993");
        assert_eq!(num(-0.0001), "0");
        assert_eq!(num_precise(34.0 / 65.0), "0.523077");
    }

    #[test]
    fn escape_covers_markup() {
        assert_eq!(escape("Sầu riêng"), "Sầu riêng");
        assert_eq!(
            escape(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &apos;b&apos;&lt;/script&gt;"
        );
    }

    #[test]
    fn grids_fit_on_a4_and_text_fits_in_cells() {
        for kind in [LabelKind::TreeTag, LabelKind::FruitLabel] {
            let l = layout(kind);
            let s = style(kind);
            let grid_w = f64::from(l.columns) * l.cell_w_mm;
            assert!((2.0 * l.margin_mm + grid_w - PAGE_W_MM).abs() < 1e-9, "{kind}");
            assert!(l.top_margin_mm() >= 5.0, "{kind}: room for the title");
            assert!(l.qr_mm + 2.0 * 3.0 <= l.cell_w_mm, "{kind}: QR clear of the cut marks");
            // The last line's descenders (0.24 em in DejaVu Sans) stay inside the cell.
            let code_y = s.qr_top + l.qr_mm + 0.3 + 0.76 * s.code_size;
            let last = code_y + s.max_lines as f64 * 1.2 * s.line_size + 0.24 * s.line_size;
            assert!(last + 0.5 <= l.cell_h_mm, "{kind}: text ends at {last} mm in a {} mm cell", l.cell_h_mm);
            // Text keeps clear of the cut-mark arms along the cell edges.
            assert!(s.text_pad >= s.cut_arm + 0.5, "{kind}");
            // The title (cap height 0.73 em) stays 4.5 mm from the paper edge, where printers print.
            assert!(l.top_margin_mm() - 2.0 - 0.73 * s.title_size >= 4.5, "{kind}");
            // The code's capitals (0.73 em) start below the QR code.
            assert!(code_y - 0.73 * s.code_size > s.qr_top + l.qr_mm, "{kind}");
        }
    }

    #[test]
    fn grid_sizes_hold_the_urls_of_the_domain() {
        // DOMAIN.md: a 143-character signed URL; ours are 151 (tree) and 124 (lot) characters.
        let sig = "Mx2E7aXQb3yJ0n1s-Wd4kq_LpV9cR8tZfH6oGuA5iBmYe2NvKjT7hS0lDrC4gFwP3xUzI1OQa9bn8c7d6e5f4g3h2i1";
        let tree = format!("https://orchardmap.example.vn/414/9520123456788/254/K7DW3QX?8030={}", &sig[..86]);
        let lot = format!("http://127.0.0.1:8080/l/LK7DW3QX?8030={}", &sig[..86]);
        assert_eq!(tree.len(), 151);
        for (kind, url) in [(LabelKind::TreeTag, &tree), (LabelKind::FruitLabel, &tree), (LabelKind::FruitLabel, &lot)]
        {
            let qr = encode(url, kind.default_ec()).unwrap();
            let module = layout(kind).module_mm(qr.width_with_quiet_zone());
            assert!(module >= kind.min_module_mm(), "{kind}: version {} gives {module} mm", qr.version());
        }
        // Any 130-character URL fits at the default level, however it segments.
        let worst = format!("https://x.vn/{}", "a".repeat(130 - 13));
        for kind in [LabelKind::TreeTag, LabelKind::FruitLabel] {
            let qr = encode(&worst, kind.default_ec()).unwrap();
            assert!(layout(kind).module_mm(qr.width_with_quiet_zone()) >= kind.min_module_mm(), "{kind}");
        }
        // The limits of the doc comment of `layout`.
        for (kind, fits) in [(LabelKind::TreeTag, 177), (LabelKind::FruitLabel, 180)] {
            let module = |n: usize| {
                let qr = encode(&"a".repeat(n), kind.default_ec()).unwrap();
                layout(kind).module_mm(qr.width_with_quiet_zone())
            };
            assert!(module(fits) >= kind.min_module_mm(), "{kind}: {fits} bytes");
            assert!(module(fits + 1) < kind.min_module_mm(), "{kind}: {} bytes", fits + 1);
        }
    }

    #[test]
    fn cut_marks_are_drawn_once_and_only_around_used_cells() {
        let labels: Vec<Label> =
            (0..5).map(|i| Label { url: format!("https://x.vn/{i}"), code: format!("C{i}"), lines: vec![] }).collect();
        let plan = plan(&labels, &SheetOptions { kind: LabelKind::TreeTag, ec: None, title: None }).unwrap();
        let marks = plan.cut_marks(0);
        let mut keys: Vec<String> = marks.iter().map(|m| format!("{m:?}")).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), marks.len(), "duplicate cut marks");
        // 5 cells: a full row of 4 and one below. Two arms (one from each end) on every cell
        // edge next to a used cell: 4 + 4 + 1 horizontal edges and 5 + 2 vertical ones.
        assert_eq!(marks.len(), 2 * (9 + 7));
        let l = plan.layout;
        let arm = plan.style.cut_arm;
        let (x0, y0) = l.cell_origin_mm(0);
        for m in &marks {
            // Every arm starts or ends on a grid corner and lies within the used area.
            assert!(m[0] >= x0 - arm - 1e-9 && m[2] <= x0 + 4.0 * l.cell_w_mm + arm + 1e-9);
            assert!(m[1] >= y0 - 1e-9 && m[3] <= y0 + 2.0 * l.cell_h_mm + arm + 1e-9, "{m:?}");
        }
        // No mark in the quiet zone of any QR code.
        for label in plan.page_labels(0) {
            let (qx, qy) = plan.qr_origin(label);
            for m in &marks {
                let inside = |x: f64, y: f64| x > qx && x < qx + l.qr_mm && y > qy && y < qy + l.qr_mm;
                assert!(!inside(m[0], m[1]) && !inside(m[2], m[3]), "{m:?} in the code of {}", label.code);
            }
        }
        // Cell (0,1) is used, (1,1) is not: the vertical edge between them has arms, the edge
        // right of (1,1) none.
        let has = |m: [f64; 4]| marks.iter().any(|k| k.iter().zip(m).all(|(a, b)| (a - b).abs() < 1e-9));
        let x1 = x0 + l.cell_w_mm;
        let y2 = y0 + 2.0 * l.cell_h_mm;
        assert!(has([x1, y2 - arm, x1, y2]));
        assert!(!has([x1 + l.cell_w_mm, y2 - arm, x1 + l.cell_w_mm, y2]));
    }
}
