//! Server-rendered public pages (tree, lot, tag registration) in Vietnamese, English and Chinese.
//!
//! Pure functions from view models to HTML: no I/O, no request types. The
//! handlers (in `routes`) load the data, decide the [`Genuineness`] of the
//! scanned link, pick the [`Lang`] ([`Lang::from_query`], then
//! [`Lang::negotiate`]) and fill the view models; these functions only draw.
//!
//! Every value from a view model is escaped ([`escape`]); hrefs are also
//! checked ([`safe_href`]). Tree and lot pages have no script and make no
//! request of their own (the mini-map is inline SVG); they are laid out for a
//! 360-pixel-wide phone in sunlight: one column, 18-pixel text, 48-pixel touch
//! targets, dark text on light backgrounds, colour always with an icon and words.

pub mod i18n;
mod lot;
mod minimap;
mod register;
mod tree;

use chrono::NaiveDate;

pub use i18n::{Lang, Msg, t};
pub use lot::lot_page;
pub use register::register_page;
pub use tree::tree_page;

/// What the signature of the scanned link says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Genuineness {
    /// Signed by us, and the signature matches the code.
    Genuine,
    /// No signature in the link.
    Unsigned,
    /// A signature that does not match the code: altered or forged.
    Tampered,
    /// The code was revoked (recalled, or found copied).
    Revoked,
}

/// Hrefs of the same page in each language (the handler builds them, e.g.
/// `?lang=en`, keeping the signature parameter).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Switch {
    /// The page in Vietnamese.
    pub vi: String,
    /// The page in English.
    pub en: String,
    /// The page in Chinese.
    pub zh: String,
}

impl Switch {
    /// The href of the page in `lang`.
    pub fn href(&self, lang: Lang) -> &str {
        match lang {
            Lang::Vi => &self.vi,
            Lang::En => &self.en,
            Lang::Zh => &self.zh,
        }
    }
}

/// Where a tree or a lot's fruit grows. Public facts only: no owner.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlaceView {
    /// The orchard's name.
    pub orchard_name: String,
    /// Commune (xã).
    pub commune: String,
    /// District (huyện).
    pub district: String,
    /// Province (tỉnh).
    pub province: String,
    /// Planting-area code (mã số vùng trồng), if the orchard has one.
    pub planting_area_code: Option<String>,
}

/// What the mini-map draws; coordinates are (lon, lat) in WGS 84.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MiniMap {
    /// The orchard boundary ring (may be empty).
    pub boundary: Vec<(f64, f64)>,
    /// Trees to mark.
    pub points: Vec<(f64, f64)>,
    /// The tree to mark larger, if any.
    pub highlight: Option<(f64, f64)>,
    /// Link to the full (MapLibre) map; empty for none.
    pub full_map_href: String,
}

/// One care record of a tree, as the tree page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView {
    /// The day of the work or observation.
    pub date: NaiveDate,
    /// The record kind's serialised name (`observation`, `fertiliser`, `spray`,
    /// `flowering`, `fruit_set`, `harvest`, `photo`); others are shown as given.
    pub kind: String,
    /// The details, already composed, e.g. `Abamectin 20 ml/16 l, PHI 7 d`.
    pub summary: String,
}

/// The public page of a tree tag.
#[derive(Debug, Clone, PartialEq)]
pub struct TreePage {
    /// The tag code.
    pub code: String,
    /// Cultivar name.
    pub cultivar: String,
    /// Year planted, if known.
    pub planted_year: Option<i32>,
    /// Health.
    pub health: geo_core::Health,
    /// Height in metres, if measured.
    pub height_m: Option<f64>,
    /// Where.
    pub place: PlaceView,
    /// The mini-map (the tree highlighted).
    pub map: MiniMap,
    /// Recent records, newest first, at most 10.
    pub records: Vec<RecordView>,
    /// The latest photo, if any.
    pub photo_url: Option<String>,
    /// What the link's signature says.
    pub genuineness: Genuineness,
    /// Warnings about the scans of this code, already worded; may be empty.
    pub flags: Vec<String>,
    /// How many times the code was scanned.
    pub scans: u64,
    /// The page in each language.
    pub switch: Switch,
    /// The canonical URL of the page.
    pub canonical_url: String,
    /// The tag's QR code as SVG.
    pub qr_svg_href: String,
}

/// How many trees of one cultivar a lot's fruit came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CultivarCount {
    /// Cultivar name.
    pub cultivar: String,
    /// Number of trees.
    pub trees: usize,
}

