//! GS1 identifier rules the traceability features rely on: check digits of
//! GTINs and GLNs, and the character set and length of lot and serial values.

/// GS1 AI encodable character set 82: the characters allowed in lot (AI 10),
/// serial (AI 21) and GLN extension (AI 254) values.
pub fn is_cset82(c: char) -> bool {
    matches!(c, '!' | '"' | '%'..='?' | 'A'..='Z' | '_' | 'a'..='z')
}

/// Whether `value` is a valid lot, serial or extension value: 1 to `max` characters,
/// every one from character set 82.
pub fn valid_cset82(value: &str, max: usize) -> bool {
    !value.is_empty() && value.chars().count() <= max && value.chars().all(is_cset82)
}

/// The GS1 check digit (mod 10, weights 3 and 1 from the right) of `digits`
/// (every digit but the last). `None` when a character is not a digit.
pub fn check_digit(digits: &str) -> Option<u8> {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = u32::from(c - b'0');
        sum += if i % 2 == 0 { 3 * d } else { d };
    }
    Some(((10 - sum % 10) % 10) as u8)
}

/// Whether `value` is `len` digits ending in the right check digit.
fn valid_key(value: &str, len: usize) -> bool {
    value.len() == len
        && value.bytes().all(|b| b.is_ascii_digit())
        && check_digit(&value[..len - 1]) == Some(value.as_bytes()[len - 1] - b'0')
}

/// Whether `value` is a GTIN written as 14 digits (GTIN-8/12/13 padded with
/// leading zeros, as GS1 Digital Link requires) with a valid check digit.
pub fn valid_gtin14(value: &str) -> bool {
    valid_key(value, 14)
}

/// Whether `value` is a 13-digit GLN with a valid check digit.
pub fn valid_gln(value: &str) -> bool {
    valid_key(value, 13)
}

/// A GTIN-8, -12, -13 or -14 as the 14 digits GS1 Digital Link uses; `None`
/// when it is not such a GTIN (wrong length, non-digits or wrong check digit).
pub fn normalise_gtin(value: &str) -> Option<String> {
    let v = value.trim();
    if !matches!(v.len(), 8 | 12 | 13 | 14) {
        return None;
    }
    let padded = format!("{v:0>14}");
    valid_gtin14(&padded).then_some(padded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits_of_published_examples() {
        // GS1 General Specifications examples.
        assert!(valid_gtin14("09506000134352"));
        assert!(!valid_gtin14("09506000134353"));
        assert!(valid_gln("9520123456788"));
        assert!(!valid_gln("9520123456789"));
        assert_eq!(normalise_gtin("9506000134352").as_deref(), Some("09506000134352"));
        assert_eq!(normalise_gtin("95060001343"), None);
        assert_eq!(normalise_gtin("950600013435x"), None);
    }

    #[test]
    fn character_set_82() {
        assert!(valid_cset82("DL2026-07/A_1", 20));
        assert!(!valid_cset82("", 20));
        assert!(!valid_cset82("has space", 20));
        assert!(!valid_cset82("lô", 20));
        assert!(!valid_cset82("a#b", 20));
        assert!(!valid_cset82(&"A".repeat(21), 20));
        let count = (0u8..128).filter(|&b| is_cset82(b as char)).count();
        assert_eq!(count, 82);
    }
}
