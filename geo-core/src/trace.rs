//! GS1 Digital Link identifiers of trees and harvest lots: the paths printed in
//! their QR codes, the URLs buyers scan, and the linkset a resolver serves.
//!
//! Four path forms name the two things orchardmap labels:
//!
//! | form | what it names |
//! | --- | --- |
//! | `/414/{gln}/254/{code}` | a tree: the orchard's GLN (AI 414) and the tree's tag code as the GLN extension (AI 254) |
//! | `/t/{code}` | a tree, by its tag code alone (orchardmap's short form, for orchards without a GLN) |
//! | `/01/{gtin14}/10/{lotcode}` | a harvest lot: the product's GTIN (AI 01) and the lot code as the batch/lot (AI 10) |
//! | `/l/{lotcode}` | a harvest lot, by its code alone (short form, for lots without a GTIN) |
//!
//! The identifier starts the path: no deployment prefix (`/resolver/01/...`) is
//! accepted, so a scanned URL maps to exactly one identifier. Parsing is strict:
//! check digits, the qualifier order of the standard (`/01/{gtin}/22/../10/../21/..`,
//! `/414/{gln}/254/..`), character set 82 and the 20-character limit of lot and
//! extension values are enforced, and anything after the identifier is refused.
//! Codes are accepted in lower case and normalised to upper case; GTIN-8, -12 and
//! -13 are padded to 14 digits. [`DigitalLink::path`] always gives the one
//! canonical form, which is also what a signature covers ([`DigitalLink::canonical`]).
//!
//! ```
//! use geo_core::TreeCode;
//! use geo_core::trace::{DigitalLink, parse_url};
//!
//! let code = TreeCode::from_serial(42).unwrap();
//! let link = DigitalLink::tree(Some("9520123456788"), code).unwrap();
//! let path = format!("/414/9520123456788/254/{code}");
//! assert_eq!(link.path(), path);
//! // Lower case is accepted and normalised.
//! assert_eq!(DigitalLink::parse_path(&path.to_lowercase()).unwrap(), link);
//! let scanned = parse_url(&format!("https://qr.example.vn{path}?linkType=gs1:pip")).unwrap();
//! assert_eq!(scanned.link, link);
//! assert_eq!(scanned.link_type.as_deref(), Some("gs1:pip"));
//! ```

use std::fmt;

use serde_json::{Map, Value, json};

use crate::code::TreeCode;
use crate::error::Error;
use crate::gs1;
use crate::lot::{LotCode, MAX_LOT_CHARS};

/// Errors of Digital Link parsing and of signature keys: each names the part and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// A part of a Digital Link path or URL is not acceptable.
    #[error("{part} {value:?}: {reason}")]
    Link {
        /// Which part: `path`, `GTIN (AI 01)`, `lot (AI 10)`, `AI`, `query`, ...
        part: &'static str,
        /// The offending value as given (percent-decoded where that applies).
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A signing or public key is malformed, unknown, or cannot be used as asked.
    #[error("key {kid}: {reason}")]
    Key {
        /// The key id, or the key's position (`#2`) when it has no usable id.
        kid: String,
        /// What is wrong.
        reason: String,
    },
}

fn link_err(part: &'static str, value: impl Into<String>, reason: impl Into<String>) -> TraceError {
    TraceError::Link { part, value: value.into(), reason: reason.into() }
}

/// A tree or harvest-lot identifier in GS1 Digital Link form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DigitalLink {
    /// A tree: `/414/{gln}/254/{code}` with the orchard's GLN, else `/t/{code}`.
    Tree {
        /// The orchard's 13-digit GLN, if it has one.
        gln: Option<String>,
        /// The tree's tag code.
        code: TreeCode,
    },
    /// A harvest lot: `/01/{gtin14}/10/{lotcode}` with a GTIN, else `/l/{lotcode}`.
    Lot {
        /// The product's GTIN as 14 digits, if it has one.
        gtin: Option<String>,
        /// The lot's code.
        code: LotCode,
    },
}

impl DigitalLink {
    /// A tree's link; the GLN, when given, must be 13 digits with a valid check digit.
    pub fn tree(gln: Option<&str>, code: TreeCode) -> Result<Self, TraceError> {
        let gln = gln.map(parse_gln).transpose()?;
        Ok(DigitalLink::Tree { gln, code })
    }

    /// A lot's link; the GTIN, when given, may be a GTIN-8, -12, -13 or -14 and is kept as 14 digits.
    pub fn lot(gtin: Option<&str>, code: LotCode) -> Result<Self, TraceError> {
        let gtin = gtin.map(parse_gtin).transpose()?;
        Ok(DigitalLink::Lot { gtin, code })
    }

    /// The identifier path: `/414/{gln}/254/{code}`, `/t/{code}`, `/01/{gtin14}/10/{lotcode}` or `/l/{lotcode}`.
    pub fn path(&self) -> String {
        match self {
            DigitalLink::Tree { gln: Some(gln), code } => format!("/414/{}/254/{}", encode(gln), code.as_str()),
            DigitalLink::Tree { gln: None, code } => format!("/t/{}", code.as_str()),
            DigitalLink::Lot { gtin: Some(gtin), code } => format!("/01/{}/10/{}", encode(gtin), code.as_str()),
            DigitalLink::Lot { gtin: None, code } => format!("/l/{}", code.as_str()),
        }
    }

