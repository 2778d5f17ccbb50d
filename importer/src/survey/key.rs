//! Row identity: the key under which a row is remembered, so importing the
//! same rows again (the same file, or the same rows in another file) adds
//! nothing.
//!
//! A submission id that is unique by construction (a UUID, as KoboToolbox
//! `_uuid` and ODK `KEY` are) is the key: `uuid:<lower-case uuid>`, the same
//! whether it came from Kobo or ODK. Any other row is keyed by a 128-bit
//! hash of its normalised content: `h:<32 hex digits>`. Short ids such as a
//! GeoJSON feature id `7` are not unique across files, so they do not make
//! keys on their own.
//!
//! The hash function below is part of the stored data: changing it changes
//! every content key, and rows imported before would no longer be
//! recognised. Its output is pinned by a test.

/// A 128-bit, non-cryptographic, platform-independent hash (two 64-bit
/// multiply-rotate lanes over 8-byte words, murmur3's finaliser).
#[derive(Debug, Clone)]
pub(crate) struct ContentHasher {
    a: u64,
    b: u64,
    len: u64,
}

const P1: u64 = 0x9E37_79B9_7F4A_7C15;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

impl ContentHasher {
    pub(crate) fn new() -> Self {
        ContentHasher { a: 0x243F_6A88_85A3_08D3, b: 0x1319_8A2E_0370_7344, len: 0 }
    }

    fn word(&mut self, w: u64) {
        self.a = (self.a ^ w).wrapping_mul(P1).rotate_left(31);
        self.b = (self.b ^ w.rotate_left(32)).wrapping_mul(P2).rotate_left(29);
    }

    /// Adds one part; parts are delimited, so `["ab", "c"]` and `["a", "bc"]` differ.
    pub(crate) fn part(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            self.word(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        // The tail word carries the part's length, which also delimits it.
        self.word(u64::from_le_bytes(w) ^ ((bytes.len() as u64) << 56) ^ 0x8000_0000_0000_0000);
        self.len = self.len.wrapping_add(bytes.len() as u64 + 1);
    }

    /// `h:` and 32 lower-case hex digits.
    pub(crate) fn finish(&self) -> String {
        let a = fmix64(self.a ^ self.len);
        let b = fmix64(self.b ^ a);
        let a = fmix64(a ^ b.rotate_left(17));
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 34];
        out[..2].copy_from_slice(b"h:");
        for (i, digit) in out[2..].iter_mut().enumerate() {
            let word = if i < 16 { a } else { b };
            *digit = HEX[((word >> ((15 - i % 16) * 4)) & 0xf) as usize];
        }
        out.iter().map(|&b| char::from(b)).collect()
    }
}

/// True for `8-4-4-4-12` hexadecimal UUIDs.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The key of an external id, when the id is unique by construction.
pub(crate) fn external_key(id: &str) -> Option<String> {
    let id = id.trim();
    let bare = id.strip_prefix("uuid:").unwrap_or(id);
    is_uuid(bare).then(|| format!("uuid:{}", bare.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(parts: &[&str]) -> String {
        let mut h = ContentHasher::new();
        for p in parts {
            h.part(p.as_bytes());
        }
        h.finish()
    }

    #[test]
    fn content_keys_are_pinned() {
        // If this changes, rows imported before are no longer recognised.
        assert_eq!(hash(&[]), "h:6724735b6a9bc080a880bb603e6b4361");
        assert_eq!(hash(&["12.6405427", "108.1270364", "Ri6 Đắk Lắk"]), "h:be345e82a50c293a8d3295f18eb21642");
    }

    #[test]
    fn content_keys_separate_parts_and_order() {
        assert_ne!(hash(&["ab", "c"]), hash(&["a", "bc"]));
        assert_ne!(hash(&["a", "b"]), hash(&["b", "a"]));
        assert_ne!(hash(&[""]), hash(&[]));
        assert_ne!(hash(&["", ""]), hash(&[""]));
        assert_ne!(hash(&["12345678"]), hash(&["12345678", ""]));
        assert_eq!(hash(&["12.64", "108.12", "Ri6"]), hash(&["12.64", "108.12", "Ri6"]));
        let mut keys = std::collections::HashSet::new();
        for i in 0..20_000 {
            assert!(keys.insert(hash(&[&i.to_string(), "Ri6"])));
        }
    }

    #[test]
    fn uuids_make_keys_and_short_ids_do_not() {
        let kobo = "3F2504E0-4F89-11D3-9A0C-0305E82C3301";
        let odk = "uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3301";
        assert_eq!(external_key(kobo), external_key(odk));
        assert_eq!(external_key(odk).as_deref(), Some(odk));
        assert_eq!(external_key("7"), None);
        assert_eq!(external_key("uuid:"), None);
        assert_eq!(external_key("3f2504e0-4f89-11d3-9a0c-0305e82c330g"), None);
    }
}