/// The public page of a harvest lot (the QR label on a box of fruit).
#[derive(Debug, Clone, PartialEq)]
pub struct LotPage {
    /// The lot code.
    pub code: String,
    /// Where the fruit grew.
    pub place: PlaceView,
    /// The mini-map (the lot's trees).
    pub map: MiniMap,
    /// Day of harvest.
    pub harvest_date: NaiveDate,
    /// Net weight in kilograms.
    pub weight_kg: f64,
    /// Boxes packed, if known.
    pub boxes: Option<u32>,
    /// Packing-house code (mã số cơ sở đóng gói).
    pub packing_house: Option<String>,
    /// For the domestic market only.
    pub domestic: bool,
    /// Cultivars with their tree counts.
    pub cultivars: Vec<CultivarCount>,
    /// Number of trees.
    pub tree_count: usize,
    /// Laboratory results.
    pub lab_results: Vec<geo_core::LabResult>,
    /// Pre-harvest-interval checks of the trees' sprays.
    pub phi: Vec<geo_core::PhiCheck>,
    /// What the link's signature says.
    pub genuineness: Genuineness,
    /// Why the labels were revoked, if they were.
    pub revoked_reason: Option<String>,
    /// Warnings about the scans of this code, already worded; may be empty.
    pub flags: Vec<String>,
    /// How many times the code was scanned.
    pub scans: u64,
    /// The page in each language.
    pub switch: Switch,
    /// The canonical URL of the page.
    pub canonical_url: String,
    /// The product's GTIN, if any.
    pub gtin: Option<String>,
}

/// The page a volunteer sees on scanning a tag not yet on a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterPage {
    /// The tag code.
    pub code: String,
    /// Cultivars offered as buttons (an "other" field takes the rest).
    pub cultivars: Vec<String>,
    /// The current year (bounds the planting year; the default is five years before).
    pub this_year: i32,
    /// Where the form POSTs its JSON.
    pub register_endpoint: String,
    /// The page in each language.
    pub switch: Switch,
    /// The tag is already on a tree; only an admin may re-assign it.
    pub assigned: bool,
}

/// A page that only says something went wrong (unknown code, bad link, ...):
/// `title_key` as the heading, `detail` under it (already in `lang`, e.g.
/// `t(lang, Msg::UnknownCodeDetail)`), and the HTTP `status` in small print.
/// Keys meant for the title: [`Msg::UnknownCode`], [`Msg::BadLink`],
/// [`Msg::TooManyRequests`], [`Msg::ServerTrouble`].
pub fn message_page(lang: Lang, switch: &Switch, status: u16, title_key: Msg, detail: &str) -> String {
    let title = t(lang, title_key);
    let body = format!(
        "<h1>{}</h1><p>{}</p><p class=\"small\">{}</p><p><a class=\"button\" href=\"/\">{}</a></p>",
        escape(title),
        escape(detail),
        escape(&i18n::fill(lang, Msg::ErrorCode, &[("status", &status.to_string())])),
        escape(t(lang, Msg::GoToMap)),
    );
    document(lang, title, switch, Head { canonical: None, noindex: true }, &body, "")
}

/// Escapes text for HTML element content and (double- or single-quoted) attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `href` if it is relative or http(s); `#` for anything else (`javascript:`,
/// `data:`): the handlers build the hrefs, this is a second line of defence.
/// The result still needs [`escape`].
pub(crate) fn safe_href(href: &str) -> &str {
    let h = href.trim();
    let scheme_end = h.find([':', '/', '?', '#']);
    match scheme_end {
        Some(i) if h[i..].starts_with(':') => {
            let scheme = h[..i].to_ascii_lowercase();
            if scheme == "http" || scheme == "https" { h } else { "#" }
        }
        // Control characters could smuggle a scheme past browsers' parsers.
        _ if h.chars().any(char::is_control) => "#",
        _ => h,
    }
}

/// Extra `<head>` content of a page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head<'a> {
    /// `<link rel="canonical">`.
    pub(crate) canonical: Option<&'a str>,
    /// Keep search engines out (error and registration pages).
    pub(crate) noindex: bool,
}

