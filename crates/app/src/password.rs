//! Password hashing (argon2id) and the password policy.
//!
//! Parameters are OWASP's minimum for argon2id: 19 MiB memory, 2 iterations,
//! 1 lane. Login verifies against a fixed dummy hash when the account does not
//! exist, so the answer takes about the same time either way.

use arbor_core::DomainError;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
use std::sync::OnceLock;

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

/// Spends the time of one verification on a hash that matches nothing a user
/// can send, for logins to unknown accounts.
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc =
        DUMMY.get_or_init(|| hash("arbor dummy password, never a real one").unwrap_or_default());
    let _ = verify(password, phc);
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
