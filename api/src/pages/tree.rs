//! The public page of a tree tag: what the tree is, where, how it is cared
//! for. Public facts only: the view model has no owner or other private detail.

use geo_core::Health;

use super::i18n::{self, Lang, Msg, format_number, t};
use super::{
    Head, Subject, TreePage, document, escape, fact, flags_box, genuineness_banner, minimap, place_facts, safe_href,
    scans_line,
};

/// The message naming a health.
pub(crate) fn health_msg(h: Health) -> Msg {
    match h {
        Health::Good => Msg::HealthGood,
        Health::Fair => Msg::HealthFair,
        Health::Poor => Msg::HealthPoor,
        Health::Dead => Msg::HealthDead,
    }
}

/// A health as a coloured dot and its word.
pub(crate) fn health_html(lang: Lang, h: Health) -> String {
    format!("<span class=\"dot h-{}\" aria-hidden=\"true\"></span>{}", h.as_str(), escape(t(lang, health_msg(h))))
}

/// A record kind in `lang`; unknown kinds as given.
fn kind_label(lang: Lang, kind: &str) -> String {
    let key = match kind {
        "observation" => Msg::KindObservation,
        "fertiliser" | "fertilizer" => Msg::KindFertiliser,
        "spray" => Msg::KindSpray,
        "flowering" => Msg::KindFlowering,
        "fruit_set" => Msg::KindFruitSet,
        "harvest" => Msg::KindHarvest,
        "photo" => Msg::KindPhoto,
        other => return escape(other),
    };
    escape(t(lang, key))
}

/// The tree page in `lang`.
pub fn tree_page(p: &TreePage, lang: Lang) -> String {
    let title = i18n::fill(lang, Msg::TreeTitle, &[("code", &p.code)]);
    let mut body = format!("<h1>{}</h1>", escape(&title));
    body.push_str(&genuineness_banner(lang, p.genuineness, Subject::Tree, None));
    body.push_str(&flags_box(lang, &p.flags));
    if let Some(url) = p.photo_url.as_deref().map(safe_href).filter(|u| !u.is_empty() && *u != "#") {
        let alt = i18n::fill(lang, Msg::PhotoAlt, &[("code", &p.code)]);
        body.push_str(&format!(
            "<img class=\"photo\" src=\"{}\" alt=\"{}\" loading=\"lazy\" decoding=\"async\">",
            escape(url),
            escape(&alt)
        ));
    }
    body.push_str("<dl class=\"facts\">");
    body.push_str(&fact(lang, Msg::Cultivar, &escape(&p.cultivar)));
    let planted = p.planted_year.map_or_else(|| escape(t(lang, Msg::Unknown)), |y| y.to_string());
    body.push_str(&fact(lang, Msg::PlantedYear, &planted));
    body.push_str(&fact(lang, Msg::Health, &health_html(lang, p.health)));
    if let Some(h) = p.height_m.filter(|h| h.is_finite()) {
        body.push_str(&fact(lang, Msg::Height, &format!("{} m", format_number(h, 1, lang))));
    }
    body.push_str("</dl>");

    body.push_str(&format!("<h2>{}</h2><dl class=\"facts\">", escape(t(lang, Msg::Location))));
    body.push_str(&place_facts(lang, &p.place));
    if let Some(code) = p.place.planting_area_code.as_deref().filter(|c| !c.trim().is_empty()) {
        body.push_str(&fact(lang, Msg::PlantingAreaCode, &escape(code)));
    }
    body.push_str("</dl>");
    body.push_str(&minimap::render(&p.map, t(lang, Msg::MapOfTree), t(lang, Msg::OpenFullMap)));

    body.push_str(&format!("<h2>{}</h2>", escape(t(lang, Msg::RecentCare))));
    if p.records.is_empty() {
        body.push_str(&format!("<p>{}</p>", escape(t(lang, Msg::NoRecords))));
    } else {
        body.push_str("<ol class=\"records\">");
        // The handler sends at most 10; a longer list is cut rather than trusted.
        for r in p.records.iter().take(10) {
            body.push_str(&format!(
                "<li><time datetime=\"{d}\">{d}</time><strong>{}</strong>",
                kind_label(lang, &r.kind),
                d = r.date
            ));
            if !r.summary.trim().is_empty() {
                body.push_str(&format!("<br>{}", escape(&r.summary)));
            }
            body.push_str("</li>");
        }
        body.push_str("</ol>");
    }

    body.push_str(&scans_line(lang, p.scans));
    if !p.qr_svg_href.trim().is_empty() {
        body.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>",
            escape(safe_href(&p.qr_svg_href)),
            escape(t(lang, Msg::QrOfTag))
        ));
    }
    document(lang, &title, &p.switch, Head { canonical: Some(&p.canonical_url), noindex: false }, &body, "")
}
