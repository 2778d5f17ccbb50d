//! Ed25519 signatures over Digital Link identifiers: the issuer's key ring, the
//! public keys (a JWKS) a scanner needs, and the offline check of a scanned URL.
//!
//! A label's URL carries the signature of [`DigitalLink::canonical`] (the
//! identifier path, e.g. `/414/{gln}/254/{code}`) as GS1 Digital Signature
//! AI 8030 in the query ([`signed_url`](crate::trace::signed_url)). The signature
//! is 64 bytes, written as 86 characters of base64url without padding.
//!
//! A genuine signature proves that orchardmap issued this identifier; it does not
//! prove the label is the original one, since a copied label carries the same
//! signature. Counting scans per code catches copies.
//!
//! Key ids (`kid`) are the full RFC 7638 JWK thumbprint (43 characters): the
//! base64url SHA-256 of `{"crv":"Ed25519","kty":"OKP","x":"..."}`, so any JOSE
//! library computes the same id from the public key.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use geo_core::TreeCode;
//! use geo_core::trace::{DigitalLink, signed_url};
//! use geo_core::trust::{KeyRing, PublicKeys, Verdict, verify_url};
//!
//! let now = Utc.with_ymd_and_hms(2026, 7, 1, 8, 0, 0).unwrap();
//! let ring = KeyRing::generate([7; 32], now); // the seed comes from the caller's RNG
//! let link = DigitalLink::tree(None, TreeCode::from_serial(42).unwrap()).unwrap();
//! let url = signed_url("https://qr.example.vn", &link, Some(&ring.sign(&link.canonical())));
//!
//! // A scanner holding only the published JWKS.
//! let keys = PublicKeys::from_jwks(&ring.public().to_jwks()).unwrap();
//! let (scanned, verdict) = verify_url(&url, &keys).unwrap();
//! assert_eq!(scanned, link);
//! assert_eq!(verdict, Verdict::Genuine { kid: ring.active_kid().to_string() });
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::trace::{DigitalLink, TraceError, parse_url};

/// Length of a signature as written in a URL: 64 bytes in base64url without padding.
pub const SIGNATURE_CHARS: usize = 86;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding into exactly `N` bytes. Refuses padding,
/// the `+` `/` alphabet and non-zero trailing bits, so each value has one spelling.
fn unb64<const N: usize>(s: &str) -> Option<[u8; N]> {
    URL_SAFE_NO_PAD.decode(s).ok()?.try_into().ok()
}

/// The key id of an Ed25519 public key: its RFC 7638 JWK thumbprint, base64url
/// (no padding) of SHA-256 over `{"crv":"Ed25519","kty":"OKP","x":"<x>"}`.
pub fn key_id(public: &[u8; 32]) -> String {
    let jwk = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(public));
    b64(&Sha256::digest(jwk.as_bytes()))
}

/// RFC 3339 with `Z`, as chrono's serde writes times in the key ring.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn key_err(kid: impl Into<String>, reason: impl Into<String>) -> TraceError {
    TraceError::Key { kid: kid.into(), reason: reason.into() }
}

/// Where a key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Signs new labels.
    Active,
    /// Replaced by a newer key; its signatures still verify.
    Retired,
    /// Withdrawn (leaked or misused): its signatures verify as [`Verdict::Revoked`].
    Revoked,
}

impl KeyStatus {
    /// `active`, `retired` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Retired => "retired",
            KeyStatus::Revoked => "revoked",
        }
    }

    fn of(retired_at: Option<DateTime<Utc>>, revoked_at: Option<DateTime<Utc>>) -> Self {
        match (retired_at, revoked_at) {
            (_, Some(_)) => KeyStatus::Revoked,
            (Some(_), None) => KeyStatus::Retired,
            (None, None) => KeyStatus::Active,
        }
    }
}

#[derive(Clone)]
struct RingKey {
    kid: String,
    key: SigningKey,
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl RingKey {
    fn new(seed: [u8; 32], now: DateTime<Utc>) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let kid = key_id(key.verifying_key().as_bytes());
        RingKey { kid, key, created_at: now, retired_at: None, revoked_at: None }
    }

    fn status(&self) -> KeyStatus {
        KeyStatus::of(self.retired_at, self.revoked_at)
    }
}

/// The issuer's signing keys: exactly one active key signs; retired keys still
/// verify; revoked keys verify as [`Verdict::Revoked`].
///
/// Serialises (serde) as the JSON the issuer keeps secret:
/// `{"keys":[{"kid","d","x","created_at","retired_at"?,"revoked_at"?}]}` with `d`
/// the 32-byte seed and `x` the public key, both base64url without padding, and
/// times in RFC 3339. Loading checks every key (seed length, `x` and `kid` match
/// the seed, no duplicates, exactly one active key). `Debug` shows no secrets.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "RingFile", into = "RingFile")]
pub struct KeyRing {
    keys: Vec<RingKey>,
    active: usize,
}