/// The style sheet of every page. Mobile first: the base rules are for a
/// 360-pixel phone; wider screens only get the tables back.
const CSS: &str = "\
*{box-sizing:border-box}\
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}\
body{margin:0;font:18px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans','Noto Sans SC','PingFang SC','Microsoft YaHei',sans-serif;color:#111;background:#fff}\
main{max-width:40rem;margin:0 auto;padding:0 12px 16px}\
a{color:#0b3d91}\
.langs{display:flex;flex-wrap:wrap;justify-content:center;align-items:center;background:#f1f1f1;border-bottom:2px solid #ccc}\
.langs a{display:inline-flex;align-items:center;min-height:48px;padding:0 12px;font-weight:600}\
.langs a[aria-current]{color:#111;text-decoration:none;border-bottom:4px solid #111}\
.langs span{color:#555}\
h1{font-size:1.5rem;line-height:1.25;margin:16px 0 12px;overflow-wrap:anywhere}\
h2{font-size:1.25rem;margin:24px 0 8px}\
.small{font-size:.9rem;color:#444}\
.banner{display:flex;gap:12px;align-items:flex-start;padding:12px;border:3px solid;border-radius:8px;margin:12px 0}\
.banner svg{flex:none;width:40px;height:40px}\
.banner strong{display:block;font-size:1.2rem;line-height:1.3}\
.banner p{margin:6px 0 0}\
.genuine{background:#e6f4e9;border-color:#1b7a34;color:#0a3a18}\
.unsigned{background:#ececec;border-color:#555;color:#1d1d1d}\
.tampered,.revoked{background:#fdeceb;border-color:#b3261e;color:#5a0d08}\
.flags{background:#fff3c4;border:3px solid #a35f00;color:#3a2300;border-radius:8px;padding:12px;margin:12px 0}\
.flags ul{margin:6px 0 0;padding-left:1.2em}\
dl.facts{display:grid;grid-template-columns:minmax(6.5em,max-content) 1fr;gap:6px 12px;margin:12px 0}\
dl.facts dt{color:#444}\
dl.facts dd{margin:0;font-weight:600;overflow-wrap:anywhere}\
.dot{display:inline-block;width:14px;height:14px;border-radius:50%;margin-right:6px;vertical-align:-1px;border:1px solid #0006}\
.h-good{background:#1b7a34}.h-fair{background:#c98a00}.h-poor{background:#d35400}.h-dead{background:#555}\
.bigcode{border:3px solid #111;border-radius:8px;padding:8px 12px;margin:12px 0}\
.bigcode span{display:block;font-size:.95rem;color:#333}\
.bigcode strong{display:block;font:700 1.6rem/1.25 ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere}\
.bigcode.second strong{font-size:1.25rem}\
.badge{display:inline-block;padding:8px 16px;border-radius:24px;background:#5b1a8c;color:#fff;font-weight:700}\
.ok{color:#0a5a20;font-weight:700}.bad{color:#a50e0e;font-weight:700}\
table.stack{border-collapse:collapse;width:100%}\
table.stack thead{position:absolute;left:-9999px}\
table.stack tr{display:block;border:2px solid #ccc;border-radius:8px;margin:8px 0;padding:6px 10px}\
table.stack td{display:flex;justify-content:space-between;gap:12px;padding:3px 0;text-align:right;overflow-wrap:anywhere}\
table.stack td::before{content:attr(data-label);color:#444;text-align:left}\
@media (min-width:44rem){\
table.stack thead{position:static}\
table.stack tr{display:table-row;border:0}\
table.stack th,table.stack td{display:table-cell;text-align:left;padding:8px 6px;border-bottom:1px solid #bbb;vertical-align:top}\
table.stack td::before{content:none}}\
.map{margin:12px 0}\
.map svg{display:block;width:100%;height:auto;border:2px solid #999;border-radius:8px}\
.map figcaption p{margin:8px 0}\
.button,button{display:inline-flex;align-items:center;justify-content:center;min-height:48px;padding:8px 16px;font:inherit;font-weight:700;border-radius:8px;border:2px solid #0b3d91;background:#0b3d91;color:#fff;text-decoration:none;cursor:pointer}\
.button.secondary,button.secondary{background:#fff;color:#0b3d91}\
button:disabled{opacity:.5;cursor:default}\
.wide{width:100%}\
ol.records{list-style:none;padding:0;margin:8px 0}\
ol.records li{border-left:4px solid #1b7a34;padding:4px 0 4px 10px;margin:8px 0;overflow-wrap:anywhere}\
ol.records time{font-variant-numeric:tabular-nums;color:#333;margin-right:8px}\
img.photo{display:block;max-width:100%;height:auto;border-radius:8px;margin:12px 0}\
footer{color:#444;font-size:.9rem;text-align:center;padding:16px 12px 24px;overflow-wrap:anywhere}\
ul.cultivars{padding-left:1.2em}\
fieldset{border:2px solid #bbb;border-radius:8px;margin:16px 0;padding:8px 12px 12px}\
legend{font-weight:700;font-size:1.1rem;padding:0 4px}\
label{display:block;font-weight:600;margin:12px 0 4px}\
input{font:inherit}\
input[type=text],input[type=number],input[type=password]{width:100%;min-height:48px;padding:8px;border:2px solid #555;border-radius:8px;background:#fff;color:#111}\
input[type=file]{min-height:48px;max-width:100%}\
label.check{display:flex;gap:12px;align-items:center;min-height:48px;font-weight:600}\
label.check input{width:28px;height:28px;flex:none}\
.choices{display:grid;grid-template-columns:repeat(auto-fill,minmax(8.5rem,1fr));gap:8px}\
button.choice{min-height:56px;background:#fff;color:#111;border-color:#555}\
button.choice[aria-pressed=true]{background:#0b3d91;color:#fff;border-color:#0b3d91;box-shadow:0 0 0 3px #9bb7e8}\
.gps{font-variant-numeric:tabular-nums;font-size:1.1rem;margin:4px 0}\
.acc-good{color:#0a5a20;font-weight:700}.acc-fair{color:#8a5a00;font-weight:700}.acc-poor{color:#a50e0e;font-weight:700}\
.err{color:#a50e0e;font-weight:700;margin:6px 0;white-space:pre-line}\
.hint{font-size:.95rem;color:#444;margin:4px 0}\
[hidden]{display:none!important}";

