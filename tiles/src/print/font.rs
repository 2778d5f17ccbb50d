//! The font of printed labels: DejaVu Sans, embedded in the binary through the `dejavu` crate.
//!
//! Layout measures text with its advance widths (no kerning, no shaping), so the SVG and the PDF
//! shorten the same lines at the same place, and the PDF places glyphs exactly where it measured.

use std::sync::OnceLock;

use ttf_parser::{Face, GlyphId};

use super::PrintError;

/// DejaVu Sans Regular, parsed once per process.
pub(crate) struct Font {
    face: Face<'static>,
    data: &'static [u8],
    units_per_em: f64,
    /// The glyph drawn for characters the font lacks: `?`.
    fallback: u16,
}

static FONT: OnceLock<Result<Font, String>> = OnceLock::new();

/// The label font, or an error if the embedded font cannot be parsed (it always can).
pub(crate) fn font() -> Result<&'static Font, PrintError> {
    FONT.get_or_init(Font::load).as_ref().map_err(|e| PrintError::Font(e.clone()))
}

/// The ellipsis that ends a shortened line.
pub(crate) const ELLIPSIS: char = '\u{2026}';

impl Font {
    fn load() -> Result<Self, String> {
        let data = dejavu::sans::regular();
        let face = Face::parse(data, 0).map_err(|e| format!("cannot parse DejaVu Sans: {e}"))?;
        let fallback = face.glyph_index('?').map_or(0, |g| g.0);
        Ok(Self { units_per_em: f64::from(face.units_per_em()), face, data, fallback })
    }

    /// The font file (TrueType).
    pub(crate) fn data(&self) -> &'static [u8] {
        self.data
    }

    /// The parsed face, for the PDF font descriptor.
    pub(crate) fn face(&self) -> &Face<'static> {
        &self.face
    }

    /// Font units per em.
    pub(crate) fn units_per_em(&self) -> f64 {
        self.units_per_em
    }

    /// The glyph drawn for `c` and the character it stands for in the text layer: `c` itself, or
    /// `?` when the font has no glyph for `c`.
    pub(crate) fn glyph(&self, c: char) -> (u16, char) {
        match self.face.glyph_index(c) {
            Some(g) => (g.0, c),
            None => (self.fallback, '?'),
        }
    }

    /// The advance width of a glyph, in em.
    pub(crate) fn advance(&self, gid: u16) -> f64 {
        f64::from(self.face.glyph_hor_advance(GlyphId(gid)).unwrap_or(0)) / self.units_per_em
    }

    /// The advance width of a character as drawn (see [`Font::glyph`]), in em.
    pub(crate) fn char_width(&self, c: char) -> f64 {
        self.advance(self.glyph(c).0)
    }

    /// The width of a line of text, in em.
    pub(crate) fn width(&self, text: &str) -> f64 {
        text.chars().map(|c| self.char_width(c)).sum()
    }

    /// `text` cleaned of control characters and, if wider than `max_mm` at `size_mm`, shortened
    /// to the longest prefix that fits with an ellipsis appended. A base letter is never separated
    /// from the combining marks that follow it (decomposed Vietnamese text).
    pub(crate) fn fit(&self, text: &str, size_mm: f64, max_mm: f64) -> String {
        let text = clean(text);
        if self.width(&text) * size_mm <= max_mm {
            return text;
        }
        let budget = max_mm / size_mm - self.char_width(ELLIPSIS);
        let mut used = 0.0;
        let mut end = 0;
        for (i, c) in text.char_indices() {
            let w = self.char_width(c);
            if used + w > budget {
                break;
            }
            used += w;
            end = i + c.len_utf8();
        }
        let mut kept = &text[..end];
        while text[kept.len()..].chars().next().is_some_and(is_combining_mark) {
            let mut chars = kept.chars();
            chars.next_back();
            kept = chars.as_str();
        }
        format!("{}{ELLIPSIS}", kept.trim_end())
    }
}

/// Text with every character that cannot be printed on one line (controls, line breaks, the
/// XML-forbidden U+FFFE and U+FFFF) replaced by a space, trimmed.
pub(crate) fn clean(text: &str) -> String {
    let cleaned: String =
        text.chars().map(|c| if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' { ' ' } else { c }).collect();
    cleaned.trim().to_owned()
}

/// Combining diacritical marks (the blocks used by decomposed Latin text).
fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn vietnamese_letters_have_glyphs() {
        let font = font().unwrap();
        for c in "Vườn ông Y Blang Niê Đắk Lắk Sầu riêng Ri6 …".chars() {
            assert_eq!(font.glyph(c).1, c, "DejaVu Sans lacks {c:?}");
            assert_ne!(font.glyph(c).0, 0, "DejaVu Sans lacks {c:?}");
        }
        // A character outside the font falls back to '?'.
        assert_eq!(font.glyph('\u{10FFFD}').1, '?');
    }

    #[test]
    fn fit_keeps_short_text_and_shortens_long_text() {
        let font = font().unwrap();
        assert_eq!(font.fit("  Sầu riêng Ri6\n", 3.0, 40.0), "Sầu riêng Ri6");
        let long = "Vườn ông Y Blang Niê, xã Ea Tiêu, huyện Cư Kuin, tỉnh Đắk Lắk";
        let fitted = font.fit(long, 3.0, 40.0);
        assert!(fitted.ends_with(ELLIPSIS), "{fitted}");
        assert!(font.width(&fitted) * 3.0 <= 40.0, "{fitted}");
        let prefix = fitted.trim_end_matches(ELLIPSIS);
        assert!(long.starts_with(prefix), "{fitted}");
        // One more character would not have fitted.
        let next = long[prefix.len()..].chars().next().unwrap();
        assert!(font.width(&format!("{prefix}{next}{ELLIPSIS}")) * 3.0 > 40.0 || next == ' ');
    }

    #[test]
    fn fit_never_strands_combining_marks() {
        let font = font().unwrap();
        // "Đắk Lắk" decomposed: a + breve + acute.
        let decomposed = "Đa\u{0306}\u{0301}k La\u{0306}\u{0301}k ".repeat(10);
        for max in [5.0, 7.5, 10.0, 13.3, 20.0] {
            let fitted = font.fit(&decomposed, 3.0, max);
            let prefix = fitted.trim_end_matches(ELLIPSIS);
            let rest = &decomposed[prefix.len()..];
            assert!(!rest.chars().next().is_some_and(is_combining_mark), "{max}: {fitted:?}");
        }
    }
}