    /// The text a signature covers: exactly [`DigitalLink::path`], the identifier in
    /// its one canonical form (upper-case code, 14-digit GTIN, no host, no query).
    ///
    /// Binding the whole path binds the GLN or GTIN and the form too: a signature
    /// made for `/t/{code}` does not verify for `/414/{gln}/254/{code}`, and one copied
    /// from another tree or lot does not verify. The host is left out so the same
    /// label verifies whichever resolver domain serves it.
    pub fn canonical(&self) -> String {
        self.path()
    }

    /// The full URL: `base` (a trailing `/` is dropped) followed by the path.
    pub fn url(&self, base: &str) -> String {
        format!("{}{}", base.trim_end_matches('/'), self.path())
    }

    /// The tree or lot code as text.
    pub fn code_str(&self) -> &str {
        match self {
            DigitalLink::Tree { code, .. } => code.as_str(),
            DigitalLink::Lot { code, .. } => code.as_str(),
        }
    }

    /// Parses an identifier path in one of the four forms (see the module docs).
    /// The path starts with the identifier and has no query or fragment.
    pub fn parse_path(path: &str) -> Result<DigitalLink, TraceError> {
        if path.contains(['?', '#']) {
            return Err(link_err("path", path, "a path has no query or fragment; parse the whole URL with parse_url"));
        }
        let Some(rest) = path.strip_prefix('/') else {
            return Err(link_err("path", path, "must start with '/'"));
        };
        let raw: Vec<&str> = rest.split('/').collect();
        let mut segs = Vec::with_capacity(raw.len());
        for seg in &raw {
            if seg.is_empty() {
                return Err(link_err("path", path, "has an empty segment (a doubled or trailing '/')"));
            }
            segs.push(decode(seg)?);
        }
        let first = segs[0].as_str();
        match first {
            "t" | "l" => parse_short(path, &segs),
            "414" => parse_gln_path(&segs),
            "01" => parse_gtin_path(&segs),
            _ => Err(unknown_primary(first)),
        }
    }
}

impl fmt::Display for DigitalLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// Qualifiers the standard allows after GTIN (AI 01), in their required order.
const GTIN_QUALIFIERS: [&str; 3] = ["22", "10", "21"];
/// Qualifiers the standard allows after GLN (AI 414); they are alternatives.
const GLN_QUALIFIERS: [&str; 2] = ["254", "7040"];

fn ai_name(ai: &str) -> &'static str {
    match ai {
        "00" => "SSCC (AI 00)",
        "01" => "GTIN (AI 01)",
        "10" => "lot (AI 10)",
        "21" => "serial (AI 21)",
        "22" => "consumer product variant (AI 22)",
        "254" => "GLN extension (AI 254)",
        "414" => "GLN (AI 414)",
        "7040" => "UIC with extension (AI 7040)",
        "8030" => "digital signature (AI 8030)",
        _ => "AI",
    }
}

fn unknown_primary(first: &str) -> TraceError {
    let reason = match first {
        "10" | "21" | "22" => format!(
            "qualifiers out of the standard's order: {} qualifies a GTIN and must follow it (/01/{{gtin}}/10/{{lot}})",
            ai_name(first)
        ),
        "254" | "7040" => format!(
            "qualifiers out of the standard's order: {} qualifies a GLN and must follow it (/414/{{gln}}/254/{{code}})",
            ai_name(first)
        ),
        "00" => "SSCC (AI 00) is not supported: orchardmap links name trees (414 + 254) and lots (01 + 10)".into(),
        ai if !ai.is_empty() && ai.bytes().all(|b| b.is_ascii_digit()) => {
            format!("AI {ai} is not supported: orchardmap links name trees (414 + 254) and lots (01 + 10)")
        }
        _ => "unknown identifier: the path must start with /414/, /01/, /t/ or /l/ (no deployment prefix)".into(),
    };
    link_err("AI", first, reason)
}

/// `/t/{code}` and `/l/{code}`.
fn parse_short(path: &str, segs: &[String]) -> Result<DigitalLink, TraceError> {
    let tree = segs[0] == "t";
    let Some(value) = segs.get(1) else {
        return Err(link_err("path", path, if tree { "no tree code after /t/" } else { "no lot code after /l/" }));
    };
    if segs.len() > 2 {
        return Err(link_err("path", format!("/{}", segs[2..].join("/")), "trailing junk after the identifier"));
    }
    if tree {
        Ok(DigitalLink::Tree { gln: None, code: parse_tree_code("tree code", value)? })
    } else {
        Ok(DigitalLink::Lot { gtin: None, code: parse_lot_code("lot code", value)? })
    }
}