impl KeyRing {
    /// A ring with one active key made from `seed` (32 random bytes from the caller).
    pub fn generate(seed: [u8; 32], now: DateTime<Utc>) -> KeyRing {
        KeyRing { keys: vec![RingKey::new(seed, now)], active: 0 }
    }

    /// Makes a new active key from `seed`; the previous active key is retired at
    /// `now` (its signatures still verify). Returns the new key's id. Refuses a
    /// seed whose key is already in the ring (it would bring back a retired or
    /// revoked key).
    pub fn rotate(&mut self, seed: [u8; 32], now: DateTime<Utc>) -> Result<&str, TraceError> {
        let new = RingKey::new(seed, now);
        if let Some(old) = self.keys.iter().find(|k| k.kid == new.kid) {
            return Err(key_err(
                &new.kid,
                format!("is already in the key ring ({}): give a fresh random seed", old.status().as_str()),
            ));
        }
        if let Some(active) = self.keys.get_mut(self.active) {
            active.retired_at = Some(now);
        }
        self.keys.push(new);
        self.active = self.keys.len() - 1;
        Ok(self.active_kid())
    }

    /// Revokes key `kid` at `now`: signatures it made now verify as
    /// [`Verdict::Revoked`]. Revoking a revoked key keeps the first time. The
    /// active key cannot be revoked: [`KeyRing::rotate`] first.
    pub fn revoke(&mut self, kid: &str, now: DateTime<Utc>) -> Result<(), TraceError> {
        let Some(pos) = self.keys.iter().position(|k| k.kid == kid) else {
            return Err(key_err(kid, "is not in the key ring"));
        };
        if pos == self.active {
            return Err(key_err(kid, "is the active key: rotate to a new key before revoking it"));
        }
        let key = &mut self.keys[pos];
        key.revoked_at.get_or_insert(now);
        Ok(())
    }

    fn active_key(&self) -> &RingKey {
        // `active` always indexes `keys` (checked on load, kept by every method), and a ring is never empty.
        &self.keys[self.active.min(self.keys.len().saturating_sub(1))]
    }

    /// The id of the key that signs.
    pub fn active_kid(&self) -> &str {
        &self.active_key().kid
    }

    /// Signs `canonical` (a [`DigitalLink::canonical`]) with the active key: the
    /// 64-byte Ed25519 signature in base64url without padding ([`SIGNATURE_CHARS`] characters).
    pub fn sign(&self, canonical: &str) -> String {
        b64(&self.active_key().key.sign(canonical.as_bytes()).to_bytes())
    }

    /// The public half: every key's public key and status, nothing secret.
    pub fn public(&self) -> PublicKeys {
        PublicKeys {
            keys: self
                .keys
                .iter()
                .map(|k| PublicKey {
                    kid: k.kid.clone(),
                    key: k.key.verifying_key(),
                    status: k.status(),
                    retired_at: k.retired_at,
                    revoked_at: k.revoked_at,
                })
                .collect(),
        }
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for k in &self.keys {
            list.entry(&format_args!("{} ({})", k.kid, k.status().as_str()));
        }
        list.finish()
    }
}

/// The stored form of a key ring.
#[derive(Serialize, Deserialize)]
struct RingFile {
    keys: Vec<KeyRecord>,
}

#[derive(Serialize, Deserialize)]
struct KeyRecord {
    kid: String,
    d: String,
    x: String,
    created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<DateTime<Utc>>,
}

impl From<KeyRing> for RingFile {
    fn from(ring: KeyRing) -> Self {
        RingFile {
            keys: ring
                .keys
                .iter()
                .map(|k| KeyRecord {
                    kid: k.kid.clone(),
                    d: b64(&k.key.to_bytes()),
                    x: b64(k.key.verifying_key().as_bytes()),
                    created_at: k.created_at,
                    retired_at: k.retired_at,
                    revoked_at: k.revoked_at,
                })
                .collect(),
        }
    }
}

impl TryFrom<RingFile> for KeyRing {
    type Error = TraceError;

