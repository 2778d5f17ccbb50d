//! Values as volunteers write them: health and cultivar names in English or
//! Vietnamese, numbers with a decimal point (or a decimal comma in files
//! separated by `;` or tabs), dates in ISO or Vietnamese day-first form.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use geo_core::{Cultivar, Health};

use crate::text::fold;

/// Health words, folded (see [`fold`]), with the health they mean.
///
/// | health | English | Vietnamese |
/// |---|---|---|
/// | good | good, healthy, ok | tốt, khỏe, khỏe mạnh, bình thường, sinh trưởng tốt |
/// | fair | fair, average, moderate | khá, trung bình, hơi yếu |
/// | poor | poor, bad, sick, diseased | yếu, kém, xấu, bệnh, bị bệnh, sâu bệnh, suy |
/// | dead | dead | chết, đã chết, cây chết, khô chết, chết khô |
pub const HEALTH_WORDS: &[(&str, Health)] = &[
    ("good", Health::Good),
    ("healthy", Health::Good),
    ("ok", Health::Good),
    ("tot", Health::Good),
    ("khoe", Health::Good),
    ("khoemanh", Health::Good),
    ("binhthuong", Health::Good),
    ("sinhtruongtot", Health::Good),
    ("fair", Health::Fair),
    ("average", Health::Fair),
    ("moderate", Health::Fair),
    ("kha", Health::Fair),
    ("trungbinh", Health::Fair),
    ("tb", Health::Fair),
    ("hoiyeu", Health::Fair),
    ("poor", Health::Poor),
    ("bad", Health::Poor),
    ("sick", Health::Poor),
    ("diseased", Health::Poor),
    ("yeu", Health::Poor),
    ("kem", Health::Poor),
    ("xau", Health::Poor),
    ("benh", Health::Poor),
    ("bibenh", Health::Poor),
    ("saubenh", Health::Poor),
    ("suy", Health::Poor),
    ("dead", Health::Dead),
    ("chet", Health::Dead),
    ("dachet", Health::Dead),
    ("caychet", Health::Dead),
    ("khochet", Health::Dead),
    ("chetkho", Health::Dead),
];

/// Health in English or Vietnamese, any case, with or without diacritics.
pub(crate) fn parse_health(text: &str) -> Option<Health> {
    // The common case without allocating: the canonical English words.
    for h in Health::ALL {
        if text.eq_ignore_ascii_case(h.as_str()) {
            return Some(h);
        }
    }
    let key = fold(text);
    HEALTH_WORDS.iter().find(|(w, _)| *w == key).map(|(_, h)| *h)
}

/// Vietnamese and trade names of the known cultivars, folded, with the
/// canonical name ([`geo_core::KNOWN_CULTIVARS`]). A leading `sầu riêng`
/// ("durian") or `giống` ("cultivar") is ignored.
///
/// | cultivar | also written |
/// |---|---|
/// | Ri6 | Ri 6, Rì 6, Ri sáu |
/// | Monthong | Dona, Thái, Thái Lan, Monthong Thái, Dona Thái |
/// | Musang King | D197, Musang, Mu sang king |
/// | Black Thorn | D200, Gai Đen, Ochee |
/// | Chuồng Bò, Khổ Qua Xanh, Sáu Hữu, Cơm Vàng | with or without marks; Cơm Vàng Hạt Lép |
pub const CULTIVAR_NAMES: &[(&str, &str)] = &[
    ("ri6", "Ri6"),
    ("risau", "Ri6"),
    ("monthong", "Monthong"),
    ("dona", "Monthong"),
    ("donathai", "Monthong"),
    ("monthongthai", "Monthong"),
    ("thai", "Monthong"),
    ("thailan", "Monthong"),
    ("musangking", "Musang King"),
    ("musang", "Musang King"),
    ("d197", "Musang King"),
    ("blackthorn", "Black Thorn"),
    ("d200", "Black Thorn"),
    ("gaiden", "Black Thorn"),
    ("ochee", "Black Thorn"),
    ("chuongbo", "Chuồng Bò"),
    ("khoquaxanh", "Khổ Qua Xanh"),
    ("sauhuu", "Sáu Hữu"),
    ("comvang", "Cơm Vàng"),
    ("comvanghatlep", "Cơm Vàng"),
];

