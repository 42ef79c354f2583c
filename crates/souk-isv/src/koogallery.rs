//! KooGallery compatibility primitives (see koogallery-protocol.md): the V2 URL signature of
//! marketplace → seller calls, and the encryption of `appInfo` fields (`userName`, `password`)
//! with a key derived from the access key the way the official Java sample does.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// A call older or newer than this is refused by the seller.
pub const TOLERANCE_MS: i64 = 60_000;

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The `signature` query parameter: upper-case hex of
/// HMAC-SHA256(accessKey, accessKey + nonce + timestamp + lowercase-hex(HMAC-SHA256(accessKey, body))).
pub fn sign(access_key: &str, body: &[u8], timestamp_ms: i64, nonce: &str) -> String {
    let inner = hex::encode(hmac_sha256(access_key.as_bytes(), body));
    let canonical = format!("{access_key}{nonce}{timestamp_ms}{inner}");
    hex::encode_upper(hmac_sha256(access_key.as_bytes(), canonical.as_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("signature, timestamp or nonce missing")]
    Missing,
    #[error("timestamp outside the 60 s window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

/// The seller's check of a call (the nonce's freshness is the caller's to remember).
pub fn verify(
    access_key: &str,
    body: &[u8],
    signature: &str,
    timestamp_ms: &str,
    nonce: &str,
    now_ms: i64,
) -> Result<(), SignError> {
    if signature.is_empty() || timestamp_ms.is_empty() || nonce.is_empty() {
        return Err(SignError::Missing);
    }
    let ts: i64 = timestamp_ms.parse().map_err(|_| SignError::Missing)?;
    if (now_ms - ts).abs() > TOLERANCE_MS {
        return Err(SignError::Stale);
    }
    let expected = sign(access_key, body, ts, nonce);
    if bool::from(expected.to_ascii_lowercase().as_bytes().ct_eq(signature.to_ascii_lowercase().as_bytes())) {
        Ok(())
    } else {
        Err(SignError::Mismatch)
    }
}

/// Java's `SecureRandom.getInstance("SHA1PRNG")` seeded with `seed`, as
/// `KeyGenerator("AES").init(bits, random)` draws the key from it: deterministic, so Souk and
/// the seller derive the same key from the access key.
pub fn derive_key(access_key: &str, bytes: usize) -> Vec<u8> {
    let mut state: [u8; 20] = Sha1::digest(access_key.as_bytes()).into();
    let mut out = Vec::with_capacity(bytes);
    while out.len() < bytes {
        let block: [u8; 20] = Sha1::digest(state).into();
        // state = state + block + 1 (mod 2^160), bytes added from index 0 with Java's signed
        // arithmetic and carry, exactly as sun.security.provider.SecureRandom.updateState.
        let mut last: i32 = 1;
        let mut changed = false;
        for i in 0..20 {
            let v = i32::from(state[i] as i8) + i32::from(block[i] as i8) + last;
            let t = v as u8;
            changed |= state[i] != t;
            state[i] = t;
            last = v >> 8;
        }
        if !changed {
            state[0] = state[0].wrapping_add(1);
        }
        let take = (bytes - out.len()).min(20);
        out.extend_from_slice(&block[..take]);
    }
    out
}

/// `encryptType`: `"1"` AES-256, `"2"` AES-128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncryptType {
    Aes256,
    Aes128,
}

impl EncryptType {
    pub fn code(self) -> &'static str {
        match self {
            Self::Aes256 => "1",
            Self::Aes128 => "2",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "1" => Some(Self::Aes256),
            "2" => Some(Self::Aes128),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the field does not decrypt with this access key")]
pub struct FieldError;

/// An `appInfo` field: the 16-character IV in clear, then base64 of AES-CBC-PKCS5.
pub fn encrypt_field(access_key: &str, kind: EncryptType, iv: &str, plaintext: &str) -> Result<String, FieldError> {
    let iv_bytes: [u8; 16] = iv.as_bytes().try_into().map_err(|_| FieldError)?;
    let ct = match kind {
        EncryptType::Aes256 => {
            let key = derive_key(access_key, 32);
            cbc::Encryptor::<aes::Aes256>::new_from_slices(&key, &iv_bytes)
                .map_err(|_| FieldError)?
                .encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes())
        }
        EncryptType::Aes128 => {
            let key = derive_key(access_key, 16);
            cbc::Encryptor::<aes::Aes128>::new_from_slices(&key, &iv_bytes)
                .map_err(|_| FieldError)?
                .encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes())
        }
    };
    Ok(format!("{iv}{}", STANDARD.encode(ct)))
}

pub fn decrypt_field(access_key: &str, kind: EncryptType, field: &str) -> Result<String, FieldError> {
    if field.len() < 16 || !field.is_char_boundary(16) {
        return Err(FieldError);
    }
    let (iv, b64) = field.split_at(16);
    let iv_bytes: [u8; 16] = iv.as_bytes().try_into().map_err(|_| FieldError)?;
    let ct = STANDARD.decode(b64).map_err(|_| FieldError)?;
    let plain = match kind {
        EncryptType::Aes256 => cbc::Decryptor::<aes::Aes256>::new_from_slices(&derive_key(access_key, 32), &iv_bytes)
            .map_err(|_| FieldError)?
            .decrypt_padded_vec_mut::<Pkcs7>(&ct)
            .map_err(|_| FieldError)?,
        EncryptType::Aes128 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&derive_key(access_key, 16), &iv_bytes)
            .map_err(|_| FieldError)?
            .decrypt_padded_vec_mut::<Pkcs7>(&ct)
            .map_err(|_| FieldError)?,
    };
    String::from_utf8(plain).map_err(|_| FieldError)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vectors of koogallery-protocol.md, computed with Java 17's SHA1PRNG.
    const KEY: &str = "souk-test-access-key";

    #[test]
    fn keys_match_javas_sha1prng() {
        assert_eq!(hex::encode(derive_key(KEY, 16)), "748b952f9fce5305971b17ea94f098d2");
        assert_eq!(hex::encode(derive_key(KEY, 32)), "748b952f9fce5305971b17ea94f098d2c5b95da70bd3670dd5de01338b71deac");
    }

    #[test]
    fn fields_match_the_official_samples_output() {
        let iv = "abcdefghijklmnop";
        assert_eq!(encrypt_field(KEY, EncryptType::Aes256, iv, "P@ssw0rd!").unwrap(), "abcdefghijklmnop64LVf8ASmrNrWiSSKVBVrg==");
        assert_eq!(encrypt_field(KEY, EncryptType::Aes128, iv, "P@ssw0rd!").unwrap(), "abcdefghijklmnop5OPRd+6LnljqDwriym3wOw==");
        assert_eq!(decrypt_field(KEY, EncryptType::Aes256, "abcdefghijklmnop64LVf8ASmrNrWiSSKVBVrg==").unwrap(), "P@ssw0rd!");
        assert!(decrypt_field("another-key", EncryptType::Aes256, "abcdefghijklmnop64LVf8ASmrNrWiSSKVBVrg==").is_err());
        assert!(encrypt_field(KEY, EncryptType::Aes256, "short", "x").is_err());
    }

    #[test]
    fn url_signatures_follow_the_v2_formula() {
        let body = br#"{"activity":"newInstance","businessId":"b1","orderId":"o1","orderLineId":"o1-000001","testFlag":"1"}"#;
        let sig = sign(KEY, body, 1_772_442_000_000, "n0nce");
        // Recomputed by hand from the formula, step by step.
        let inner = hex::encode(hmac_sha256(KEY.as_bytes(), body));
        let outer = hex::encode_upper(hmac_sha256(KEY.as_bytes(), format!("{KEY}n0nce1772442000000{inner}").as_bytes()));
        assert_eq!(sig, outer);
        assert_eq!(sig.len(), 64);
        assert_eq!(verify(KEY, body, &sig, "1772442000000", "n0nce", 1_772_442_030_000), Ok(()));
        assert_eq!(verify(KEY, body, &sig.to_lowercase(), "1772442000000", "n0nce", 1_772_442_030_000), Ok(()));
        assert_eq!(verify(KEY, body, &sig, "1772442000000", "n0nce", 1_772_442_061_000), Err(SignError::Stale));
        assert_eq!(verify(KEY, b"{}", &sig, "1772442000000", "n0nce", 1_772_442_000_000), Err(SignError::Mismatch));
        assert_eq!(verify(KEY, body, &sig, "1772442000000", "other", 1_772_442_000_000), Err(SignError::Mismatch));
    }
}