/// Splits the segments after the primary key into (AI, value) pairs, checking
/// order against `allowed` (`ordered` = the standard fixes one order; else they are
/// alternatives of which only one may appear).
fn qualifiers<'a>(
    primary: &str,
    rest: &'a [String],
    allowed: &[&str],
    ordered: bool,
) -> Result<Vec<(&'a str, &'a str)>, TraceError> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    let mut last: Option<usize> = None;
    for pair in rest.chunks(2) {
        let ai = pair[0].as_str();
        let Some(pos) = allowed.iter().position(|a| *a == ai) else {
            if ai.bytes().all(|b| b.is_ascii_digit()) {
                return Err(link_err(
                    "AI",
                    ai,
                    format!(
                        "{} is not a qualifier of {} here (allowed: {})",
                        match ai_name(ai) {
                            "AI" => format!("AI {ai}"),
                            name => name.to_string(),
                        },
                        ai_name(primary),
                        allowed.join(if ordered { ", " } else { " or " })
                    ),
                ));
            }
            return Err(link_err("path", format!("/{}", pair.join("/")), "trailing junk after the identifier"));
        };
        if let Some(prev) = last {
            let reason = if pos == prev {
                format!("{} is repeated", ai_name(ai))
            } else if !ordered {
                format!("{} and {} are alternatives; give one", ai_name(allowed[prev]), ai_name(ai))
            } else if pos < prev {
                format!(
                    "qualifiers out of the standard's order: {} must come before {}",
                    ai_name(ai),
                    ai_name(allowed[prev])
                )
            } else {
                String::new()
            };
            if !reason.is_empty() {
                return Err(link_err("AI", ai, reason));
            }
        }
        let Some(value) = pair.get(1) else {
            return Err(link_err("AI", ai, format!("{} has no value", ai_name(ai))));
        };
        last = Some(pos);
        out.push((ai, value.as_str()));
    }
    Ok(out)
}

/// `/414/{gln}/254/{code}`.
fn parse_gln_path(segs: &[String]) -> Result<DigitalLink, TraceError> {
    let Some(gln) = segs.get(1) else {
        return Err(link_err("AI", "414", "GLN (AI 414) has no value"));
    };
    let gln = parse_gln(gln)?;
    let quals = qualifiers("414", &segs[2..], &GLN_QUALIFIERS, false)?;
    let mut code = None;
    for (ai, value) in quals {
        match ai {
            "254" => code = Some(parse_tree_code("GLN extension (AI 254)", value)?),
            _ => {
                return Err(link_err(
                    "AI",
                    ai,
                    format!("{} is not used: orchardmap names a tree by the GLN extension (AI 254)", ai_name(ai)),
                ));
            }
        }
    }
    let code = code.ok_or_else(|| {
        link_err("path", format!("/414/{gln}"), "GLN extension (AI 254) is missing: orchardmap links name a tree")
    })?;
    Ok(DigitalLink::Tree { gln: Some(gln), code })
}

/// `/01/{gtin}/10/{lot}`.
fn parse_gtin_path(segs: &[String]) -> Result<DigitalLink, TraceError> {
    let Some(gtin) = segs.get(1) else {
        return Err(link_err("AI", "01", "GTIN (AI 01) has no value"));
    };
    let gtin = parse_gtin(gtin)?;
    let quals = qualifiers("01", &segs[2..], &GTIN_QUALIFIERS, true)?;
    let mut code = None;
    for (ai, value) in quals {
        match ai {
            "10" => code = Some(parse_lot_code("lot (AI 10)", value)?),
            "21" => return Err(link_err("AI", ai, "serial (AI 21) is not used: orchardmap labels lots")),
            _ => {
                return Err(link_err("AI", ai, format!("{} is not used: orchardmap labels lots", ai_name(ai))));
            }
        }
    }
    let code = code.ok_or_else(|| {
        link_err("path", format!("/01/{gtin}"), "lot (AI 10) is missing: orchardmap links name a lot")
    })?;
    Ok(DigitalLink::Lot { gtin: Some(gtin), code })
}

/// Why a run of digits is not a GS1 key of `len` digits; `None` when it is one.
fn key_problem(value: &str, len: usize) -> Option<String> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Some("must be digits only".into());
    }
    if value.len() != len {
        return Some(format!("must have {len} digits"));
    }
    let body = &value[..len - 1];
    let expected = gs1::check_digit(body)?;
    let given = value.as_bytes()[len - 1] - b'0';
    (expected != given).then(|| format!("check digit is {given}, should be {expected}"))
}

fn parse_gln(value: &str) -> Result<String, TraceError> {
    if gs1::valid_gln(value) {
        return Ok(value.to_string());
    }
    let reason = key_problem(value, 13).unwrap_or_else(|| "not a valid GLN".into());
    Err(link_err("GLN (AI 414)", value, reason))
}

fn parse_gtin(value: &str) -> Result<String, TraceError> {
    if let Some(g) = gs1::normalise_gtin(value).filter(|_| value.trim() == value) {
        return Ok(g);
    }
    let reason = if !value.bytes().all(|b| b.is_ascii_digit()) {
        "must be digits only".to_string()
    } else if !matches!(value.len(), 8 | 12 | 13 | 14) {
        "a GTIN has 8, 12, 13 or 14 digits".to_string()
    } else {
        key_problem(value, value.len()).unwrap_or_else(|| "not a valid GTIN".into())
    };
    Err(link_err("GTIN (AI 01)", value, reason))
}

/// Checks a lot or extension value against GS1's rules (character set 82, ≤ 20 characters).
fn check_cset82(part: &'static str, value: &str) -> Result<(), TraceError> {
    if let Some(c) = value.chars().find(|&c| !gs1::is_cset82(c)) {
        return Err(link_err(part, value, format!("{c:?} is outside GS1 character set 82")));
    }
    if value.is_empty() {
        return Err(link_err(part, value, "is empty"));
    }
    let n = value.chars().count();
    if n > MAX_LOT_CHARS {
        return Err(link_err(part, value, format!("has {n} characters; GS1 allows at most {MAX_LOT_CHARS}")));
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(link_err(part, value, "an orchardmap code in a link is letters and digits only, no separators"));
    }
    Ok(())
}