/// The cultivar a name means: geo-core's normalisation first (`ri 6`,
/// `Dona`, `D197`), then the Vietnamese names of [`CULTIVAR_NAMES`]; other
/// names are kept as written (and flagged by validation).
pub(crate) fn parse_cultivar(text: &str) -> Cultivar {
    let cultivar = Cultivar::new(text);
    if cultivar.is_known() {
        return cultivar;
    }
    let key = fold(text);
    let key = ["saurieng", "giong"].iter().find_map(|p| key.strip_prefix(p)).unwrap_or(&key);
    match CULTIVAR_NAMES.iter().find(|(name, _)| *name == key) {
        Some((_, canonical)) => Cultivar::new(canonical),
        None => cultivar,
    }
}

/// Why a number could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberError {
    /// Not a number at all.
    NotANumber,
    /// A decimal comma in a comma-separated file.
    DecimalComma,
}

impl NumberError {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            NumberError::NotANumber => "is not a number",
            NumberError::DecimalComma => "is not a number (use '.' as the decimal separator)",
        }
    }
}

/// A finite number. `decimal_comma` accepts `12,6405` (one comma, no
/// point), as spreadsheets in Vietnamese locale write it in files separated
/// by `;` or tabs.
pub(crate) fn parse_number(text: &str, decimal_comma: bool) -> Result<f64, NumberError> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(NumberError::NotANumber),
        Err(_) => {
            let one_comma = text.bytes().filter(|&b| b == b',').count() == 1 && !text.contains('.');
            if !one_comma {
                return Err(NumberError::NotANumber);
            }
            match text.replace(',', ".").parse::<f64>() {
                Ok(v) if v.is_finite() && decimal_comma => Ok(v),
                Ok(v) if v.is_finite() => Err(NumberError::DecimalComma),
                _ => Err(NumberError::NotANumber),
            }
        }
    }
}

fn vietnam() -> Option<FixedOffset> {
    FixedOffset::east_opt(7 * 3600)
}

const NAIVE_FORMATS: [&str; 10] = [
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%d/%m/%Y %H:%M:%S%.f",
    "%d/%m/%Y %H:%M",
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y/%m/%d %H:%M",
    "%d-%m-%Y %H:%M:%S%.f",
    "%d-%m-%Y %H:%M",
];

const DATE_FORMATS: [&str; 4] = ["%Y-%m-%d", "%d/%m/%Y", "%Y/%m/%d", "%d-%m-%Y"];

/// A point in time: RFC 3339 (`2024-03-15T08:30:00+07:00`, `...Z`), or a
/// date and time without zone: ISO (`2024-03-15 08:30[:00]`, also with
/// `T`), day first as written in Vietnam (`15/03/2024 08:30`), or a date
/// alone (midnight). Times without zone are Vietnam time (UTC+7) unless
/// `naive_is_utc` (KoboToolbox's `_submission_time` is UTC without zone).
pub(crate) fn parse_time(text: &str, naive_is_utc: bool) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z") {
        return Some(t.with_timezone(&Utc));
    }
    let naive = NAIVE_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| DATE_FORMATS.iter().find_map(|f| NaiveDate::parse_from_str(text, f).ok()).map(midnight))?;
    if naive_is_utc {
        return Some(naive.and_utc());
    }
    vietnam()?.from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc))
}

fn midnight(d: NaiveDate) -> NaiveDateTime {
    d.and_time(NaiveTime::MIN)
}

