//! The initial password in an answer travels encrypted: AES-256-GCM with a key derived from
//! the product's signing secret (SHA-256 of `souk-access-password` and the secret's bytes), a
//! random 12-byte nonce, written as base64 of nonce ‖ ciphertext.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::signature::Secret;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the password does not decrypt with this secret")]
pub struct DecryptError;

fn cipher(secret: &Secret) -> Aes256Gcm {
    let key = Sha256::new().chain_update(b"souk-access-password").chain_update(secret.bytes()).finalize();
    Aes256Gcm::new(&key)
}

pub fn encrypt_password(secret: &Secret, password: &str) -> String {
    let nonce: [u8; 12] = rand::random();
    // Encrypting a short string with a valid key does not fail.
    let ct = cipher(secret).encrypt(Nonce::from_slice(&nonce), password.as_bytes()).unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend(ct);
    STANDARD.encode(out)
}

pub fn decrypt_password(secret: &Secret, encrypted: &str) -> Result<String, DecryptError> {
    let raw = STANDARD.decode(encrypted.trim()).map_err(|_| DecryptError)?;
    if raw.len() < 12 {
        return Err(DecryptError);
    }
    let (nonce, ct) = raw.split_at(12);
    let plain = cipher(secret).decrypt(Nonce::from_slice(nonce), ct).map_err(|_| DecryptError)?;
    String::from_utf8(plain).map_err(|_| DecryptError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip_only_with_the_right_secret() {
        let (a, b) = (Secret::generate(), Secret::generate());
        let e = encrypt_password(&a, "s3cret!");
        assert!(!e.contains("s3cret"));
        assert_eq!(decrypt_password(&a, &e).as_deref(), Ok("s3cret!"));
        assert_eq!(decrypt_password(&b, &e), Err(DecryptError));
        assert_ne!(encrypt_password(&a, "x"), encrypt_password(&a, "x"), "a fresh nonce each time");
    }
}
