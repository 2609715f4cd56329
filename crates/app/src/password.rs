//! Password hashing (argon2id) and the password policy.
//!
//! Parameters are OWASP's minimum for argon2id: 19 MiB memory, 2 iterations,
//! 1 lane. Login verifies against a fixed dummy hash when the account does not
//! exist, so the answer takes about the same time either way.
//!
//! Each hash and verification fills 19 MiB of memory. The server runs them
//! only on the few threads of [`crate::hashing`], each verifying into the one
//! buffer it keeps ([`verify_into`]), so memory stays bounded however many
//! logins arrive.

use arbor_core::DomainError;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use std::sync::OnceLock;
use subtle::ConstantTimeEq;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = arbor_core::text::limits::PASSWORD_MAX;

/// Common passwords long enough to pass the length rule (shorter ones fail it
/// anyway). Compared case-insensitively.
const COMMON: &str = include_str!("common-passwords.txt");

fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's accepted ranges.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the policy: 12–128 characters, not a well-known password, not the
/// email address, not one repeated character.
pub fn check_policy(password: &str, email: &str) -> Result<(), DomainError> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(DomainError::invalid(
            "password",
            format!("must have at least {MIN_LENGTH} characters"),
        ));
    }
    if length > MAX_LENGTH {
        return Err(DomainError::invalid(
            "password",
            format!("must have at most {MAX_LENGTH} characters"),
        ));
    }
    let lower = password.to_lowercase();
    let mut chars = lower.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err(DomainError::invalid(
            "password",
            "must not repeat a single character",
        ));
    }
    if lower == email.trim().to_lowercase() {
        return Err(DomainError::invalid(
            "password",
            "must not be the email address",
        ));
    }
    if COMMON.lines().any(|common| common.trim() == lower) {
        return Err(DomainError::invalid(
            "password",
            "is too common; choose a less predictable one",
        ));
    }
    Ok(())
}

/// A PHC-format argon2id hash of the password.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    argon2()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
}

/// True if `password` matches `phc`. A malformed stored hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Memory a stored hash may ask for at most (blocks of 1 KiB): a hash
/// asking more is treated as malformed rather than allocated.
const MAX_BLOCKS: usize = 256 * 1024;

/// [`verify`], filling `memory` (grown to the hash's size once, then reused)
/// instead of allocating 19 MiB per call.
pub fn verify_into(memory: &mut Vec<Block>, password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let Some(memory) = memory.get_mut(..blocks) else {
        return false;
    };
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt.as_ref(),
        &mut out,
        memory,
    );
    computed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// A hash that matches nothing a user can send, for logins to unknown
/// accounts: verifying against it spends the time of a real verification.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("arbor dummy password, never a real one").unwrap_or_default())
}

/// Spends the time of one verification on [`dummy_hash`].
pub fn verify_dummy(password: &str) {
    let _ = verify(password, dummy_hash());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let phc = hash("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery staple", &phc));
        assert!(!verify("correct horse battery stapler", &phc));
        assert!(!verify("anything", "not a hash"));
    }

    #[test]
    fn verifying_into_a_reused_buffer_agrees_with_verify() {
        let phc = hash("correct horse battery staple").unwrap();
        let mut memory = Vec::new();
        assert!(verify_into(
            &mut memory,
            "correct horse battery staple",
            &phc
        ));
        assert_eq!(memory.len(), 19 * 1024);
        assert!(!verify_into(
            &mut memory,
            "correct horse battery stapler",
            &phc
        ));
        assert!(!verify_into(&mut memory, "anything", "not a hash"));
        assert!(!verify_into(&mut memory, "anything", dummy_hash()));
        assert_eq!(memory.len(), 19 * 1024, "the buffer is reused, not grown");
    }

    #[test]
    fn the_policy_refuses_short_long_common_and_trivial_passwords() {
        let email = "ann@example.com";
        assert!(check_policy("a fine passphrase", email).is_ok());
        assert!(check_policy("short", email).is_err());
        assert!(check_policy(&"ab".repeat(65), email).is_err());
        assert!(check_policy(&"ab".repeat(64), email).is_ok());
        assert!(check_policy("Password1234", email).is_err());
        assert!(check_policy("qwertyuiop123", email).is_err());
        assert!(check_policy("aaaaaaaaaaaaaa", email).is_err());
        assert!(check_policy("ANN@example.com", email).is_err());
        let error = check_policy("short", email).unwrap_err();
        assert!(matches!(
            error,
            DomainError::Invalid {
                field: "password",
                ..
            }
        ));
    }
}