/// A planting year: `2019`, `2019.0`, or a date (`2019-05-01`, `01/05/2019`).
pub(crate) fn parse_year(text: &str) -> Option<i32> {
    if let Ok(y) = text.parse::<i32>() {
        return Some(y);
    }
    if let Ok(v) = text.parse::<f64>() {
        if v.fract() == 0.0 && v.abs() < 1e6 {
            return Some(v as i32);
        }
        return None;
    }
    DATE_FORMATS.iter().find_map(|f| NaiveDate::parse_from_str(text, f).ok()).map(|d| d.year())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn health_in_english_and_vietnamese() {
        assert_eq!(parse_health("good"), Some(Health::Good));
        assert_eq!(parse_health("GOOD"), Some(Health::Good));
        assert_eq!(parse_health("Tốt"), Some(Health::Good));
        assert_eq!(parse_health("khoẻ"), Some(Health::Good));
        assert_eq!(parse_health("Khỏe mạnh"), Some(Health::Good));
        assert_eq!(parse_health("trung bình"), Some(Health::Fair));
        assert_eq!(parse_health("Khá"), Some(Health::Fair));
        assert_eq!(parse_health("yếu"), Some(Health::Poor));
        assert_eq!(parse_health("Sâu bệnh"), Some(Health::Poor));
        assert_eq!(parse_health("CHẾT"), Some(Health::Dead));
        assert_eq!(parse_health("đã chết"), Some(Health::Dead));
        assert_eq!(parse_health("chet"), Some(Health::Dead));
        assert_eq!(parse_health("xanh"), None);
        assert_eq!(parse_health(""), None);
        for (word, _) in HEALTH_WORDS {
            assert_eq!(fold(word), *word);
        }
    }

    #[test]
    fn cultivars_in_english_and_vietnamese() {
        assert_eq!(parse_cultivar("Ri6").as_str(), "Ri6");
        assert_eq!(parse_cultivar("ri 6").as_str(), "Ri6");
        assert_eq!(parse_cultivar("Sầu riêng Ri6").as_str(), "Ri6");
        assert_eq!(parse_cultivar("Thái").as_str(), "Monthong");
        assert_eq!(parse_cultivar("Dona").as_str(), "Monthong");
        assert_eq!(parse_cultivar("musang_king").as_str(), "Musang King");
        assert_eq!(parse_cultivar("Gai đen").as_str(), "Black Thorn");
        assert_eq!(parse_cultivar("chuong bo").as_str(), "Chuồng Bò");
        assert_eq!(parse_cultivar("KHỔ QUA XANH").as_str(), "Khổ Qua Xanh");
        assert_eq!(parse_cultivar("Cơm vàng hạt lép").as_str(), "Cơm Vàng");
        assert_eq!(parse_cultivar("giống Sáu Hữu").as_str(), "Sáu Hữu");
        let unknown = parse_cultivar(" Xoài cát ");
        assert_eq!(unknown.as_str(), "Xoài cát");
        assert!(!unknown.is_known());
        for (name, canonical) in CULTIVAR_NAMES {
            assert_eq!(fold(name), *name);
            assert!(Cultivar::new(canonical).is_known(), "{canonical}");
        }
    }

    #[test]
    fn numbers_with_a_point_or_an_allowed_comma() {
        assert_eq!(parse_number("12.6405", false), Ok(12.6405));
        assert_eq!(parse_number("-0", false), Ok(0.0));
        assert_eq!(parse_number("1e3", false), Ok(1000.0));
        assert_eq!(parse_number("12,6405", true), Ok(12.6405));
        assert_eq!(parse_number("12,6405", false), Err(NumberError::DecimalComma));
        assert_eq!(parse_number("1,234.5", true), Err(NumberError::NotANumber));
        assert_eq!(parse_number("NaN", false), Err(NumberError::NotANumber));
        assert_eq!(parse_number("inf", true), Err(NumberError::NotANumber));
        assert_eq!(parse_number("1e400", false), Err(NumberError::NotANumber));
        assert_eq!(parse_number("abc", true), Err(NumberError::NotANumber));
        assert_eq!(parse_number(",", true), Err(NumberError::NotANumber));
    }

    #[test]
    fn times_in_every_written_form() {
        let at = |s: &str| parse_time(s, false).map(|t| t.to_rfc3339());
        let want = Some("2024-03-15T01:30:00+00:00".to_owned());
        assert_eq!(at("2024-03-15T08:30:00+07:00"), want);
        assert_eq!(at("2024-03-15T01:30:00Z"), want);
        assert_eq!(at("2024-03-15T01:30:00.000Z").as_deref(), Some("2024-03-15T01:30:00+00:00"));
        assert_eq!(at("2024-03-15 08:30:00"), want);
        assert_eq!(at("2024-03-15 08:30"), want);
        assert_eq!(at("15/03/2024 08:30"), want);
        assert_eq!(at("15/03/2024 08:30:00"), want);
        assert_eq!(at("15/03/2024").as_deref(), Some("2024-03-14T17:00:00+00:00"));
        assert_eq!(at("2024-03-15 08:30:00 +07:00"), want);
        assert_eq!(parse_time("2024-03-15T01:30:00", true).map(|t| t.to_rfc3339()), want);
        assert_eq!(at("2024-13-15"), None);
        assert_eq!(at("yesterday"), None);
        assert_eq!(at(""), None);
    }

    #[test]
    fn years_as_numbers_or_dates() {
        assert_eq!(parse_year("2019"), Some(2019));
        assert_eq!(parse_year("2019.0"), Some(2019));
        assert_eq!(parse_year("2019.5"), None);
        assert_eq!(parse_year("2019-05-01"), Some(2019));
        assert_eq!(parse_year("01/05/2019"), Some(2019));
        assert_eq!(parse_year("1e300"), None);
        assert_eq!(parse_year("hai nghìn"), None);
    }
}