    fn try_from(file: RingFile) -> Result<Self, TraceError> {
        let mut keys: Vec<RingKey> = Vec::with_capacity(file.keys.len());
        for (i, rec) in file.keys.into_iter().enumerate() {
            let name = if rec.kid.is_empty() { format!("#{}", i + 1) } else { rec.kid.clone() };
            let seed = unb64::<32>(&rec.d).ok_or_else(|| key_err(&name, "d is not 32 bytes in base64url"))?;
            let key = RingKey::new(seed, rec.created_at);
            if b64(key.key.verifying_key().as_bytes()) != rec.x {
                return Err(key_err(&name, "x is not the public key of d"));
            }
            if key.kid != rec.kid {
                return Err(key_err(&name, format!("kid is not the key's RFC 7638 thumbprint {}", key.kid)));
            }
            if keys.iter().any(|k| k.kid == key.kid) {
                return Err(key_err(&name, "appears twice"));
            }
            keys.push(RingKey { retired_at: rec.retired_at, revoked_at: rec.revoked_at, ..key });
        }
        let active: Vec<usize> =
            keys.iter().enumerate().filter(|(_, k)| k.status() == KeyStatus::Active).map(|(i, _)| i).collect();
        match active.as_slice() {
            [one] => Ok(KeyRing { active: *one, keys }),
            [] => Err(key_err("key ring", "has no active key (every key is retired or revoked)")),
            [_, rest @ ..] => {
                Err(key_err("key ring", format!("has {} active keys; all but one must be retired", rest.len() + 1)))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PublicKey {
    kid: String,
    key: VerifyingKey,
    status: KeyStatus,
    retired_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// The public keys a scanner verifies with, published as a JWKS (RFC 7517, with
/// the OKP key type of RFC 8037).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeys {
    keys: Vec<PublicKey>,
}

/// Extension member of each JWK: the key's [`KeyStatus`].
pub const JWK_STATUS: &str = "orchardmap:status";
/// Extension member: when the key was retired (RFC 3339), if it was.
pub const JWK_RETIRED_AT: &str = "orchardmap:retired_at";
/// Extension member: when the key was revoked (RFC 3339), if it was.
pub const JWK_REVOKED_AT: &str = "orchardmap:revoked_at";

impl PublicKeys {
    /// The JWKS: `{"keys":[{"kty":"OKP","crv":"Ed25519","x","kid","alg":"EdDSA","use":"sig",
    /// "orchardmap:status":"active|retired|revoked","orchardmap:retired_at"?,"orchardmap:revoked_at"?}]}`.
    pub fn to_jwks(&self) -> Value {
        let keys = self
            .keys
            .iter()
            .map(|k| {
                let mut jwk = Map::new();
                jwk.insert("kty".into(), "OKP".into());
                jwk.insert("crv".into(), "Ed25519".into());
                jwk.insert("x".into(), b64(k.key.as_bytes()).into());
                jwk.insert("kid".into(), k.kid.clone().into());
                jwk.insert("alg".into(), "EdDSA".into());
                jwk.insert("use".into(), "sig".into());
                jwk.insert(JWK_STATUS.into(), k.status.as_str().into());
                if let Some(t) = k.retired_at {
                    jwk.insert(JWK_RETIRED_AT.into(), rfc3339(t).into());
                }
                if let Some(t) = k.revoked_at {
                    jwk.insert(JWK_REVOKED_AT.into(), rfc3339(t).into());
                }
                Value::Object(jwk)
            })
            .collect();
        let mut set = Map::new();
        set.insert("keys".into(), Value::Array(keys));
        Value::Object(set)
    }

    /// Reads a JWKS as [`PublicKeys::to_jwks`] writes it. Refuses, naming the key
    /// (its `kid`, else its position `#n`): a `kty` other than `OKP` or `crv` other
    /// than `Ed25519`, an `alg` other than `EdDSA`/`Ed25519`, a `use` other than
    /// `sig`, a private part (`d`), `x` that is not 32 bytes of base64url or not a
    /// curve point, a `kid` that is not the key's thumbprint, a repeated `kid`,
    /// an unknown status or time. A missing status means active.
    pub fn from_jwks(jwks: &Value) -> Result<PublicKeys, TraceError> {
        let Some(list) = jwks.get("keys").and_then(Value::as_array) else {
            return Err(key_err("JWKS", "has no \"keys\" array"));
        };
        if list.is_empty() {
            return Err(key_err("JWKS", "has no keys"));
        }
        let mut keys: Vec<PublicKey> = Vec::with_capacity(list.len());
        for (i, jwk) in list.iter().enumerate() {
            let key = public_key(i, jwk)?;
            if keys.iter().any(|k| k.kid == key.kid) {
                return Err(key_err(&key.kid, "appears twice"));
            }
            keys.push(key);
        }
        Ok(PublicKeys { keys })
    }

    /// [`PublicKeys::from_jwks`] from JSON text.
    pub fn from_jwks_str(jwks: &str) -> Result<PublicKeys, TraceError> {
        let value: Value = serde_json::from_str(jwks).map_err(|e| key_err("JWKS", format!("is not JSON: {e}")))?;
        Self::from_jwks(&value)
    }

    /// The status of key `kid`, if it is here.
    pub fn status(&self, kid: &str) -> Option<KeyStatus> {
        self.keys.iter().find(|k| k.kid == kid).map(|k| k.status)
    }

    /// The key ids, in the order of the JWKS.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    /// Checks `signature` (base64url, as in `?8030=`) over `canonical` against every
    /// key with strict Ed25519 verification: [`Verdict::Unsigned`] without a
    /// signature, [`Verdict::Tampered`] when it is malformed or no key accepts it,
    /// [`Verdict::Revoked`] when a revoked key made it, else [`Verdict::Genuine`].
    pub fn verify(&self, canonical: &str, signature: Option<&str>) -> Verdict {
        let Some(sig) = signature else {
            return Verdict::Unsigned;
        };
        let Some(bytes) = unb64::<64>(sig) else {
            return Verdict::Tampered;
        };
        let sig = Signature::from_bytes(&bytes);
        match self.keys.iter().find(|k| k.key.verify_strict(canonical.as_bytes(), &sig).is_ok()) {
            None => Verdict::Tampered,
            Some(k) if k.status == KeyStatus::Revoked => Verdict::Revoked { kid: k.kid.clone() },
            Some(k) => Verdict::Genuine { kid: k.kid.clone() },
        }
    }
}

fn public_key(i: usize, jwk: &Value) -> Result<PublicKey, TraceError> {
    let str_of = |name: &str| jwk.get(name).and_then(Value::as_str);
    let name = str_of("kid").filter(|k| !k.is_empty()).map_or_else(|| format!("#{}", i + 1), str::to_string);
    if !jwk.is_object() {
        return Err(key_err(name, "is not a JSON object"));
    }
    let member = |m: &str| -> Result<Option<&str>, TraceError> {
        match jwk.get(m) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(key_err(&name, format!("{m} {other} is not a string"))),
        }
    };
    match member("kty")? {
        Some("OKP") => {}
        other => return Err(key_err(&name, format!("kty {other:?} is not OKP (only Ed25519 keys are used)"))),
    }
    match member("crv")? {
        Some("Ed25519") => {}
        other => return Err(key_err(&name, format!("crv {other:?} is not Ed25519"))),
    }
    if let Some(alg) = member("alg")?.filter(|a| !matches!(*a, "EdDSA" | "Ed25519")) {
        return Err(key_err(&name, format!("alg {alg:?} is not EdDSA")));
    }
    if let Some(u) = member("use")?.filter(|u| *u != "sig") {
        return Err(key_err(&name, format!("use {u:?} is not sig")));
    }
    if jwk.get("d").is_some() {
        return Err(key_err(&name, "carries a private key (d): never publish it"));
    }
    let x = member("x")?.ok_or_else(|| key_err(&name, "has no x"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(x)
        .map_err(|e| key_err(&name, format!("x {x:?} is not base64url without padding: {e}")))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| key_err(&name, format!("x is {} bytes; an Ed25519 key has 32", b.len())))?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| key_err(&name, "x is not an Ed25519 public key"))?;
    let thumbprint = key_id(&bytes);
    match member("kid")? {
        Some(kid) if kid == thumbprint => {}
        Some(kid) => {
            return Err(key_err(&name, format!("kid {kid:?} is not the key's RFC 7638 thumbprint {thumbprint}")));
        }
        None => return Err(key_err(&name, format!("has no kid (expected its thumbprint {thumbprint})"))),
    }
    let time = |m: &str| -> Result<Option<DateTime<Utc>>, TraceError> {
        member(m)?
            .map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| key_err(&name, format!("{m} {t:?} is not an RFC 3339 time: {e}")))
            })
            .transpose()
    };
    let retired_at = time(JWK_RETIRED_AT)?;
    let revoked_at = time(JWK_REVOKED_AT)?;
    let status = match member(JWK_STATUS)? {
        None | Some("active") => KeyStatus::Active,
        Some("retired") => KeyStatus::Retired,
        Some("revoked") => KeyStatus::Revoked,
        Some(other) => {
            return Err(key_err(&name, format!("{JWK_STATUS} {other:?} is not active, retired or revoked")));
        }
    };
    // A revocation time alone still revokes: never let a stale status hide it.
    let status = if revoked_at.is_some() { KeyStatus::Revoked } else { status };
    Ok(PublicKey { kid: thumbprint, key, status, retired_at, revoked_at })
}

