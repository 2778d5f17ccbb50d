//! Printable tree tag codes.
//!
//! A code is 6 payload characters plus 1 check character from a 31-symbol
//! alphabet that leaves out the look-alikes `0 O 1 I L`, so it can be read
//! aloud, typed on a phone and printed under a QR code without doubt.
//! The check character is a weighted sum modulo 31 (a prime, hence the
//! alphabet size): it catches every single wrong character and every swap of
//! two characters.
//!
//! Serial numbers map to codes through a fixed bijection over the 31^6
//! payload space, so consecutive trees get unrelated-looking codes and two
//! serials never share a code.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The code alphabet: digits 2-9 and the letters without I, L and O.
pub const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const BASE: u64 = 31;
const PAYLOAD_LEN: usize = 6;
/// 31^6: the number of distinct payloads.
pub const CODE_SPACE: u64 = 887_503_681;
// Multiplier coprime to 31^6 (not divisible by 31) and offset: x -> (x*MUL + ADD) mod 31^6
// is a bijection of the payload space.
const MUL: u64 = 190_071_437;
const ADD: u64 = 104_729;

/// A tree's public tag code, e.g. `K7DW3QX`: unique, printable, self-checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TreeCode([u8; PAYLOAD_LEN + 1]);

fn symbol_value(c: u8) -> Option<u64> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u64)
}

fn check_symbol(payload: &[u8]) -> Option<u8> {
    // Weights 7..2 on the payload and 1 on the check symbol; distinct weights
    // below the prime 31 make every substitution and transposition change the sum.
    let mut sum = 0;
    for (i, &c) in payload.iter().enumerate() {
        sum += (PAYLOAD_LEN as u64 + 1 - i as u64) * symbol_value(c)?;
    }
    let check = (BASE - sum % BASE) % BASE;
    Some(ALPHABET[check as usize])
}

impl TreeCode {
    /// The code for serial number `serial` (0 ≤ serial < 31^6). Distinct serials give distinct codes.
    pub fn from_serial(serial: u64) -> Result<Self> {
        if serial >= CODE_SPACE {
            return Err(Error::BadCode { value: serial.to_string(), reason: "serial is beyond the 31^6 code space" });
        }
        let mut x = (serial * MUL + ADD) % CODE_SPACE;
        let mut bytes = [0u8; PAYLOAD_LEN + 1];
        for slot in bytes[..PAYLOAD_LEN].iter_mut().rev() {
            *slot = ALPHABET[(x % BASE) as usize];
            x /= BASE;
        }
        // Every payload symbol is in the alphabet, so the check symbol exists.
        bytes[PAYLOAD_LEN] = check_symbol(&bytes[..PAYLOAD_LEN]).unwrap_or(ALPHABET[0]);
        Ok(Self(bytes))
    }

    /// Parses a code as a person may type it: case-insensitive, with spaces or
    /// hyphens anywhere. Refuses unknown characters, wrong length and a bad check character.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason| Error::BadCode { value: input.to_string(), reason };
        let mut bytes = [0u8; PAYLOAD_LEN + 1];
        let mut n = 0;
        for ch in input.chars() {
            if ch == '-' || ch == ' ' {
                continue;
            }
            let up = ch.to_ascii_uppercase();
            if !up.is_ascii() || symbol_value(up as u8).is_none() {
                return Err(bad("contains a character outside the code alphabet 23456789ABCDEFGHJKMNPQRSTUVWXYZ"));
            }
            if n == bytes.len() {
                return Err(bad("is longer than 7 characters"));
            }
            bytes[n] = up as u8;
            n += 1;
        }
        if n != bytes.len() {
            return Err(bad("must have 7 characters"));
        }
        if check_symbol(&bytes[..PAYLOAD_LEN]) != Some(bytes[PAYLOAD_LEN]) {
            return Err(bad("check character does not match (mistyped character?)"));
        }
        Ok(Self(bytes))
    }

    /// The serial number this code stands for: the inverse of
    /// [`TreeCode::from_serial`] (a code derived from tree id n gives n).
    pub fn serial(&self) -> u64 {
        // 190,071,437 × 781,476,089 ≡ 1 (mod 31^6).
        const INVERSE: u64 = 781_476_089;
        let x = self.0[..PAYLOAD_LEN].iter().fold(0u64, |x, &c| x * BASE + symbol_value(c).unwrap_or(0));
        (x + CODE_SPACE - ADD) % CODE_SPACE * INVERSE % CODE_SPACE
    }

    /// The code as a 7-character string.
    pub fn as_str(&self) -> &str {
        // Only alphabet bytes (ASCII) are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for TreeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TreeCode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl serde::Serialize for TreeCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for TreeCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn alphabet_has_no_look_alikes() {
        for c in b"01OIL" {
            assert!(!ALPHABET.contains(c), "{} in alphabet", *c as char);
        }
        let mut sorted = ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 31);
    }

    #[test]
    fn serial_inverts_from_serial() {
        for serial in [0, 1, 30, 31, 104_729, 500_000_001, CODE_SPACE - 1] {
            assert_eq!(TreeCode::from_serial(serial).unwrap().serial(), serial);
        }
    }

    #[test]
    fn first_serials_are_distinct_and_valid() {
        let mut seen = std::collections::HashSet::new();
        for serial in 0..50_000 {
            let code = TreeCode::from_serial(serial).unwrap();
            assert_eq!(TreeCode::parse(code.as_str()).unwrap(), code);
            assert!(seen.insert(code), "duplicate code at serial {serial}");
        }
    }

    #[test]
    fn parse_accepts_lower_case_and_separators() {
        let code = TreeCode::from_serial(42).unwrap();
        let s = code.as_str().to_ascii_lowercase();
        let spaced = format!("{}-{} {}", &s[..3], &s[3..6], &s[6..]);
        assert_eq!(TreeCode::parse(&spaced).unwrap(), code);
    }

    #[test]
    fn parse_refuses_bad_input() {
        assert!(TreeCode::parse("").is_err());
        assert!(TreeCode::parse("ABCDEF").is_err());
        assert!(TreeCode::parse("ABCDEFGH").is_err());
        assert!(TreeCode::parse("0BCDEFG").is_err());
        assert!(TreeCode::parse("IBCDEFG").is_err());
        assert!(TreeCode::parse("ÀBCDEFG").is_err());
        assert!(TreeCode::from_serial(CODE_SPACE).is_err());
    }

    proptest! {
        #[test]
        fn every_single_substitution_is_detected(serial in 0..CODE_SPACE, pos in 0usize..7, sym in 0usize..31) {
            let code = TreeCode::from_serial(serial).unwrap();
            let mut bytes = code.0;
            prop_assume!(bytes[pos] != ALPHABET[sym]);
            bytes[pos] = ALPHABET[sym];
            let typed = std::str::from_utf8(&bytes).unwrap().to_string();
            prop_assert!(TreeCode::parse(&typed).is_err());
        }

        #[test]
        fn swaps_are_detected(serial in 0..CODE_SPACE, pos in 0usize..6, gap in 1usize..7) {
            let code = TreeCode::from_serial(serial).unwrap();
            let mut bytes = code.0;
            let other = (pos + gap).min(6);
            prop_assume!(bytes[pos] != bytes[other]);
            bytes.swap(pos, other);
            let typed = std::str::from_utf8(&bytes).unwrap().to_string();
            prop_assert!(TreeCode::parse(&typed).is_err());
        }

        #[test]
        fn parse_never_panics(s in ".{0,20}") {
            let _ = TreeCode::parse(&s);
        }
    }
}
