//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`, several space-separated while a secret is being rotated. Secrets are
//! written `whsec_<base64 of the key bytes>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The default tolerance between the signature's timestamp and the receiver's clock.
pub const TOLERANCE_SECS: i64 = 300;

/// A signing secret. Its `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(whsec_***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("a secret looks like whsec_ followed by base64 of 24 to 64 bytes")]
    BadSecret,
    #[error("the webhook-id, webhook-timestamp or webhook-signature header is missing")]
    MissingHeader,
    #[error("the webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("the webhook-timestamp is too far from now (replayed or a wrong clock)")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

impl Secret {
    /// 32 random bytes.
    pub fn generate() -> Self {
        Self(rand::random::<[u8; 32]>().to_vec())
    }

    pub fn parse(raw: &str) -> Result<Self, SignatureError> {
        let b64 = raw.trim().strip_prefix("whsec_").ok_or(SignatureError::BadSecret)?;
        let key = STANDARD.decode(b64).map_err(|_| SignatureError::BadSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SignatureError::BadSecret);
        }
        Ok(Self(key))
    }

    pub fn from_bytes(key: Vec<u8>) -> Self {
        Self(key)
    }

    /// The secret as sellers copy it: `whsec_…`.
    pub fn expose(&self) -> String {
        format!("whsec_{}", STANDARD.encode(&self.0))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

/// The `webhook-signature` value: one `v1,` signature per secret (two during a rotation).
pub fn sign(secrets: &[&Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| format!("v1,{}", STANDARD.encode(s.mac(id, timestamp, body)))).collect::<Vec<_>>().join(" ")
}

/// The three headers as received.
pub struct Headers<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
}

/// Checks that one of the signatures was made with one of `secrets` over this id, timestamp
/// and exact body, and that the timestamp is within `tolerance_secs` of `now` (unix seconds).
pub fn verify(h: &Headers<'_>, body: &[u8], secrets: &[&Secret], now: i64, tolerance_secs: i64) -> Result<(), SignatureError> {
    if h.id.is_empty() || h.timestamp.is_empty() || h.signature.is_empty() {
        return Err(SignatureError::MissingHeader);
    }
    let ts: i64 = h.timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    if (now - ts).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    for secret in secrets {
        let expected = secret.mac(h.id, ts, body);
        for sig in h.signature.split_whitespace() {
            let Some(b64) = sig.strip_prefix("v1,") else { continue };
            if let Ok(given) = STANDARD.decode(b64)
                && bool::from(given.ct_eq(&expected))
            {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_hide() {
        let s = Secret::generate();
        assert_eq!(Secret::parse(&s.expose()).unwrap(), s);
        assert_eq!(format!("{s:?}"), "Secret(whsec_***)");
        assert!(Secret::parse("sk_nope").is_err());
        assert!(Secret::parse("whsec_AAAA").is_err(), "too short");
    }

    #[test]
    fn signatures_verify_and_refuse_tampering_staleness_and_other_secrets() {
        let (a, b) = (Secret::generate(), Secret::generate());
        let body = br#"{"id":"evt_1"}"#;
        let sig = sign(&[&a], "evt_1", 1000, body);
        let h = Headers { id: "evt_1", timestamp: "1000", signature: &sig };
        assert_eq!(verify(&h, body, &[&a], 1100, 300), Ok(()));
        assert_eq!(verify(&h, br#"{"id":"evt_2"}"#, &[&a], 1100, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify(&h, body, &[&b], 1100, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify(&h, body, &[&a], 1400, 300), Err(SignatureError::Stale));
        let other_id = Headers { id: "evt_9", ..h };
        assert_eq!(verify(&other_id, body, &[&a], 1100, 300), Err(SignatureError::Mismatch));
        // During a rotation both signatures travel; a receiver with either secret accepts.
        let both = sign(&[&b, &a], "evt_1", 1000, body);
        let h = Headers { id: "evt_1", timestamp: "1000", signature: &both };
        assert_eq!(verify(&h, body, &[&a], 1000, 300), Ok(()));
        assert_eq!(verify(&h, body, &[&b], 1000, 300), Ok(()));
    }

    #[test]
    fn an_independent_standard_webhooks_implementation_accepts_our_signatures() {
        let secret = Secret::generate();
        let body = br#"{"id":"evt_01","type":"instance.create"}"#;
        let now = chrono::Utc::now().timestamp();
        let sig = sign(&[&secret], "evt_01", now, body);
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", "evt_01".parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert("webhook-signature", sig.parse().unwrap());
        let wh = standardwebhooks::Webhook::new(&secret.expose()).unwrap();
        wh.verify(body, &headers).expect("the reference implementation verifies Souk's signature");
        // And ours accepts theirs.
        let theirs = wh.sign("evt_01", now, body).unwrap();
        let h = Headers { id: "evt_01", timestamp: &now.to_string(), signature: &theirs };
        assert_eq!(verify(&h, body, &[&secret], now, 300), Ok(()));
        // A tampered body fails both.
        assert!(wh.verify(br#"{"id":"evt_02"}"#, &headers).is_err());
    }
}