fn code_reason(e: Error) -> String {
    match e {
        Error::BadCode { reason, .. } => reason.to_string(),
        other => other.to_string(),
    }
}

fn parse_tree_code(part: &'static str, value: &str) -> Result<TreeCode, TraceError> {
    check_cset82(part, value)?;
    TreeCode::parse(value).map_err(|e| link_err(part, value, format!("not a tree code: {}", code_reason(e))))
}

fn parse_lot_code(part: &'static str, value: &str) -> Result<LotCode, TraceError> {
    check_cset82(part, value)?;
    LotCode::parse(value).map_err(|e| link_err(part, value, format!("not a lot code: {}", code_reason(e))))
}

/// Percent-decodes one path segment or query component (`+` is kept as is).
fn decode(seg: &str) -> Result<String, TraceError> {
    if !seg.contains('%') {
        return Ok(seg.to_string());
    }
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
                return Err(link_err("path", seg, "bad percent-escape (expected % and two hex digits)"));
            };
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| link_err("path", seg, "percent-escapes do not decode to UTF-8"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL printed on a label: `base` + path, plus `?8030={signature}` when signed.
///
/// The signature travels as the GS1 Digital Signature (AI 8030), a data
/// attribute, so it sits in the query string as the Digital Link standard puts
/// data attributes; resolvers that do not know it ignore it.
pub fn signed_url(base: &str, link: &DigitalLink, signature: Option<&str>) -> String {
    let mut url = link.url(base);
    if let Some(sig) = signature {
        url.push_str("?8030=");
        url.push_str(&encode(sig));
    }
    url
}

/// What a scanned URL carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedUrl {
    /// The identifier.
    pub link: DigitalLink,
    /// The signature (`8030=` in the query), if any.
    pub signature: Option<String>,
    /// The link type asked for (`linkType=` in the query), as given.
    pub link_type: Option<String>,
}

/// Parses a scanned URL: any scheme and host (or a bare path starting with `/`);
/// the path must start with the identifier (no deployment prefix). From the query
/// it takes `8030` (the signature) and `linkType`; other parameters are ignored,
/// a fragment is dropped. A repeated `8030` or `linkType` is refused.
pub fn parse_url(url: &str) -> Result<ScannedUrl, TraceError> {
    let trimmed = url.trim();
    let no_fragment = trimmed.split_once('#').map_or(trimmed, |(a, _)| a);
    let rest = if no_fragment.starts_with('/') {
        no_fragment
    } else if let Some(pos) = no_fragment.find("://") {
        let scheme = &no_fragment[..pos];
        if scheme.is_empty()
            || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(link_err("URL", url, "bad scheme"));
        }
        let after = &no_fragment[pos + 3..];
        let host_end = after.find(['/', '?']).unwrap_or(after.len());
        if host_end == 0 {
            return Err(link_err("URL", url, "has no host"));
        }
        &after[host_end..]
    } else {
        return Err(link_err("URL", url, "is neither an absolute URL nor a path starting with '/'"));
    };
    let (path, query) = rest.split_once('?').map_or((rest, None), |(p, q)| (p, Some(q)));
    if path.is_empty() {
        return Err(link_err("URL", url, "has no path: the identifier is missing"));
    }
    let link = DigitalLink::parse_path(path)?;
    let mut signature = None;
    let mut link_type = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode_query(k)?;
        let slot = match key.as_str() {
            "8030" => &mut signature,
            "linkType" => &mut link_type,
            _ => continue,
        };
        if slot.is_some() {
            return Err(link_err("query", key, "is given more than once"));
        }
        *slot = Some(decode_query(v)?);
    }
    Ok(ScannedUrl { link, signature, link_type })
}

fn decode_query(s: &str) -> Result<String, TraceError> {
    decode(&s.replace('+', " ")).map_err(|e| match e {
        TraceError::Link { value, reason, .. } => TraceError::Link { part: "query", value, reason },
        other => other,
    })
}

/// A link type a resolver offers for orchardmap identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkType {
    /// The compact name used in `?linkType=`, e.g. `gs1:pip`.
    pub name: &'static str,
    /// The full relation type used in linksets, e.g. `https://ref.gs1.org/voc/pip`.
    pub uri: &'static str,
    /// What orchardmap serves under it.
    pub serves: &'static str,
}

/// The GS1 Web Vocabulary namespace of link types.
pub const GS1_VOC: &str = "https://ref.gs1.org/voc/";

/// The relation a GS1-conformant resolver uses in a linkset for the link it
/// redirects to when no link type is asked for.
pub const DEFAULT_LINK: &str = "https://ref.gs1.org/voc/defaultLink";