/// A whole HTML document: head, the language switch, `body` in `<main>`, then `after_main` (scripts).
pub(crate) fn document(
    lang: Lang,
    title: &str,
    switch: &Switch,
    head: Head<'_>,
    body: &str,
    after_main: &str,
) -> String {
    let mut html = String::with_capacity(CSS.len() + body.len() + after_main.len() + 1024);
    html.push_str(&format!(
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light\"><meta name=\"referrer\" content=\"same-origin\">\
         <title>{} · orchardmap</title>",
        lang.code(),
        escape(title)
    ));
    if head.noindex {
        html.push_str("<meta name=\"robots\" content=\"noindex\">");
    }
    if let Some(c) = head.canonical.filter(|c| !c.trim().is_empty()) {
        html.push_str(&format!("<link rel=\"canonical\" href=\"{}\">", escape(safe_href(c))));
    }
    for l in Lang::ALL {
        let href = switch.href(l);
        if !href.trim().is_empty() {
            html.push_str(&format!(
                "<link rel=\"alternate\" hreflang=\"{}\" href=\"{}\">",
                l.code(),
                escape(safe_href(href))
            ));
        }
    }
    html.push_str("<style>");
    html.push_str(CSS);
    html.push_str("</style></head><body>\n");
    html.push_str(&language_switch(lang, switch));
    html.push_str("\n<main>\n");
    html.push_str(body);
    html.push_str("\n</main>\n<footer>orchardmap</footer>\n");
    html.push_str(after_main);
    html.push_str("</body></html>\n");
    html
}

/// "Tiếng Việt · English · 中文", the current language marked `aria-current`.
fn language_switch(lang: Lang, switch: &Switch) -> String {
    let links: Vec<String> = Lang::ALL
        .iter()
        .map(|&l| {
            let current = if l == lang { " aria-current=\"page\"" } else { "" };
            format!(
                "<a href=\"{}\" lang=\"{}\" hreflang=\"{}\"{current}>{}</a>",
                escape(safe_href(switch.href(l))),
                l.code(),
                l.code(),
                escape(l.native_name())
            )
        })
        .collect();
    format!(
        "<nav class=\"langs\" aria-label=\"{}\">{}</nav>",
        escape(t(lang, Msg::LanguageSwitch)),
        links.join("<span aria-hidden=\"true\">·</span>")
    )
}

/// What a page is about, for the genuineness wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject {
    /// A tree tag.
    Tree,
    /// A lot label on a box.
    Lot,
}

/// The genuineness banner: colour, icon and words.
pub(crate) fn genuineness_banner(lang: Lang, g: Genuineness, subject: Subject, reason: Option<&str>) -> String {
    // Icons: a tick in a circle, a question mark in a circle, a cross in a circle, a no-entry sign.
    let (class, icon, title, explain) = match g {
        Genuineness::Genuine => (
            "genuine",
            "<circle cx=\"20\" cy=\"20\" r=\"18\" fill=\"#1b7a34\"/>\
             <path d=\"M11 21l6 6 12-13\" fill=\"none\" stroke=\"#fff\" stroke-width=\"4\" stroke-linecap=\"round\" stroke-linejoin=\"round\"/>",
            Msg::GenuineTitle,
            match subject {
                Subject::Tree => Msg::GenuineExplainTree,
                Subject::Lot => Msg::GenuineExplainLot,
            },
        ),
        Genuineness::Unsigned => (
            "unsigned",
            "<circle cx=\"20\" cy=\"20\" r=\"18\" fill=\"#555\"/>\
             <path d=\"M14.5 15a5.5 5.5 0 1 1 7.5 5.1c-1.3.6-2 1.5-2 2.9v1.5\" fill=\"none\" stroke=\"#fff\" stroke-width=\"3.5\" stroke-linecap=\"round\"/>\
             <circle cx=\"20\" cy=\"30.5\" r=\"2.3\" fill=\"#fff\"/>",
            Msg::UnsignedTitle,
            Msg::UnsignedExplain,
        ),
        Genuineness::Tampered => (
            "tampered",
            "<circle cx=\"20\" cy=\"20\" r=\"18\" fill=\"#b3261e\"/>\
             <path d=\"M13 13l14 14M27 13L13 27\" stroke=\"#fff\" stroke-width=\"4\" stroke-linecap=\"round\"/>",
            Msg::TamperedTitle,
            Msg::TamperedExplain,
        ),
        Genuineness::Revoked => (
            "revoked",
            "<circle cx=\"20\" cy=\"20\" r=\"18\" fill=\"#b3261e\"/>\
             <rect x=\"9\" y=\"17\" width=\"22\" height=\"6\" rx=\"1.5\" fill=\"#fff\"/>",
            Msg::RevokedTitle,
            match subject {
                Subject::Tree => Msg::RevokedExplainTree,
                Subject::Lot => Msg::RevokedExplainLot,
            },
        ),
    };
    let mut html = format!(
        "<section class=\"banner {class}\" role=\"status\"><svg viewBox=\"0 0 40 40\" aria-hidden=\"true\">{icon}</svg>\
         <div><strong>{}</strong><p>{}</p>",
        escape(t(lang, title)),
        escape(t(lang, explain))
    );
    if g == Genuineness::Revoked {
        if let Some(r) = reason.map(str::trim).filter(|r| !r.is_empty()) {
            html.push_str(&format!(
                "<p><b>{}</b></p>",
                escape(&i18n::fill(lang, Msg::RevokedReason, &[("reason", r)]))
            ));
        }
    }
    html.push_str("</div></section>");
    html
}

