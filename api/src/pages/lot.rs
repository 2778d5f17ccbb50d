//! The public page of a harvest lot, for buyers scanning a box label: where
//! the fruit grew (planting-area code first), when it was harvested, the lab
//! results and the pre-harvest-interval checks.

use geo_core::{Analyte, LabResult, PhiCheck};

use super::i18n::{self, Lang, Msg, format_number, t};
use super::{
    Head, LotPage, Subject, document, escape, fact, flags_box, genuineness_banner, minimap, place_facts, scans_line,
};

/// The message naming an analyte.
fn analyte_msg(a: Analyte) -> Msg {
    match a {
        Analyte::Cadmium => Msg::Cadmium,
        Analyte::AuramineO => Msg::AuramineO,
    }
}

/// "Passed" in green with a tick, or "Not passed" in red with a cross.
fn verdict(lang: Lang, passed: bool) -> String {
    if passed {
        format!("<span class=\"ok\">✓ {}</span>", escape(t(lang, Msg::Passed)))
    } else {
        format!("<span class=\"bad\">✗ {}</span>", escape(t(lang, Msg::NotPassed)))
    }
}

/// A table cell that carries its column name for the stacked phone layout.
fn cell(label: &str, html: &str) -> String {
    format!("<td data-label=\"{}\">{html}</td>", escape(label))
}

/// A table with `headers` and rows of already-built cells.
fn table(lang: Lang, headers: &[Msg], rows: &[String]) -> String {
    let head: String = headers.iter().map(|&h| format!("<th scope=\"col\">{}</th>", escape(t(lang, h)))).collect();
    format!("<table class=\"stack\"><thead><tr>{head}</tr></thead><tbody>{}</tbody></table>", rows.concat())
}

fn lab_table(lang: Lang, results: &[LabResult]) -> String {
    let headers = [Msg::Analyte, Msg::ResultValue, Msg::Limit, Msg::Laboratory, Msg::TestedOn, Msg::Verdict];
    let label = |i: usize| t(lang, headers[i]);
    let rows: Vec<String> = results
        .iter()
        .map(|r| {
            let value = match r.value_mg_per_kg {
                None => escape(t(lang, Msg::NotDetected)),
                Some(v) => format!("{} mg/kg", format_number(v, 4, lang)),
            };
            let limit = r.analyte.limit_mg_per_kg();
            let limit = if limit > 0.0 {
                format!("≤ {} mg/kg", format_number(limit, 4, lang))
            } else {
                escape(t(lang, Msg::NotPermitted))
            };
            let mut lab = escape(&r.laboratory);
            if let Some(no) = r.report_no.as_deref().filter(|n| !n.trim().is_empty()) {
                lab.push_str(&format!(
                    "<br><small>{}</small>",
                    escape(&i18n::fill(lang, Msg::ReportNo, &[("no", no)]))
                ));
            }
            format!(
                "<tr>{}{}{}{}{}{}</tr>",
                cell(label(0), &format!("<strong>{}</strong>", escape(t(lang, analyte_msg(r.analyte))))),
                cell(label(1), &value),
                cell(label(2), &limit),
                cell(label(3), &lab),
                cell(label(4), &r.tested_on.to_string()),
                cell(label(5), &verdict(lang, r.passed())),
            )
        })
        .collect();
    table(lang, &headers, &rows)
}

fn phi_table(lang: Lang, checks: &[PhiCheck]) -> String {
    let headers = [Msg::Product, Msg::LastSprayed, Msg::PhiDays, Msg::HarvestAllowedFrom, Msg::Verdict];
    let label = |i: usize| t(lang, headers[i]);
    let rows: Vec<String> = checks
        .iter()
        .map(|c| {
            let trees = i18n::count(lang, Msg::TreesOne, Msg::TreesMany, c.trees as u64);
            format!(
                "<tr>{}{}{}{}{}</tr>",
                cell(label(0), &format!("<strong>{}</strong> <small>({})</small>", escape(&c.product), escape(&trees))),
                cell(label(1), &c.last_sprayed.to_string()),
                cell(label(2), &c.phi_days.to_string()),
                cell(label(3), &c.harvest_allowed_from.to_string()),
                cell(label(4), &verdict(lang, c.passed)),
            )
        })
        .collect();
    table(lang, &headers, &rows)
}

