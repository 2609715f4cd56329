//! Device auth tokens (SPEC.md section 5): ≥ 128 bits, shown again to
//! holders of `auth_tokens.edit`, yet nothing readable at rest.
//!
//! A token is derived, not stored: `base64url(HMAC-SHA256(key,
//! "arbor-device-token-v1" || device id (8 bytes, big-endian) || nonce)[..24])`
//! — 192 bits — with a random 16-byte nonce per (re)generation. The store
//! keeps the nonce and the token's SHA-256 ([`crate::hash_token`]), so a
//! database dump alone yields no usable token, and the server re-derives the
//! token to show it. Regeneration replaces nonce and hash in one
//! transaction; since devices are looked up by hash in the database, the
//! old token stops working on every node at once.
//!
//! The key comes from the server's configuration (`device_token_key`, or a
//! key file created on first start); every node must use the same one.

use arbor_core::DeviceId;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;

const TOKEN_LABEL: &[u8] = b"arbor-device-token-v1";
const KEY_LABEL: &[u8] = b"arbor-device-token-key-v1";
/// Bytes of the MAC a token keeps (192 bits).
const TOKEN_BYTES: usize = 24;
/// Bytes of a nonce (stored as hex).
const NONCE_BYTES: usize = 16;

/// The secret tokens are derived with. Redacted in `Debug`.
#[derive(Clone)]
pub struct DeviceTokenKey([u8; 32]);

impl fmt::Debug for DeviceTokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceTokenKey(***)")
    }
}

/// HMAC-SHA256 keyed with `key`, through the infallible fixed-size
/// constructor: the key padded to the 64-byte block, or hashed first when
/// longer — exactly what HMAC does with a key of any length.
fn mac(key: &[u8]) -> Hmac<Sha256> {
    use sha2::Digest as _;
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    <Hmac<Sha256> as KeyInit>::new(&block.into())
}

impl DeviceTokenKey {
    /// A key of this process only: tokens it derives cannot be shown again
    /// by a server with another key (they keep working through their hash).
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// The token key derived from configured secret material (a separate
    /// key under its own label, so the material could serve other uses).
    pub fn derive(material: &[u8]) -> Self {
        let mut mac = mac(material);
        mac.update(KEY_LABEL);
        Self(mac.finalize().into_bytes().into())
    }

    /// A fresh random nonce, as the store keeps it (hex).
    pub fn new_nonce() -> String {
        let bytes: [u8; NONCE_BYTES] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The token of `device` for `nonce`.
    pub fn token(&self, device: DeviceId, nonce: &str) -> String {
        use base64::Engine as _;
        let mut mac = mac(&self.0);
        mac.update(TOKEN_LABEL);
        mac.update(&device.0.to_be_bytes());
        mac.update(&nonce_bytes(nonce));
        let out = mac.finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&out[..TOKEN_BYTES])
    }
}

/// The nonce's bytes: hex decoded (the stored form); anything else as is.
fn nonce_bytes(nonce: &str) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let raw = nonce.as_bytes();
    if raw.len().is_multiple_of(2) {
        let decoded: Option<Vec<u8>> = raw
            .chunks(2)
            .map(|pair| Some(hex(pair[0])? << 4 | hex(pair[1])?))
            .collect();
        if let Some(decoded) = decoded {
            return decoded;
        }
    }
    raw.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_192_bits_and_depend_on_key_device_and_nonce() {
        let key = DeviceTokenKey::derive(b"material");
        let nonce = DeviceTokenKey::new_nonce();
        assert_eq!(nonce.len(), 2 * NONCE_BYTES);
        let token = key.token(DeviceId(1), &nonce);
        assert_eq!(token.len(), 32, "24 bytes in base64url without padding");
        assert_eq!(token, key.token(DeviceId(1), &nonce), "derived again alike");
        assert_ne!(token, key.token(DeviceId(2), &nonce));
        assert_ne!(token, key.token(DeviceId(1), &DeviceTokenKey::new_nonce()));
        let other = DeviceTokenKey::derive(b"other material");
        assert_ne!(token, other.token(DeviceId(1), &nonce));
        assert_eq!(format!("{key:?}"), "DeviceTokenKey(***)");
    }

    #[test]
    fn the_padded_key_is_the_hmac_key() {
        for key in [&b"short"[..], &[7u8; 64][..], &[9u8; 100][..]] {
            let mut ours = mac(key);
            let mut reference = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
            ours.update(b"m");
            reference.update(b"m");
            assert_eq!(
                ours.finalize().into_bytes(),
                reference.finalize().into_bytes()
            );
        }
    }

    #[test]
    fn nonces_are_hex_decoded() {
        assert_eq!(nonce_bytes("00ff10"), vec![0, 255, 16]);
        assert_eq!(nonce_bytes("xyz"), b"xyz".to_vec());
    }
}