/// The amber box of scan warnings; nothing when there are none.
pub(crate) fn flags_box(lang: Lang, flags: &[String]) -> String {
    let items: Vec<String> =
        flags.iter().map(|f| f.trim()).filter(|f| !f.is_empty()).map(|f| format!("<li>{}</li>", escape(f))).collect();
    if items.is_empty() {
        return String::new();
    }
    format!(
        "<section class=\"flags\" role=\"alert\"><strong>⚠ {}</strong><ul>{}</ul></section>",
        escape(t(lang, Msg::FlagsHeading)),
        items.concat()
    )
}

/// One `<dt>`/`<dd>` pair; `value_html` must already be escaped.
pub(crate) fn fact(lang: Lang, key: Msg, value_html: &str) -> String {
    format!("<dt>{}</dt><dd>{value_html}</dd>", escape(t(lang, key)))
}

/// The orchard and its commune, district and province as facts.
pub(crate) fn place_facts(lang: Lang, place: &PlaceView) -> String {
    let mut out = String::new();
    for (key, value) in [
        (Msg::Orchard, &place.orchard_name),
        (Msg::Commune, &place.commune),
        (Msg::District, &place.district),
        (Msg::Province, &place.province),
    ] {
        if !value.trim().is_empty() {
            out.push_str(&fact(lang, key, &escape(value)));
        }
    }
    out
}

