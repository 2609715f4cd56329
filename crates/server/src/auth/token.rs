//! Opaque secrets (session tokens, invitation and reset links, device tokens).
//!
//! A token is 256 random bits, base64url without padding; only its SHA-256 hash
//! is stored, so a database leak yields no usable token. Hashes are compared by
//! the database (equality on a unique index) — the hash of a guess reveals
//! nothing about a stored token's prefix, so a timing side channel there does
//! not help an attacker.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};

/// A fresh token and the hash to store.
pub struct Token {
    pub secret: String,
    pub hash: String,
}

pub fn generate() -> Token {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&secret);
    Token { secret, hash }
}

/// The stored form of a token: lowercase hex SHA-256.
pub fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_256_bits_and_store_only_a_hash() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a.secret).unwrap().len(), 32);
        assert_eq!(a.hash, hash(&a.secret));
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(&a.secret));
    }
}