/// The link types orchardmap's resolver offers, the default (`gs1:pip`) first.
pub const LINK_TYPES: &[LinkType] = &[
    LinkType {
        name: "gs1:pip",
        uri: "https://ref.gs1.org/voc/pip",
        serves: "the human page of the tree or lot (the default link)",
    },
    LinkType {
        name: "gs1:traceability",
        uri: "https://ref.gs1.org/voc/traceability",
        serves: "the item's history for people: the tree's records, or the lot's trees, sprays and lab results",
    },
    LinkType {
        name: "gs1:epcis",
        uri: "https://ref.gs1.org/voc/epcis",
        serves: "the item's EPCIS 2.0 events as JSON-LD (GS1 says to use gs1:epcis, not gs1:traceability, for these)",
    },
    LinkType {
        name: "gs1:certificationInfo",
        uri: "https://ref.gs1.org/voc/certificationInfo",
        serves: "lab results and the orchard's planting-area code",
    },
    LinkType {
        name: "gs1:locationInfo",
        uri: "https://ref.gs1.org/voc/locationInfo",
        serves: "the tree or orchard on the map",
    },
];

/// The offered link type named `name`: its compact form (`gs1:pip`), its full URI
/// in the current (`https://ref.gs1.org/voc/pip`) or older (`https://gs1.org/voc/pip`)
/// namespace. `None` for any other (for `linkType=all` or `linkset` a resolver serves the linkset).
pub fn link_type(name: &str) -> Option<&'static LinkType> {
    let local = name
        .strip_prefix("gs1:")
        .or_else(|| name.strip_prefix(GS1_VOC))
        .or_else(|| name.strip_prefix("https://gs1.org/voc/"))
        .or_else(|| name.strip_prefix("http://gs1.org/voc/"))?;
    LINK_TYPES.iter().find(|t| t.name.strip_prefix("gs1:") == Some(local))
}

/// One link of a linkset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link<'a> {
    /// The link type: a compact GS1 name (`gs1:pip`), a full URI, or an IANA relation name (`describedby`).
    pub rel: &'a str,
    /// The target URL.
    pub href: String,
    /// A title for people.
    pub title: &'a str,
    /// The target's language (`vi`, `en`), if it has one.
    pub hreflang: Option<&'a str>,
    /// The target's media type (`text/html`, `application/ld+json`).
    pub media_type: &'a str,
}

/// The relation type as a linkset writes it: GS1 compact names become full URIs
/// in the `https://ref.gs1.org/voc/` namespace; other names are kept.
fn full_rel(rel: &str) -> String {
    match rel.strip_prefix("gs1:") {
        Some(local) => format!("{GS1_VOC}{local}"),
        None => rel.to_string(),
    }
}

