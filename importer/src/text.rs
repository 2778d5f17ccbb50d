//! Text helpers: Vietnamese diacritic folding and cultivar suggestions.

use geo_core::KNOWN_CULTIVARS;

/// Vietnamese letters with diacritics, grouped by the base letter they fold to.
const FOLDS: [(char, &str); 7] = [
    ('a', "àáảãạăằắẳẵặâầấẩẫậ"),
    ('e', "èéẻẽẹêềếểễệ"),
    ('i', "ìíỉĩị"),
    ('o', "òóỏõọôồốổỗộơờớởỡợ"),
    ('u', "ùúủũụưừứửữự"),
    ('y', "ỳýỷỹỵ"),
    ('d', "đ"),
];

/// Lower-cases, strips Vietnamese diacritics (precomposed or combining) and
/// drops everything that is not a letter or digit (spaces, `-`, `_`, `/`,
/// brackets ...): `Chuồng Bò`, `chuong-bo` and `Chuồng bò (ghép)` give
/// `chuongbo`, `chuongbo` and `chuongboghep`.
pub(crate) fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            }
            continue;
        }
        for lower in c.to_lowercase() {
            if ('\u{300}'..='\u{36f}').contains(&lower) {
                continue; // combining marks (text in NFD form)
            }
            let base = FOLDS.iter().find(|(_, set)| set.contains(lower)).map_or(lower, |(base, _)| *base);
            if base.is_alphanumeric() {
                out.push(base);
            }
        }
    }
    out
}

/// Levenshtein distance between two strings, by characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Trade names and codes that mean a known cultivar.
const ALIASES: [(&str, &str); 4] =
    [("dona", "Monthong"), ("d197", "Musang King"), ("d200", "Black Thorn"), ("ri6", "Ri6")];

/// The known cultivar an unknown name most likely means, if any is close enough:
/// equal once diacritics are folded, within a small edit distance, or a
/// prefix (`Musang` → `Musang King`, `Ri6 ghép` → `Ri6`).
pub(crate) fn suggest_cultivar(name: &str) -> Option<&'static str> {
    if name.chars().count() > 60 {
        return None;
    }
    let key = fold(name);
    if key.is_empty() {
        return None;
    }
    let candidates =
        KNOWN_CULTIVARS.iter().map(|&k| (fold(k), k)).chain(ALIASES.iter().map(|&(a, k)| (a.to_string(), k)));
    let len = key.chars().count();
    let allowed = match len {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    let mut best: Option<(usize, &'static str)> = None;
    for (candidate, known) in candidates {
        let distance = if candidate == key {
            0
        } else if (len >= 4 && candidate.starts_with(&key))
            || (candidate.chars().count() >= 3 && key.starts_with(&candidate))
        {
            1
        } else {
            edit_distance(&key, &candidate)
        };
        if distance <= allowed && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, known));
        }
    }
    best.map(|(_, known)| known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_strips_vietnamese_marks_in_both_forms() {
        assert_eq!(fold("Chuồng Bò"), "chuongbo");
        assert_eq!(fold("KHỔ QUA XANH"), "khoquaxanh");
        // NFD: o + combining circumflex + combining grave.
        assert_eq!(fold("Chuo\u{302}\u{300}ng Bo\u{300}"), "chuongbo");
        assert_eq!(fold("Đắk Lắk"), "daklak");
        assert_eq!(fold("Chiều cao (m)"), "chieucaom");
        assert_eq!(fold("group/_Vị trí_latitude"), "groupvitrilatitude");
        assert_eq!(fold("  "), "");
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("ri6", "ri7"), 1);
        assert_eq!(edit_distance("monthong", "montong"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions_find_the_intended_cultivar() {
        assert_eq!(suggest_cultivar("Ri 7"), Some("Ri6"));
        assert_eq!(suggest_cultivar("Chuong Bo"), Some("Chuồng Bò"));
        assert_eq!(suggest_cultivar("Montong"), Some("Monthong"));
        assert_eq!(suggest_cultivar("Musang"), Some("Musang King"));
        assert_eq!(suggest_cultivar("Ri6 ghép"), Some("Ri6"));
        assert_eq!(suggest_cultivar("Kho qua xan"), Some("Khổ Qua Xanh"));
        assert_eq!(suggest_cultivar("Dona Thái"), Some("Monthong"));
        assert_eq!(suggest_cultivar("Xoài cát"), None);
        assert_eq!(suggest_cultivar(""), None);
        assert_eq!(suggest_cultivar(&"x".repeat(100)), None);
    }
}