/// What a signature check found.
///
/// Serialises with a lower-case `verdict` tag: `{"verdict":"genuine","kid":"..."}`,
/// `{"verdict":"unsigned"}`, `{"verdict":"tampered"}`, `{"verdict":"revoked","kid":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// A current or retired orchardmap key signed exactly this identifier.
    Genuine {
        /// The key that signed.
        kid: String,
    },
    /// The URL carries no signature.
    Unsigned,
    /// The signature is malformed, or no key accepts it for this identifier
    /// (copied from another label, or the identifier was changed).
    Tampered,
    /// A revoked key signed it: treat the label as not genuine.
    Revoked {
        /// The revoked key.
        kid: String,
    },
}

impl Verdict {
    /// Whether the label is genuine.
    pub fn is_genuine(&self) -> bool {
        matches!(self, Verdict::Genuine { .. })
    }
}

/// Offline check of a scanned URL: parses it ([`parse_url`]) and verifies its
/// `8030` signature over the identifier's canonical form.
pub fn verify_url(url: &str, keys: &PublicKeys) -> Result<(DigitalLink, Verdict), TraceError> {
    let scanned = parse_url(url)?;
    let verdict = keys.verify(&scanned.link.canonical(), scanned.signature.as_deref());
    Ok((scanned.link, verdict))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::code::{CODE_SPACE, TreeCode};
    use crate::lot::{LotCode, LotId};
    use crate::trace::signed_url;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;

    const GLN: &str = "9520123456788";
    const BASE: &str = "https://qr.omap.vn";

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 7, 1, 8, 0, 0).unwrap()
    }

    fn tree_link(serial: u64, gln: Option<&str>) -> DigitalLink {
        DigitalLink::tree(gln, TreeCode::from_serial(serial).unwrap()).unwrap()
    }

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let v: Vec<u8> = (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect();
        v.try_into().unwrap()
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 section 7.1, TEST 1: empty message.
        let seed = hex::<32>("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let public = hex::<32>("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let signature = hex::<64>(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        );
        let ring = KeyRing::generate(seed, t0());
        let sig = ring.sign("");
        assert_eq!(URL_SAFE_NO_PAD.decode(&sig).unwrap(), signature.to_vec());
        assert_eq!(sig.len(), SIGNATURE_CHARS);
        let jwks = ring.public().to_jwks();
        assert_eq!(jwks["keys"][0]["x"], b64(&public));
        assert_eq!(jwks["keys"][0]["x"], "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        // RFC 8037 appendix A.3: the JWK thumbprint of this very key.
        assert_eq!(ring.active_kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        assert_eq!(key_id(&public), ring.active_kid());
        let keys = ring.public();
        assert_eq!(keys.verify("", Some(&sig)), Verdict::Genuine { kid: ring.active_kid().into() });
        // The stored ring holds the RFC's secret key as d.
        let stored = serde_json::to_value(&ring).unwrap();
        assert_eq!(stored["keys"][0]["d"], "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
    }

    #[test]
    fn signature_round_trip() {
        let ring = KeyRing::generate([1; 32], t0());
        let keys = ring.public();
        for link in [
            tree_link(5, Some(GLN)),
            tree_link(5, None),
            DigitalLink::lot(Some("9506000134352"), LotCode::for_id(LotId(9)).unwrap()).unwrap(),
            DigitalLink::lot(None, LotCode::for_id(LotId(9)).unwrap()).unwrap(),
        ] {
            let sig = ring.sign(&link.canonical());
            assert_eq!(sig.len(), SIGNATURE_CHARS);
            let genuine = Verdict::Genuine { kid: ring.active_kid().into() };
            assert_eq!(keys.verify(&link.canonical(), Some(&sig)), genuine);
            let url = signed_url(BASE, &link, Some(&sig));
            assert_eq!(verify_url(&url, &keys).unwrap(), (link.clone(), genuine.clone()));
            // Lower-case codes scan to the same identifier, so the signature holds.
            assert_eq!(
                verify_url(&url.replace(link.code_str(), &link.code_str().to_lowercase()), &keys).unwrap().1,
                genuine
            );
            assert_eq!(verify_url(&link.url(BASE), &keys).unwrap(), (link, Verdict::Unsigned));
        }
    }

    #[test]
    fn swapped_signature_is_tampered() {
        let ring = KeyRing::generate([2; 32], t0());
        let keys = ring.public();
        let a = tree_link(100, Some(GLN));
        let b = tree_link(101, Some(GLN));
        let sig_a = ring.sign(&a.canonical());
        assert_eq!(keys.verify(&b.canonical(), Some(&sig_a)), Verdict::Tampered);
        assert_eq!(verify_url(&signed_url(BASE, &b, Some(&sig_a)), &keys).unwrap().1, Verdict::Tampered);
        // Same code under another orchard's GLN, or in the short form.
        let other_gln = tree_link(100, Some("4012345000009"));
        assert_eq!(keys.verify(&other_gln.canonical(), Some(&sig_a)), Verdict::Tampered);
        assert_eq!(keys.verify(&tree_link(100, None).canonical(), Some(&sig_a)), Verdict::Tampered);
        // A lot signature on a tree and the other way round.
        let lot = DigitalLink::lot(None, LotCode::for_id(LotId(100)).unwrap()).unwrap();
        assert_eq!(keys.verify(&lot.canonical(), Some(&sig_a)), Verdict::Tampered);
        // Another issuer's key.
        let stranger = KeyRing::generate([3; 32], t0());
        assert_eq!(keys.verify(&a.canonical(), Some(&stranger.sign(&a.canonical()))), Verdict::Tampered);
    }

    #[test]
    fn every_changed_character_is_tampered_or_refused() {
        let ring = KeyRing::generate([4; 32], t0());
        let keys = ring.public();
        for link in [
            tree_link(777, Some(GLN)),
            DigitalLink::lot(Some("09506000134352"), LotCode::for_id(LotId(77)).unwrap()).unwrap(),
        ] {
            let sig = ring.sign(&link.canonical());
            let url = signed_url(BASE, &link, Some(&sig));
            let path_start = BASE.len();
            let path_end = url.find('?').unwrap();
            let (mut same, mut tampered, mut refused) = (0, 0, 0);
            for pos in path_start + 1..path_end {
                for sub in ['0', '1', '7', '9', 'A', 'K', 'Z', 'x'] {
                    let mut changed: Vec<char> = url.chars().collect();
                    if changed[pos] == sub || changed[pos] == '/' {
                        continue;
                    }
                    changed[pos] = sub;
                    let changed: String = changed.into_iter().collect();
                    match verify_url(&changed, &keys) {
                        Err(_) => refused += 1,
                        // Only a change of letter case keeps the identifier (and the signature).
                        Ok((l, v)) if l == link => {
                            assert_eq!(v, Verdict::Genuine { kid: ring.active_kid().into() }, "{changed}");
                            same += 1;
                        }
                        Ok((_, v)) => {
                            assert_eq!(v, Verdict::Tampered, "{changed}");
                            tampered += 1;
                        }
                    }
                }
            }
            // Check digits and check characters catch every single substitution before
            // the signature is even looked at; lower-casing a code letter is harmless.
            assert!(refused > 100, "{same} same, {tampered} tampered, {refused} refused");
            // Any change to the signature itself.
            for pos in 0..sig.len() {
                let mut s: Vec<u8> = sig.clone().into_bytes();
                s[pos] = if s[pos] == b'A' { b'B' } else { b'A' };
                let s = String::from_utf8(s).unwrap();
                assert_eq!(keys.verify(&link.canonical(), Some(&s)), Verdict::Tampered, "{s}");
            }
        }
    }

    #[test]
    fn malformed_signatures_are_tampered() {
        let ring = KeyRing::generate([5; 32], t0());
        let keys = ring.public();
        let link = tree_link(1, None);
        let sig = ring.sign(&link.canonical());
        let std_alphabet = sig.replace('-', "+").replace('_', "/");
        for bad in [
            String::new(),
            "abc".to_string(),
            format!("{sig}=="),
            format!("{sig}A"),
            sig[..85].to_string(),
            "A".repeat(86),
            "!".repeat(86),
        ] {
            assert_eq!(keys.verify(&link.canonical(), Some(&bad)), Verdict::Tampered, "{bad}");
        }
        if std_alphabet != sig {
            assert_eq!(keys.verify(&link.canonical(), Some(&std_alphabet)), Verdict::Tampered);
        }
        assert_eq!(keys.verify(&link.canonical(), None), Verdict::Unsigned);
    }

    #[test]
    fn rotated_keys_still_verify_old_signatures() {
        let mut ring = KeyRing::generate([10; 32], t0());
        let old_kid = ring.active_kid().to_string();
        let a = tree_link(20, Some(GLN));
        let old_sig = ring.sign(&a.canonical());
        let new_kid = ring.rotate([11; 32], t0() + chrono::Duration::days(90)).unwrap().to_string();
        assert_ne!(new_kid, old_kid);
        assert_eq!(ring.active_kid(), new_kid);
        let new_sig = ring.sign(&a.canonical());
        assert_ne!(new_sig, old_sig);
        let keys = ring.public();
        assert_eq!(keys.status(&old_kid), Some(KeyStatus::Retired));
        assert_eq!(keys.status(&new_kid), Some(KeyStatus::Active));
        assert_eq!(keys.kids().collect::<Vec<_>>(), [old_kid.as_str(), new_kid.as_str()]);
        assert_eq!(keys.verify(&a.canonical(), Some(&old_sig)), Verdict::Genuine { kid: old_kid.clone() });
        assert_eq!(keys.verify(&a.canonical(), Some(&new_sig)), Verdict::Genuine { kid: new_kid.clone() });
        // A seed already used would bring back an old key.
        let e = ring.rotate([10; 32], t0()).unwrap_err().to_string();
        assert!(e.contains(&old_kid) && e.contains("already in the key ring"), "{e}");
        assert_eq!(ring.active_kid(), new_kid);
    }

    #[test]
    fn revoked_key_gives_revoked() {
        let mut ring = KeyRing::generate([20; 32], t0());
        let old_kid = ring.active_kid().to_string();
        let a = tree_link(30, None);
        let old_sig = ring.sign(&a.canonical());
        let e = ring.revoke(&old_kid, t0()).unwrap_err().to_string();
        assert!(e.contains(&old_kid) && e.contains("active key"), "{e}");
        let new_kid = ring.rotate([21; 32], t0()).unwrap().to_string();
        let revoked_at = t0() + chrono::Duration::hours(1);
        ring.revoke(&old_kid, revoked_at).unwrap();
        ring.revoke(&old_kid, revoked_at + chrono::Duration::hours(1)).unwrap();
        let e = ring.revoke("nope", t0()).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("not in the key ring"), "{e}");
        let keys = ring.public();
        assert_eq!(keys.status(&old_kid), Some(KeyStatus::Revoked));
        assert_eq!(keys.verify(&a.canonical(), Some(&old_sig)), Verdict::Revoked { kid: old_kid.clone() });
        let new_sig = ring.sign(&a.canonical());
        assert_eq!(keys.verify(&a.canonical(), Some(&new_sig)), Verdict::Genuine { kid: new_kid });
        // The first revocation time is kept, and published.
        let jwks = keys.to_jwks();
        assert_eq!(jwks["keys"][0][JWK_REVOKED_AT], "2026-07-01T09:00:00Z");
        assert_eq!(jwks["keys"][0][JWK_STATUS], "revoked");
        // Through the published JWKS too.
        let keys = PublicKeys::from_jwks_str(&jwks.to_string()).unwrap();
        assert_eq!(
            verify_url(&signed_url(BASE, &a, Some(&old_sig)), &keys).unwrap().1,
            Verdict::Revoked { kid: old_kid }
        );
    }

    #[test]
    fn jwks_round_trips_through_json_text() {
        let mut ring = KeyRing::generate([30; 32], t0());
        let first = ring.active_kid().to_string();
        ring.rotate([31; 32], t0() + chrono::Duration::days(1)).unwrap();
        ring.rotate([32; 32], t0() + chrono::Duration::days(2)).unwrap();
        ring.revoke(&first, t0() + chrono::Duration::days(3)).unwrap();
        let keys = ring.public();
        let text = serde_json::to_string_pretty(&keys.to_jwks()).unwrap();
        assert!(!text.contains("\"d\""), "{text}");
        let back = PublicKeys::from_jwks_str(&text).unwrap();
        assert_eq!(back, keys);
        let statuses: Vec<_> = back.kids().map(|k| back.status(k).unwrap()).collect();
        assert_eq!(statuses, [KeyStatus::Revoked, KeyStatus::Retired, KeyStatus::Active]);
        let jwk = &keys.to_jwks()["keys"][2];
        for (member, value) in
            [("kty", "OKP"), ("crv", "Ed25519"), ("alg", "EdDSA"), ("use", "sig"), (JWK_STATUS, "active")]
        {
            assert_eq!(jwk[member], value);
        }
        assert_eq!(jwk["kid"], ring.active_kid());
    }

    #[test]
    fn from_jwks_refuses_malformed_keys() {
        let ring = KeyRing::generate([40; 32], t0());
        let good = ring.public().to_jwks()["keys"][0].clone();
        let kid = ring.active_kid().to_string();
        let with = |member: &str, value: Value| {
            let mut k = good.clone();
            k[member] = value;
            json!({ "keys": [k] })
        };
        let short = b64(&[7u8; 31]);
        let other_x = KeyRing::generate([41; 32], t0()).public().to_jwks()["keys"][0]["x"].clone();
        let cases: Vec<(Value, &str)> = vec![
            (with("kty", json!("RSA")), "kty Some(\"RSA\") is not OKP"),
            (with("crv", json!("X25519")), "crv Some(\"X25519\") is not Ed25519"),
            (with("alg", json!("ES256")), "alg \"ES256\" is not EdDSA"),
            (with("use", json!("enc")), "use \"enc\" is not sig"),
            (with("d", json!(b64(&[40u8; 32]))), "carries a private key"),
            (with("x", json!("not base64!")), "not base64url"),
            (with("x", json!(format!("{}=", good["x"].as_str().unwrap()))), "not base64url"),
            (with("x", json!(short)), "x is 31 bytes"),
            (with("x", other_x), "thumbprint"),
            (with("kid", json!("key-1")), "kid \"key-1\" is not the key's RFC 7638 thumbprint"),
            (with(JWK_STATUS, json!("paused")), "is not active, retired or revoked"),
            (with(JWK_REVOKED_AT, json!("yesterday")), "is not an RFC 3339 time"),
            (with("x", json!(42)), "x 42 is not a string"),
        ];
        for (jwks, expected) in cases {
            let e = PublicKeys::from_jwks(&jwks).unwrap_err().to_string();
            assert!(e.contains(expected), "{e} (expected {expected:?})");
            let named = jwks["keys"][0]["kid"].as_str().unwrap();
            assert!(e.contains(named), "{e} does not name the key {named}");
        }
        // Without a kid the key is named by position.
        let mut no_kid = good.clone();
        no_kid.as_object_mut().unwrap().remove("kid");
        let e = PublicKeys::from_jwks(&json!({ "keys": [good.clone(), no_kid] })).unwrap_err().to_string();
        assert!(e.contains("#2") && e.contains("has no kid"), "{e}");
        let e = PublicKeys::from_jwks(&json!({ "keys": [good.clone(), good.clone()] })).unwrap_err().to_string();
        assert!(e.contains(&kid) && e.contains("twice"), "{e}");
        assert!(PublicKeys::from_jwks(&json!({ "keys": [] })).is_err());
        assert!(PublicKeys::from_jwks(&json!([good])).is_err());
        assert!(PublicKeys::from_jwks_str("{").unwrap_err().to_string().contains("not JSON"));
        // A revocation time alone revokes.
        let mut stale = good.clone();
        stale[JWK_REVOKED_AT] = json!("2026-07-01T08:00:00+07:00");
        let keys = PublicKeys::from_jwks(&json!({ "keys": [stale] })).unwrap();
        assert_eq!(keys.status(&kid), Some(KeyStatus::Revoked));
    }

    #[test]
    fn key_ring_round_trips_and_refuses_bad_files() {
        let mut ring = KeyRing::generate([50; 32], t0());
        ring.rotate([51; 32], t0() + chrono::Duration::days(1)).unwrap();
        let text = serde_json::to_string(&ring).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["keys"][0]["created_at"], "2026-07-01T08:00:00Z");
        assert_eq!(value["keys"][0]["retired_at"], "2026-07-02T08:00:00Z");
        assert!(value["keys"][1].get("retired_at").is_none());
        let back: KeyRing = serde_json::from_str(&text).unwrap();
        assert_eq!(back.public(), ring.public());
        assert_eq!(back.active_kid(), ring.active_kid());
        assert_eq!(back.sign("/t/X"), ring.sign("/t/X"));
        // Debug shows ids, never seeds.
        let debug = format!("{ring:?}");
        assert!(debug.contains(ring.active_kid()) && !debug.contains(value["keys"][0]["d"].as_str().unwrap()));

        let edit = |f: &dyn Fn(&mut Value)| {
            let mut v = value.clone();
            f(&mut v);
            serde_json::from_value::<KeyRing>(v).unwrap_err().to_string()
        };
        let kid0 = value["keys"][0]["kid"].as_str().unwrap().to_string();
        let e = edit(&|v| v["keys"][0]["x"] = value["keys"][1]["x"].clone());
        assert!(e.contains(&kid0) && e.contains("x is not the public key of d"), "{e}");
        let e = edit(&|v| v["keys"][0]["kid"] = json!("k1"));
        assert!(e.contains("k1") && e.contains("thumbprint"), "{e}");
        let e = edit(&|v| v["keys"][0]["d"] = json!("short"));
        assert!(e.contains(&kid0) && e.contains("d is not 32 bytes"), "{e}");
        let e = edit(&|v| {
            v["keys"][0].as_object_mut().unwrap().remove("retired_at");
        });
        assert!(e.contains("2 active keys"), "{e}");
        let e = edit(&|v| v["keys"][1]["retired_at"] = json!("2026-07-03T08:00:00Z"));
        assert!(e.contains("no active key"), "{e}");
        let e = edit(&|v| {
            let first = v["keys"][0].clone();
            v["keys"][1] = first;
        });
        assert!(e.contains("twice"), "{e}");
        assert!(serde_json::from_str::<KeyRing>(r#"{"keys":[]}"#).is_err());
    }

    #[test]
    fn verdicts_serialise_with_lower_case_tags() {
        assert_eq!(
            serde_json::to_value(Verdict::Genuine { kid: "k".into() }).unwrap(),
            json!({"verdict": "genuine", "kid": "k"})
        );
        assert_eq!(serde_json::to_value(Verdict::Unsigned).unwrap(), json!({"verdict": "unsigned"}));
        assert_eq!(serde_json::to_value(Verdict::Tampered).unwrap(), json!({"verdict": "tampered"}));
        assert_eq!(
            serde_json::to_value(Verdict::Revoked { kid: "k".into() }).unwrap(),
            json!({"verdict": "revoked", "kid": "k"})
        );
        let back: Verdict = serde_json::from_value(json!({"verdict": "revoked", "kid": "k"})).unwrap();
        assert_eq!(back, Verdict::Revoked { kid: "k".into() });
        assert!(Verdict::Genuine { kid: "k".into() }.is_genuine() && !Verdict::Unsigned.is_genuine());
    }

    /// QR version 8 at level M holds 152 bytes, version 7 at level M only 122: a signed
    /// tree URL in the GLN form is 122 characters plus the base, so the base must be at
    /// most 21 characters to stay within 143.
    #[test]
    fn signed_tree_url_fits_the_label_budget() {
        let ring = KeyRing::generate([60; 32], t0());
        let link = tree_link(CODE_SPACE - 1, Some(GLN));
        let url = signed_url(BASE, &link, Some(&ring.sign(&link.canonical())));
        assert!(url.starts_with(&format!("{BASE}/414/{GLN}/254/")) && url.contains("?8030="), "{url}");
        assert_eq!(url.len(), BASE.len() + 122, "{url}");
        assert!(url.len() <= 143, "{} characters: {url}", url.len());
        let short = signed_url(BASE, &tree_link(1, None), Some(&ring.sign("/t/X")));
        assert_eq!(short.len(), BASE.len() + 102);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn a_signature_holds_only_for_its_own_tree(a in 0..CODE_SPACE, b in 0..CODE_SPACE, seed in any::<[u8; 32]>()) {
            prop_assume!(a != b);
            let ring = KeyRing::generate(seed, t0());
            let keys = ring.public();
            let (la, lb) = (tree_link(a, Some(GLN)), tree_link(b, Some(GLN)));
            let sig = ring.sign(&la.canonical());
            prop_assert_eq!(keys.verify(&la.canonical(), Some(&sig)), Verdict::Genuine { kid: ring.active_kid().to_string() });
            prop_assert_eq!(keys.verify(&lb.canonical(), Some(&sig)), Verdict::Tampered);
        }
    }
}