/// The RFC 9264 linkset (`application/linkset+json`) of one identifier:
/// `{"linkset":[{"anchor": anchor, "<relation>": [{"href","title","type","hreflang":[..]}], ...}]}`.
///
/// `anchor` is the identifier's URL (e.g. [`DigitalLink::url`]). Links of the
/// same relation are grouped in the order given. The default link
/// ([`DEFAULT_LINK`]) repeats the first `gs1:pip` link, or the first link when
/// there is none, as GS1-conformant resolvers include one.
pub fn linkset(anchor: &str, links: &[Link<'_>]) -> Value {
    let target = |l: &Link<'_>| {
        let mut t = Map::new();
        t.insert("href".into(), Value::String(l.href.clone()));
        t.insert("title".into(), Value::String(l.title.to_string()));
        t.insert("type".into(), Value::String(l.media_type.to_string()));
        if let Some(lang) = l.hreflang {
            t.insert("hreflang".into(), json!([lang]));
        }
        Value::Object(t)
    };
    let mut set = Map::new();
    set.insert("anchor".into(), Value::String(anchor.to_string()));
    let pip = format!("{GS1_VOC}pip");
    if let Some(default) = links.iter().find(|l| full_rel(l.rel) == pip).or_else(|| links.first()) {
        set.insert(DEFAULT_LINK.into(), json!([target(default)]));
    }
    for l in links {
        let entry = set.entry(full_rel(l.rel)).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(targets) = entry {
            targets.push(target(l));
        }
    }
    json!({ "linkset": [Value::Object(set)] })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::lot::LotId;
    use proptest::prelude::*;

    const GLN: &str = "9520123456788";
    const GTIN14: &str = "09506000134352";

    fn tree(serial: u64) -> TreeCode {
        TreeCode::from_serial(serial).unwrap()
    }

    fn lot(id: i64) -> LotCode {
        LotCode::for_id(LotId(id)).unwrap()
    }

    /// The error's text, which must name the offending value.
    fn refused(path: &str) -> String {
        match DigitalLink::parse_path(path) {
            Ok(l) => panic!("{path} was accepted as {l:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn four_forms_round_trip() {
        let c = tree(7);
        let l = lot(42);
        let cases = [
            (DigitalLink::Tree { gln: Some(GLN.into()), code: c }, format!("/414/{GLN}/254/{c}")),
            (DigitalLink::Tree { gln: None, code: c }, format!("/t/{c}")),
            (DigitalLink::Lot { gtin: Some(GTIN14.into()), code: l.clone() }, format!("/01/{GTIN14}/10/{l}")),
            (DigitalLink::Lot { gtin: None, code: l.clone() }, format!("/l/{l}")),
        ];
        for (link, path) in cases {
            assert_eq!(link.path(), path);
            assert_eq!(link.canonical(), path);
            assert_eq!(DigitalLink::parse_path(&path).unwrap(), link);
            assert_eq!(link.url("https://qr.example.vn/"), format!("https://qr.example.vn{path}"));
            assert_eq!(parse_url(&link.url("https://qr.example.vn")).unwrap().link, link);
        }
        assert_eq!(DigitalLink::Tree { gln: None, code: c }.code_str(), c.as_str());
        assert_eq!(DigitalLink::Lot { gtin: None, code: l.clone() }.code_str(), l.as_str());
    }

    #[test]
    fn lower_case_and_percent_encoded_codes_are_normalised() {
        let c = tree(99);
        let lower = c.as_str().to_ascii_lowercase();
        let link = DigitalLink::parse_path(&format!("/414/{GLN}/254/{lower}")).unwrap();
        assert_eq!(link.path(), format!("/414/{GLN}/254/{c}"));
        let encoded: String = c.as_str().bytes().map(|b| format!("%{b:02x}")).collect();
        assert_eq!(
            DigitalLink::parse_path(&format!("/t/{encoded}")).unwrap(),
            DigitalLink::Tree { gln: None, code: c }
        );
        let l = lot(5);
        let link = DigitalLink::parse_path(&format!("/01/{GTIN14}/10/{}", l.as_str().to_lowercase())).unwrap();
        assert_eq!(link, DigitalLink::Lot { gtin: Some(GTIN14.into()), code: l });
    }

    #[test]
    fn short_gtins_are_padded_to_14() {
        let l = lot(3);
        // GTIN-13 of the GS1 General Specifications example.
        let link = DigitalLink::parse_path(&format!("/01/9506000134352/10/{l}")).unwrap();
        assert_eq!(link, DigitalLink::Lot { gtin: Some(GTIN14.into()), code: l.clone() });
        assert_eq!(link.path(), format!("/01/{GTIN14}/10/{l}"));
        // GTIN-8 and GTIN-12 (check digits computed by the GS1 rule).
        for short in ["95012346", "614141000036"] {
            let link = DigitalLink::parse_path(&format!("/01/{short}/10/{l}")).unwrap();
            assert_eq!(link.path(), format!("/01/{short:0>14}/10/{l}"));
        }
        assert_eq!(DigitalLink::lot(Some("9506000134352"), l.clone()).unwrap().path(), format!("/01/{GTIN14}/10/{l}"));
        assert!(DigitalLink::lot(Some("9506000134353"), l).is_err());
    }

    #[test]
    fn wrong_check_digits_are_named() {
        let c = tree(1);
        let e = refused(&format!("/414/9520123456789/254/{c}"));
        assert!(
            e.contains("GLN (AI 414)") && e.contains("9520123456789") && e.contains("check digit is 9, should be 8"),
            "{e}"
        );
        let e = refused(&format!("/01/09506000134353/10/{}", lot(1)));
        assert!(e.contains("GTIN (AI 01)") && e.contains("09506000134353") && e.contains("should be 2"), "{e}");
        let e = refused(&format!("/01/9506000134353/10/{}", lot(1)));
        assert!(e.contains("9506000134353") && e.contains("check digit"), "{e}");
        let e = refused(&format!("/414/952012345678/254/{c}"));
        assert!(e.contains("952012345678") && e.contains("13 digits"), "{e}");
        let e = refused(&format!("/01/12345/10/{}", lot(1)));
        assert!(e.contains("12345") && e.contains("8, 12, 13 or 14"), "{e}");
        // A tree code's own check character.
        let mut bad = c.as_str().to_string();
        let last = if bad.ends_with('2') { "3" } else { "2" };
        bad.replace_range(6..7, last);
        let e = refused(&format!("/t/{bad}"));
        assert!(e.contains(&bad) && e.contains("check character"), "{e}");
    }

    #[test]
    fn qualifiers_out_of_order_are_refused() {
        let l = lot(1);
        let e = refused(&format!("/10/{l}/01/{GTIN14}"));
        assert!(e.contains("\"10\"") && e.contains("out of the standard's order"), "{e}");
        let e = refused(&format!("/254/{}/414/{GLN}", tree(1)));
        assert!(e.contains("\"254\"") && e.contains("out of the standard's order"), "{e}");
        let e = refused(&format!("/01/{GTIN14}/10/{l}/22/ABC"));
        assert!(e.contains("\"22\"") && e.contains("must come before lot (AI 10)"), "{e}");
        let e = refused(&format!("/01/{GTIN14}/10/{l}/10/{l}"));
        assert!(e.contains("repeated"), "{e}");
    }

    #[test]
    fn unknown_and_unsupported_ais_are_refused() {
        let e = refused("/00/106141412345678908");
        assert!(e.contains("\"00\"") && e.contains("SSCC (AI 00) is not supported"), "{e}");
        let e = refused(&format!("/01/{GTIN14}/21/12345"));
        assert!(e.contains("\"21\"") && e.contains("serial (AI 21) is not used: orchardmap labels lots"), "{e}");
        let e = refused(&format!("/01/{GTIN14}/10/{}/21/12345", lot(1)));
        assert!(e.contains("serial (AI 21) is not used"), "{e}");
        let e = refused(&format!("/01/{GTIN14}/22/V1/10/{}", lot(1)));
        assert!(e.contains("consumer product variant (AI 22) is not used"), "{e}");
        let e = refused(&format!("/01/{GTIN14}/17/260101"));
        assert!(e.contains("\"17\"") && e.contains("not a qualifier of GTIN (AI 01)"), "{e}");
        let e = refused(&format!("/414/{GLN}/7040/1ABC"));
        assert!(e.contains("\"7040\"") && e.contains("not used"), "{e}");
        let e = refused(&format!("/414/{GLN}/254/{}/7040/1ABC", tree(1)));
        assert!(e.contains("alternatives"), "{e}");
        let e = refused("/8004/95201234567891234");
        assert!(e.contains("\"8004\"") && e.contains("AI 8004 is not supported"), "{e}");
        let e = refused(&format!("/resolver/t/{}", tree(1)));
        assert!(e.contains("\"resolver\"") && e.contains("no deployment prefix"), "{e}");
        let e = refused(&format!("/01/{GTIN14}"));
        assert!(e.contains("lot (AI 10) is missing"), "{e}");
        let e = refused(&format!("/414/{GLN}"));
        assert!(e.contains("GLN extension (AI 254) is missing"), "{e}");
        let e = refused(&format!("/01/{GTIN14}/10"));
        assert!(e.contains("lot (AI 10) has no value"), "{e}");
    }

    #[test]
    fn values_outside_cset82_or_too_long_are_refused() {
        let e = refused(&format!("/01/{GTIN14}/10/L%20K7DW3Q"));
        assert!(e.contains("lot (AI 10)") && e.contains("\"L K7DW3Q\"") && e.contains("character set 82"), "{e}");
        let e = refused(&format!("/414/{GLN}/254/%C3%A0BCDEFG"));
        assert!(e.contains("GLN extension (AI 254)") && e.contains("àBCDEFG") && e.contains("character set 82"), "{e}");
        let long = "A".repeat(21);
        let e = refused(&format!("/01/{GTIN14}/10/{long}"));
        assert!(e.contains(&long) && e.contains("at most 20"), "{e}");
        let e = refused(&format!("/414/{GLN}/254/{long}"));
        assert!(e.contains(&long) && e.contains("at most 20"), "{e}");
        // Within GS1's rules but not an orchardmap code.
        let e = refused(&format!("/01/{GTIN14}/10/BATCH42"));
        assert!(e.contains("BATCH42") && e.contains("not a lot code"), "{e}");
        let e = refused(&format!("/t/{}-{}", &tree(1).as_str()[..3], &tree(1).as_str()[3..]));
        assert!(e.contains("no separators"), "{e}");
        let e = refused("/t/K7%ZZ");
        assert!(e.contains("K7%ZZ") && e.contains("percent-escape"), "{e}");
    }

    #[test]
    fn trailing_junk_is_refused() {
        let c = tree(1);
        for (path, junk) in [
            (format!("/t/{c}/extra"), "/extra"),
            (format!("/t/{c}/"), ""),
            (format!("/414/{GLN}/254/{c}/x/y"), "/x/y"),
            (format!("/l/{}/more", lot(1)), "/more"),
        ] {
            let e = refused(&path);
            assert!(e.contains(junk) && (e.contains("trailing") || e.contains("empty segment")), "{path}: {e}");
        }
        let e = refused(&format!("/t/{c}?8030=abc"));
        assert!(e.contains("parse_url"), "{e}");
        assert!(DigitalLink::parse_path("t/ABC").is_err());
        assert!(DigitalLink::parse_path("").is_err());
        assert!(DigitalLink::parse_path("/").is_err());
    }

    #[test]
    fn urls_carry_signature_and_link_type() {
        let link = DigitalLink::Tree { gln: Some(GLN.into()), code: tree(11) };
        let url = signed_url("https://qr.example.vn/", &link, Some("c2ln"));
        assert_eq!(url, format!("https://qr.example.vn/414/{GLN}/254/{}?8030=c2ln", tree(11)));
        assert_eq!(signed_url("https://qr.example.vn", &link, None), link.url("https://qr.example.vn"));
        let s = parse_url(&url).unwrap();
        assert_eq!(s, ScannedUrl { link: link.clone(), signature: Some("c2ln".into()), link_type: None });
        let s = parse_url(&format!("{url}&utm_source=x&linkType=gs1%3Acertificationinfo#top")).unwrap();
        assert_eq!(s.link_type.as_deref(), Some("gs1:certificationinfo"));
        assert_eq!(s.signature.as_deref(), Some("c2ln"));
        let s = parse_url(&format!("HTTP://QR.EXAMPLE.VN:8080{}?linkType=gs1:epcis", link.path())).unwrap();
        assert_eq!((s.link, s.signature, s.link_type.as_deref()), (link.clone(), None, Some("gs1:epcis")));
        assert_eq!(parse_url(&link.path()).unwrap().link, link);
        let e = parse_url(&format!("{url}&8030=other")).unwrap_err().to_string();
        assert!(e.contains("8030") && e.contains("more than once"), "{e}");
        let e = parse_url(&format!("https://qr.example.vn/app{}", link.path())).unwrap_err().to_string();
        assert!(e.contains("\"app\""), "{e}");
        assert!(parse_url("https://qr.example.vn").is_err());
        assert!(parse_url("qr.example.vn/t/ABC").is_err());
        assert!(parse_url("https:///t/ABC").is_err());
    }

    #[test]
    fn link_types_resolve_in_every_spelling() {
        assert_eq!(LINK_TYPES[0].name, "gs1:pip");
        for t in LINK_TYPES {
            assert_eq!(t.uri, format!("{GS1_VOC}{}", &t.name[4..]));
            assert_eq!(link_type(t.name), Some(t));
            assert_eq!(link_type(t.uri), Some(t));
            assert_eq!(link_type(&t.uri.replace("ref.gs1.org", "gs1.org")), Some(t));
        }
        assert_eq!(link_type("gs1:recipeInfo"), None);
        assert_eq!(link_type("all"), None);
        assert_eq!(link_type("pip"), None);
    }

    #[test]
    fn linkset_follows_rfc_9264() {
        let anchor = "https://qr.example.vn/t/K7DW3QM";
        let set = linkset(
            anchor,
            &[
                Link {
                    rel: "gs1:traceability",
                    href: "https://orchardmap.vn/trace/K7DW3QM".into(),
                    title: "Nhật ký cây",
                    hreflang: Some("vi"),
                    media_type: "text/html",
                },
                Link {
                    rel: "gs1:pip",
                    href: "https://orchardmap.vn/t/K7DW3QM".into(),
                    title: "Cây sầu riêng",
                    hreflang: Some("vi"),
                    media_type: "text/html",
                },
                Link {
                    rel: "https://ref.gs1.org/voc/pip",
                    href: "https://orchardmap.vn/en/t/K7DW3QM".into(),
                    title: "Durian tree",
                    hreflang: Some("en"),
                    media_type: "text/html",
                },
                Link {
                    rel: "gs1:epcis",
                    href: "https://orchardmap.vn/epcis/t/K7DW3QM".into(),
                    title: "EPCIS events",
                    hreflang: None,
                    media_type: "application/ld+json",
                },
            ],
        );
        let ctx = &set["linkset"][0];
        assert_eq!(set["linkset"].as_array().unwrap().len(), 1);
        assert_eq!(ctx["anchor"], anchor);
        let pip = ctx["https://ref.gs1.org/voc/pip"].as_array().unwrap();
        assert_eq!(pip.len(), 2);
        assert_eq!(pip[0]["hreflang"], json!(["vi"]));
        assert_eq!(pip[1]["hreflang"], json!(["en"]));
        assert_eq!(pip[0]["type"], "text/html");
        assert_eq!(pip[0]["title"], "Cây sầu riêng");
        assert_eq!(ctx[DEFAULT_LINK], json!([pip[0].clone()]));
        let epcis = &ctx["https://ref.gs1.org/voc/epcis"][0];
        assert_eq!(epcis["type"], "application/ld+json");
        assert!(epcis.get("hreflang").is_none());
        assert_eq!(ctx["https://ref.gs1.org/voc/traceability"][0]["href"], "https://orchardmap.vn/trace/K7DW3QM");
        // No pip: the first link is the default.
        let only = linkset(
            anchor,
            &[Link { rel: "describedby", href: "https://x.vn/a".into(), title: "a", hreflang: None, media_type: "x" }],
        );
        assert_eq!(only["linkset"][0][DEFAULT_LINK][0]["href"], "https://x.vn/a");
        assert_eq!(only["linkset"][0]["describedby"][0]["href"], "https://x.vn/a");
        assert!(linkset(anchor, &[])["linkset"][0].get(DEFAULT_LINK).is_none());
    }

    /// 13 digits: 12 from `body` and the GS1 check digit.
    fn with_check(body: &str) -> String {
        format!("{body}{}", gs1::check_digit(body).unwrap())
    }

    proptest! {
        #[test]
        fn tree_paths_round_trip(serial in 0..crate::code::CODE_SPACE, gln in "[0-9]{12}", short in any::<bool>()) {
            let gln = (!short).then(|| with_check(&gln));
            let link = DigitalLink::tree(gln.as_deref(), tree(serial)).unwrap();
            prop_assert_eq!(DigitalLink::parse_path(&link.path()).unwrap(), link.clone());
            let lower = DigitalLink::parse_path(&link.path().to_lowercase()).unwrap();
            prop_assert_eq!(lower, link);
        }

        #[test]
        fn lot_paths_round_trip(id in 0i64..crate::code::CODE_SPACE as i64, len in prop::sample::select(vec![0usize, 8, 12, 13, 14]), digits in "[0-9]{13}") {
            let gtin = (len > 0).then(|| with_check(&digits[..len - 1]));
            let link = DigitalLink::lot(gtin.as_deref(), lot(id)).unwrap();
            let parsed = DigitalLink::parse_path(&link.path()).unwrap();
            prop_assert_eq!(&parsed, &link);
            if let (Some(g), DigitalLink::Lot { gtin: Some(g14), .. }) = (&gtin, &parsed) {
                prop_assert_eq!(g14, &format!("{g:0>14}"));
                // The short GTIN in the path parses to the same link.
                let path = format!("/01/{g}/10/{}", lot(id));
                prop_assert_eq!(DigitalLink::parse_path(&path).unwrap(), link);
            }
        }

        #[test]
        fn parsing_never_panics(s in "/[0-9a-zA-Z/%?=&.-]{0,40}") {
            let _ = DigitalLink::parse_path(&s);
            let _ = parse_url(&format!("https://x.vn{s}"));
        }
    }
}