/// The lot page in `lang`.
pub fn lot_page(p: &LotPage, lang: Lang) -> String {
    let title = i18n::fill(lang, Msg::LotTitle, &[("code", &p.code)]);
    let mut body = format!("<h1>{}</h1>", escape(&title));
    body.push_str(&genuineness_banner(lang, p.genuineness, Subject::Lot, p.revoked_reason.as_deref()));
    body.push_str(&flags_box(lang, &p.flags));
    if p.domestic {
        body.push_str(&format!("<p><span class=\"badge\">{}</span></p>", escape(t(lang, Msg::DomesticOnly))));
    }
    match p.place.planting_area_code.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(code) => body.push_str(&format!(
            "<div class=\"bigcode\"><span>{}</span><strong>{}</strong></div>",
            escape(t(lang, Msg::PlantingAreaCode)),
            escape(code)
        )),
        None => body.push_str(&format!(
            "<div class=\"bigcode\"><strong>{}</strong></div>",
            escape(t(lang, Msg::NoPlantingAreaCode))
        )),
    }
    if let Some(ph) = p.packing_house.as_deref().filter(|c| !c.trim().is_empty()) {
        body.push_str(&format!(
            "<div class=\"bigcode second\"><span>{}</span><strong>{}</strong></div>",
            escape(t(lang, Msg::PackingHouseCode)),
            escape(ph)
        ));
    }

    body.push_str("<dl class=\"facts\">");
    body.push_str(&fact(lang, Msg::HarvestDate, &p.harvest_date.to_string()));
    body.push_str(&fact(lang, Msg::NetWeight, &format!("{} kg", format_number(p.weight_kg, 1, lang))));
    if let Some(b) = p.boxes {
        body.push_str(&fact(lang, Msg::Boxes, &format_number(f64::from(b), 0, lang)));
    }
    body.push_str(&fact(
        lang,
        Msg::TreeCount,
        &escape(&i18n::count(lang, Msg::TreesOne, Msg::TreesMany, p.tree_count as u64)),
    ));
    if let Some(g) = p.gtin.as_deref().filter(|g| !g.trim().is_empty()) {
        body.push_str(&fact(lang, Msg::Gtin, &escape(g)));
    }
    body.push_str("</dl>");

    body.push_str(&format!("<section id=\"lab\"><h2>{}</h2>", escape(t(lang, Msg::LabResults))));
    if p.lab_results.is_empty() {
        body.push_str(&format!("<p>{}</p>", escape(t(lang, Msg::NoLabResults))));
    } else {
        body.push_str(&lab_table(lang, &p.lab_results));
    }

    body.push_str("</section>");
    body.push_str("<section id=\"trace\">");
    if !p.cultivars.is_empty() {
        body.push_str(&format!("<h2>{}</h2><ul class=\"cultivars\">", escape(t(lang, Msg::CultivarsAndTrees))));
        for c in &p.cultivars {
            let n = i18n::count(lang, Msg::TreesOne, Msg::TreesMany, c.trees as u64);
            body.push_str(&format!("<li><strong>{}</strong>: {}</li>", escape(&c.cultivar), escape(&n)));
        }
        body.push_str("</ul>");
    }

    body.push_str(&format!("<h2>{}</h2><dl class=\"facts\">", escape(t(lang, Msg::Origin))));
    body.push_str(&place_facts(lang, &p.place));
    body.push_str("</dl>");
    body.push_str(&minimap::render(&p.map, t(lang, Msg::MapOfLot), t(lang, Msg::OpenFullMap)));

    body.push_str(&format!(
        "<h2>{}</h2><p class=\"small\">{}</p>",
        escape(t(lang, Msg::PhiTitle)),
        escape(t(lang, Msg::PhiExplain))
    ));
    if p.phi.is_empty() {
        body.push_str(&format!("<p>{}</p>", escape(t(lang, Msg::NoSprays))));
    } else {
        body.push_str(&phi_table(lang, &p.phi));
    }
    body.push_str("</section>");

    body.push_str(&scans_line(lang, p.scans));
    document(lang, &title, &p.switch, Head { canonical: Some(&p.canonical_url), noindex: false }, &body, "")
}