/// The scan count sentence.
pub(crate) fn scans_line(lang: Lang, scans: u64) -> String {
    format!("<p class=\"small\">{}</p>", escape(&i18n::count(lang, Msg::ScansOne, Msg::ScansMany, scans)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use geo_core::{Analyte, Health, LabResult, PhiCheck};

    const EVIL: &str = "<script>alert(1)</script>\"onload='x'";

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn switch() -> Switch {
        Switch { vi: "?lang=vi&sig=abc".into(), en: "?lang=en&sig=abc".into(), zh: "?lang=zh&sig=abc".into() }
    }

    fn place(name: &str) -> PlaceView {
        PlaceView {
            orchard_name: name.into(),
            commune: "Ea Kao".into(),
            district: "Buôn Ma Thuột".into(),
            province: "Đắk Lắk".into(),
            planting_area_code: Some("VN-DLOR-0123".into()),
        }
    }

    fn map() -> MiniMap {
        MiniMap {
            boundary: vec![(108.050, 12.700), (108.052, 12.700), (108.052, 12.702), (108.050, 12.702)],
            points: vec![(108.0505, 12.7005), (108.0510, 12.7010), (108.0515, 12.7015)],
            highlight: Some((108.0510, 12.7010)),
            full_map_href: "/?tree=K7DW3QX#18/12.701/108.051".into(),
        }
    }

    fn tree(evil: &str) -> TreePage {
        TreePage {
            code: "K7DW3QX".into(),
            cultivar: format!("Ri6 {evil}"),
            planted_year: Some(2018),
            health: Health::Fair,
            height_m: Some(8.5),
            place: place(&format!("Vườn A {evil}")),
            map: map(),
            records: vec![
                RecordView {
                    date: date(2026, 5, 2),
                    kind: "spray".into(),
                    summary: format!("Abamectin 20 ml/16 l, PHI 7 d {evil}"),
                },
                RecordView { date: date(2026, 4, 1), kind: "fruit_set".into(), summary: "120 trái".into() },
                RecordView { date: date(2026, 3, 1), kind: format!("mystery{evil}"), summary: String::new() },
            ],
            photo_url: Some("/api/photos/abc".into()),
            genuineness: Genuineness::Genuine,
            flags: vec![format!("Scanned in 14 provinces {evil}")],
            scans: 1234,
            switch: switch(),
            canonical_url: "https://orchardmap.example/t/K7DW3QX".into(),
            qr_svg_href: "/api/trees/K7DW3QX/qr.svg".into(),
        }
    }

    fn lot(evil: &str) -> LotPage {
        LotPage {
            code: "LK7DW3QX".into(),
            place: place(&format!("Vườn A {evil}")),
            map: map(),
            harvest_date: date(2026, 6, 10),
            weight_kg: 1234.5,
            boxes: Some(80),
            packing_house: Some(format!("VN-DLPH-0042{evil}")),
            domestic: false,
            cultivars: vec![
                CultivarCount { cultivar: format!("Ri6{evil}"), trees: 120 },
                CultivarCount { cultivar: "Monthong".into(), trees: 1 },
            ],
            tree_count: 121,
            lab_results: vec![
                LabResult {
                    analyte: Analyte::Cadmium,
                    value_mg_per_kg: Some(0.012),
                    laboratory: format!("Vinacontrol VILAS 1234{evil}"),
                    tested_on: date(2026, 6, 9),
                    report_no: Some(format!("R-77{evil}")),
                },
                LabResult {
                    analyte: Analyte::AuramineO,
                    value_mg_per_kg: None,
                    laboratory: "QUATEST 3".into(),
                    tested_on: date(2026, 6, 9),
                    report_no: None,
                },
            ],
            phi: vec![
                PhiCheck {
                    product: format!("Abamectin{evil}"),
                    last_sprayed: date(2026, 5, 1),
                    phi_days: 7,
                    harvest_allowed_from: date(2026, 5, 8),
                    passed: true,
                    trees: 3,
                },
                PhiCheck {
                    product: "Mancozeb".into(),
                    last_sprayed: date(2026, 6, 1),
                    phi_days: 21,
                    harvest_allowed_from: date(2026, 6, 22),
                    passed: false,
                    trees: 1,
                },
            ],
            genuineness: Genuineness::Revoked,
            revoked_reason: Some(format!("copies found {evil}")),
            flags: vec![format!("Scanned in 9 cities {evil}")],
            scans: 1,
            switch: switch(),
            canonical_url: "https://orchardmap.example/01/08930000000001/10/LK7DW3QX".into(),
            gtin: Some("08930000000001".into()),
        }
    }

    fn register(evil: &str, assigned: bool) -> RegisterPage {
        RegisterPage {
            code: format!("K7DW3QX{evil}"),
            cultivars: vec!["Ri6".into(), "Monthong".into(), format!("Black Thorn</script><script>alert(1)//{evil}")],
            this_year: 2026,
            register_endpoint: "/t/K7DW3QX/register".into(),
            switch: switch(),
            assigned,
        }
    }

    /// The markup outside `<style>` and `<script>`, where a placeholder left
    /// unfilled would show.
    fn visible_markup(html: &str) -> String {
        let mut out = String::new();
        let mut rest = html;
        while let Some(i) = rest.find("<s") {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            let end = if tail.starts_with("<style") {
                tail.find("</style>").map(|e| e + 8)
            } else if tail.starts_with("<script") {
                tail.find("</script>").map(|e| e + 9)
            } else {
                Some(2)
            };
            let end = end.expect("unclosed style or script");
            if end == 2 {
                out.push_str("<s");
            }
            rest = &tail[end..];
        }
        out.push_str(rest);
        out
    }

    fn assert_no_raw(html: &str, what: &str) {
        assert!(!html.contains("<script>alert"), "{what}: raw script tag");
        assert!(!html.contains("\"onload="), "{what}: raw attribute break-out");
        assert!(!html.contains("'x'"), "{what}: raw single quotes");
        assert!(!html.contains("<script><"), "{what}");
    }

    #[test]
    fn every_text_field_is_escaped() {
        for lang in Lang::ALL {
            let html = tree_page(&tree(EVIL), lang);
            assert_no_raw(&html, "tree");
            assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;onload=&#39;x&#39;"));
            // Each of the evil fields made it to the page, escaped.
            assert!(html.matches("&lt;script&gt;alert(1)").count() >= 4, "tree fields missing");
            let html = lot_page(&lot(EVIL), lang);
            assert_no_raw(&html, "lot");
            // Orchard, packing house, cultivar, laboratory, report, product, reason, flag.
            assert!(html.matches("&lt;script&gt;alert(1)").count() >= 8, "lot fields missing");
            let html = message_page(lang, &switch(), 404, Msg::UnknownCode, EVIL);
            assert_no_raw(&html, "message");
            assert!(html.contains("&lt;script&gt;"));
        }
    }

    #[test]
    fn hostile_hrefs_are_neutralised() {
        let mut p = tree("");
        p.map.full_map_href = "javascript:alert(1)".into();
        p.qr_svg_href = " JavaScript:alert(1)".into();
        p.photo_url = Some("data:text/html,<script>alert(1)</script>".into());
        p.switch.en = "\"><script>alert(1)</script>".into();
        p.canonical_url = "java\tscript:alert(1)".into();
        let html = tree_page(&p, Lang::En);
        assert!(!html.to_lowercase().contains("javascript:"), "{html}");
        assert!(!html.contains("data:text"));
        assert!(!html.contains("<script>alert"));
        assert_eq!(safe_href("https://x.example/a"), "https://x.example/a");
        assert_eq!(safe_href("/t/A?lang=en"), "/t/A?lang=en");
        assert_eq!(safe_href("?lang=zh&sig=a:b"), "?lang=zh&sig=a:b");
        assert_eq!(safe_href("vbscript:x"), "#");
    }

    #[test]
    fn each_genuineness_state_shows_its_own_words() {
        let states = [
            (Genuineness::Genuine, Msg::GenuineTitle, "genuine"),
            (Genuineness::Unsigned, Msg::UnsignedTitle, "unsigned"),
            (Genuineness::Tampered, Msg::TamperedTitle, "tampered"),
            (Genuineness::Revoked, Msg::RevokedTitle, "revoked"),
        ];
        for lang in Lang::ALL {
            for (g, title, class) in states {
                let mut tp = tree("");
                tp.genuineness = g;
                let mut lp = lot("");
                lp.genuineness = g;
                for html in [tree_page(&tp, lang), lot_page(&lp, lang)] {
                    assert!(html.contains(&escape(t(lang, title))), "{lang:?} {g:?}");
                    assert!(html.contains(&format!("class=\"banner {class}\"")), "{lang:?} {g:?}");
                    for (other, other_title, _) in states {
                        if other != g {
                            assert!(!html.contains(&escape(t(lang, other_title))), "{lang:?} {g:?} shows {other:?}");
                        }
                    }
                }
                let lot_html = lot_page(&lp, lang);
                let reason = escape(&i18n::fill(lang, Msg::RevokedReason, &[("reason", "copies found")]));
                assert_eq!(lot_html.contains(&reason), g == Genuineness::Revoked, "{lang:?} {g:?} reason");
            }
        }
        assert!(tree_page(&tree(""), Lang::En).contains("not that this tag is the original"));
        let mut lp = lot("");
        lp.genuineness = Genuineness::Genuine;
        assert!(lot_page(&lp, Lang::En).contains("not that this box is the original"));
    }

    #[test]
    fn three_languages_render_complete_pages() {
        for lang in Lang::ALL {
            let pages = [
                ("tree", tree_page(&tree(""), lang)),
                ("lot", lot_page(&lot(""), lang)),
                ("register", register_page(&register("", true), lang)),
                ("message", message_page(lang, &switch(), 404, Msg::UnknownCode, t(lang, Msg::UnknownCodeDetail))),
            ];
            for (name, html) in pages {
                assert!(html.starts_with("<!doctype html>"), "{name}");
                assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())), "{name} {lang:?}");
                assert!(html.contains("name=\"viewport\""), "{name}");
                assert!(html.trim_end().ends_with("</html>"), "{name}");
                let visible = visible_markup(&html);
                assert!(!visible.contains('{') && !visible.contains('}'), "{name} {lang:?}: unfilled placeholder");
                // The switch: three links, the current one marked.
                for l in Lang::ALL {
                    assert!(html.contains(l.native_name()), "{name}");
                    let marked = format!("hreflang=\"{}\" aria-current=\"page\"", l.code());
                    assert_eq!(html.contains(&marked), l == lang, "{name} {lang:?} {l:?}");
                }
                if name != "register" {
                    assert!(!html.contains("<script"), "{name}: script on a public page");
                }
                assert!(
                    !html.contains("src=\"http") && !html.contains("rel=\"stylesheet\""),
                    "{name}: external request"
                );
            }
            let tree_html = tree_page(&tree(""), lang);
            for key in [Msg::Cultivar, Msg::PlantedYear, Msg::Health, Msg::HealthFair, Msg::RecentCare, Msg::KindSpray]
            {
                assert!(tree_html.contains(&escape(t(lang, key))), "tree {lang:?} {key:?}");
            }
            let lot_html = lot_page(&lot(""), lang);
            for key in [
                Msg::PlantingAreaCode,
                Msg::PackingHouseCode,
                Msg::HarvestDate,
                Msg::LabResults,
                Msg::Cadmium,
                Msg::AuramineO,
                Msg::NotDetected,
                Msg::PhiTitle,
                Msg::Passed,
                Msg::NotPassed,
            ] {
                assert!(lot_html.contains(&escape(t(lang, key))), "lot {lang:?} {key:?}");
            }
        }
    }

    #[test]
    fn tree_page_details() {
        let html = tree_page(&tree(""), Lang::Vi);
        assert!(html.contains("<h1>Cây sầu riêng K7DW3QX</h1>"));
        assert!(html.contains("8,5 m"), "height in Vietnamese notation");
        assert!(html.contains("2026-05-02"), "ISO dates");
        assert!(html.contains("loading=\"lazy\"") && html.contains("alt=\"Ảnh cây sầu riêng K7DW3QX\""));
        assert!(html.contains("1.234 lần"), "scan count");
        assert!(html.contains("<svg") && html.contains("href=\"/?tree=K7DW3QX#18/12.701/108.051\""));
        assert!(html.contains("href=\"/api/trees/K7DW3QX/qr.svg\""));
        assert!(html.contains("<link rel=\"canonical\" href=\"https://orchardmap.example/t/K7DW3QX\">"));
        assert!(html.contains("class=\"flags\""));
        let mut quiet = tree("");
        quiet.flags = vec![" ".into()];
        quiet.records.clear();
        quiet.photo_url = None;
        let html = tree_page(&quiet, Lang::En);
        assert!(!html.contains("class=\"flags\""), "no warnings box without warnings");
        assert!(html.contains("No records yet.") && !html.contains("<img"));
    }

    #[test]
    fn lot_page_details() {
        let mut p = lot("");
        p.genuineness = Genuineness::Genuine;
        let html = lot_page(&p, Lang::En);
        assert!(html.contains("1,234.5 kg"));
        assert!(html.contains("VN-DLOR-0123") && html.contains("VN-DLPH-0042"));
        assert!(html.contains("120 trees") && html.contains("1 tree<"));
        assert!(html.contains("0.012 mg/kg") && html.contains("0.05 mg/kg") && html.contains("Not permitted"));
        assert!(html.contains("2026-06-22") && html.contains("class=\"bad\""));
        assert!(!html.contains("Domestic market only"));
        p.domestic = true;
        p.place.planting_area_code = None;
        p.lab_results.clear();
        p.phi.clear();
        let html = lot_page(&p, Lang::Zh);
        assert!(html.contains("仅限国内销售") && html.contains("无种植区域代码"));
        assert!(html.contains("本批次尚无检测结果记录") && html.contains("没有施药记录"));
        assert!(lot_page(&p, Lang::Vi).contains("1.234,5 kg"));
    }

    #[test]
    fn register_page_has_the_endpoint_and_no_raw_values() {
        for lang in Lang::ALL {
            for assigned in [false, true] {
                let html = register_page(&register(EVIL, assigned), lang);
                assert!(html.contains("\"endpoint\":\"/t/K7DW3QX/register\""), "{lang:?}");
                assert!(html.contains("orchardmap.token"));
                assert!(html.contains("watchPosition") && html.contains("enableHighAccuracy"));
                assert!(html.contains("capture=\"environment\"") && html.contains("accept=\"image/*\""));
                assert!(html.contains("min=\"1950\" max=\"2026\"") && html.contains("value=\"2021\""));
                assert_eq!(html.contains("id=\"reassign\""), assigned);
                let visible = visible_markup(&html);
                assert!(!visible.contains("<script>alert") && !visible.contains("\"onload="), "{lang:?}");
                // Exactly the two scripts of the page open and close: nothing from the data does.
                assert_eq!(html.matches("<script").count(), 2, "{lang:?}");
                assert_eq!(html.matches("</script>").count(), 2, "{lang:?}");
            }
        }
    }

    #[test]
    fn json_island_is_script_safe() {
        let html = register_page(&register(EVIL, true), Lang::En);
        let start = html.find("<script type=\"application/json\" id=\"om-config\">").unwrap();
        let body_start = html[start..].find('>').unwrap() + start + 1;
        let body_end = html[body_start..].find("</script>").unwrap() + body_start;
        let island = &html[body_start..body_end];
        assert!(!island.contains('<') && !island.contains('>') && !island.contains('&'));
        // The JSON still parses to the original values.
        let v: serde_json::Value = serde_json::from_str(island).unwrap();
        assert_eq!(v["cultivars"][2], format!("Black Thorn</script><script>alert(1)//{EVIL}"));
        assert_eq!(v["code"], format!("K7DW3QX{EVIL}"));
        let tricky = register::script_json(&serde_json::json!({"s": "a\u{2028}b\u{2029}c<!--d"}));
        assert!(!tricky.contains('\u{2028}') && !tricky.contains('\u{2029}') && !tricky.contains("<!--"));
        let back: serde_json::Value = serde_json::from_str(&tricky).unwrap();
        assert_eq!(back["s"], "a\u{2028}b\u{2029}c<!--d");
    }

    #[test]
    fn message_page_says_what_and_status() {
        let html = message_page(Lang::Zh, &switch(), 404, Msg::UnknownCode, t(Lang::Zh, Msg::UnknownCodeDetail));
        assert!(html.contains("<h1>未找到此码</h1>") && html.contains("错误代码 404"));
        assert!(html.contains("noindex"));
    }
}
