//! How the store treats text it is given: names, NUL characters, and the
//! case folding and LIKE patterns of name search — in Rust, so that both
//! engines store and find exactly the same.

use crate::error::StoreError;

/// Refuses a NUL character in text the store writes. PostgreSQL cannot store
/// one in TEXT at all and SQLite would: refused up front, both engines answer
/// alike.
pub(crate) fn refuse_nul(field: &'static str, text: &str) -> Result<(), StoreError> {
    if text.contains('\0') {
        Err(StoreError::invalid(
            field,
            "must not contain a NUL character",
        ))
    } else {
        Ok(())
    }
}

/// A name as stored (arbor_core::text::name): trimmed, 1 to `max`
/// characters, no control, zero-width or bidirectional character.
pub(crate) fn checked_name(text: &str, max: usize) -> Result<String, StoreError> {
    Ok(arbor_core::text::name("name", text, max)?)
}

/// The form a name is searched in (`organizations.name_folded`,
/// `users.name_folded`; emails have `email_normalized`): Unicode lower case,
/// computed here rather than with SQL `LOWER()`, which folds only ASCII on
/// SQLite and follows the database's locale on PostgreSQL.
pub(crate) fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// A LIKE pattern (used with `ESCAPE '\'`) matching folded text that
/// contains `query` (trimmed, folded): `%`, `_` and `\` in the query match
/// themselves.
pub(crate) fn contains_pattern(query: &str) -> Result<String, StoreError> {
    refuse_nul("q", query)?;
    let max = arbor_core::text::limits::SEARCH;
    if query.trim().chars().count() > max {
        return Err(StoreError::invalid(
            "q",
            format!("a search text has at most {max} characters"),
        ));
    }
    let mut pattern = String::from("%");
    for c in fold(query.trim()).chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Ok(pattern)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_patterns_fold_unicode_and_escape_wildcards() {
        assert_eq!(contains_pattern(" ÄRZTE ").unwrap(), "%ärzte%");
        assert_eq!(contains_pattern("100%").unwrap(), "%100\\%%");
        assert_eq!(contains_pattern("a_b").unwrap(), "%a\\_b%");
        assert_eq!(contains_pattern("a\\b").unwrap(), "%a\\\\b%");
        assert!(contains_pattern("a\0").is_err());
    }
}
