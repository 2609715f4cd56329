//! The device data plane's rules (SPEC.md section 7), pure: how a device's
//! text becomes a datastream value, which pins, properties, metafield
//! values and timestamps a device may send, and when it counts as online.
//!
//! Values are parsed to the datastream's type and clamped to its min/max,
//! as Blynk's device API does: an integer or double from decimal text (a
//! comma as the decimal point too: `21,5`), a string of at most the
//! configured bytes, an enum value by one of its values. NaN, infinities,
//! empty text and anything else that is not the datastream's type are
//! refused ([`ValueRefusal::Mismatch`]).

use crate::template::{Datastream, Metafield, MetafieldType, Scalar, ValueType};
use serde::{Deserialize, Serialize};

/// Bounds of the device data plane (documented in docs/device-api.md).
pub mod bounds {
    /// Default bytes of one string value (the server's
    /// `device_api.string_value_bytes`).
    pub const STRING_VALUE: usize = 1024;
    /// Parts of one multi-part value (`&value=lon&value=lat`).
    pub const VALUE_PARTS: usize = 16;
    /// Points of one timestamped batch.
    pub const BATCH_POINTS: usize = 10_000;
    /// How far a timestamped point may lie in the past, or in the future
    /// (unix ms): a month of 30 days.
    pub const BATCH_WINDOW_MS: i64 = 30 * 24 * 60 * 60 * 1000;
    /// Characters of an event's description.
    pub const EVENT_DESCRIPTION: usize = 300;
    /// The last-seen time is written at most this often per device (ms).
    pub const SEEN_EVERY_MS: i64 = 1000;
    /// Integers are exact in a double up to 2^53.
    pub const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;
    /// Days a device's values and events are kept when its template sets
    /// no retention of its own (the server's default
    /// `device_api.history_retention_days`).
    pub const HISTORY_RETENTION_DAYS: i64 = 30;
    /// One day, in ms.
    pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;
}

/// A datastream value: one part (a number for integer and double
/// datastreams, a text for string and enum ones), or several parts sent
/// together (`&value=lon&value=lat`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PinValue {
    One(Scalar),
    Many(Vec<Scalar>),
}

impl PinValue {
    /// The value as `get` answers it for one pin: the number or text; the
    /// parts of a multi-part value as a JSON array.
    pub fn display(&self) -> String {
        match self {
            Self::One(scalar) => scalar_text(scalar),
            Self::Many(parts) => {
                let items: Vec<String> = parts
                    .iter()
                    .map(|part| match part {
                        Scalar::Number(n) => format_number(*n),
                        Scalar::Text(t) => json_string(t),
                    })
                    .collect();
                format!("[{}]", items.join(","))
            }
        }
    }
}

fn scalar_text(scalar: &Scalar) -> String {
    match scalar {
        Scalar::Number(n) => format_number(*n),
        Scalar::Text(t) => t.clone(),
    }
}

/// A JSON string literal of `text`.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A number as the device API shows it: whole numbers without a decimal
/// point (`42`), others in their shortest exact decimal form (`21.5`).
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < bounds::MAX_EXACT_INTEGER {
        // Exact: |n| < 2^53.
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// The virtual pin named `V0`…`V255` (or `v0`…), or `None`.
pub fn parse_pin(text: &str) -> Option<u16> {
    let digits = text.strip_prefix(['V', 'v'])?;
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pin: u16 = digits.parse().ok()?;
    (pin <= crate::template::bounds::MAX_PIN).then_some(pin)
}

/// Why a value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueRefusal {
    /// Not a value of the datastream's type (NaN, infinities, empty text
    /// and unknown enum values included).
    Mismatch,
    /// A string longer than the limit, in bytes.
    TooLong { limit: usize },
}

/// The number `text` spells, if any: optional sign, digits, one decimal
/// point (`.` or `,`), optional exponent; surrounding spaces are ignored.
/// Words Rust's parser would take (`inf`, `NaN`) and results that are not
/// finite (`1e999`) are refused.
pub fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    let commas = text.matches(',').count();
    let normalized = match commas {
        0 => text.to_owned(),
        // A comma as the decimal point, never as a thousands separator.
        1 if !text.contains('.') => text.replace(',', "."),
        _ => return None,
    };
    if !normalized
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        || !normalized.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    let n: f64 = normalized.parse().ok()?;
    // -0 is 0.
    n.is_finite().then_some(n + 0.0)
}

impl Datastream {
    /// `n` within the datastream's min and max.
    pub fn clamp(&self, n: f64) -> f64 {
        let n = self.min.map_or(n, |min| n.max(min));
        self.max.map_or(n, |max| n.min(max))
    }

    /// One part of a value, parsed to the datastream's type and clamped.
    fn parse_part(&self, text: &str, max_string_bytes: usize) -> Result<Scalar, ValueRefusal> {
        match self.value_type {
            ValueType::Integer => {
                let n = parse_number(text).ok_or(ValueRefusal::Mismatch)?.round();
                if n.abs() > bounds::MAX_EXACT_INTEGER {
                    return Err(ValueRefusal::Mismatch);
                }
                Ok(Scalar::Number(self.clamp(n) + 0.0))
            }
            ValueType::Double => {
                let n = parse_number(text).ok_or(ValueRefusal::Mismatch)?;
                Ok(Scalar::Number(self.clamp(n) + 0.0))
            }
            ValueType::String => {
                if text.is_empty() || text.contains('\0') {
                    return Err(ValueRefusal::Mismatch);
                }
                if text.len() > max_string_bytes {
                    return Err(ValueRefusal::TooLong {
                        limit: max_string_bytes,
                    });
                }
                Ok(Scalar::Text(text.to_owned()))
            }
            ValueType::Enum => {
                let text = text.trim();
                self.enum_values
                    .iter()
                    .find(|v| v.as_str() == text)
                    .map(|v| Scalar::Text(v.clone()))
                    .ok_or(ValueRefusal::Mismatch)
            }
        }
    }

    /// The value a device sent as `parts` (one, or several for a
    /// multi-part value), parsed to the datastream's type and clamped to
    /// its min/max; string parts at most `max_string_bytes` long.
    pub fn parse_value(
        &self,
        parts: &[&str],
        max_string_bytes: usize,
    ) -> Result<PinValue, ValueRefusal> {
        match parts {
            [] => Err(ValueRefusal::Mismatch),
            [one] => Ok(PinValue::One(self.parse_part(one, max_string_bytes)?)),
            many if many.len() > bounds::VALUE_PARTS => Err(ValueRefusal::Mismatch),
            many => many
                .iter()
                .map(|part| self.parse_part(part, max_string_bytes))
                .collect::<Result<Vec<_>, _>>()
                .map(PinValue::Many),
        }
    }
}

/// The widget properties a device may set on a pin (`update/property`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PinPropertyName {
    Label,
    Color,
    IsDisabled,
    IsHidden,
    OnLabel,
    OffLabel,
    Labels,
    Step,
    Url,
    Opacity,
}

impl PinPropertyName {
    pub const ALL: [Self; 10] = [
        Self::Label,
        Self::Color,
        Self::IsDisabled,
        Self::IsHidden,
        Self::OnLabel,
        Self::OffLabel,
        Self::Labels,
        Self::Step,
        Self::Url,
        Self::Opacity,
    ];

    /// Blynk's name of the property.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Label => "label",
            Self::Color => "color",
            Self::IsDisabled => "isDisabled",
            Self::IsHidden => "isHidden",
            Self::OnLabel => "onLabel",
            Self::OffLabel => "offLabel",
            Self::Labels => "labels",
            Self::Step => "step",
            Self::Url => "url",
            Self::Opacity => "opacity",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The stored form of the property set to `values` (several only for
    /// `labels`, kept as a JSON array), or `None` when they do not fit:
    /// texts at most `max_bytes` long, a color `#RGB`/`#RRGGBB`/`#RRGGBBAA`,
    /// flags `true`/`false` (or `1`/`0`), a positive step, an opacity from 0
    /// to 100, an `http(s)://` URL.
    pub fn checked(self, values: &[&str], max_bytes: usize) -> Option<String> {
        let text_ok = |t: &str| t.len() <= max_bytes && !t.contains('\0');
        if self == Self::Labels {
            if values.is_empty() || values.len() > 64 || !values.iter().all(|t| text_ok(t)) {
                return None;
            }
            let items: Vec<String> = values.iter().map(|t| json_string(t)).collect();
            return Some(format!("[{}]", items.join(",")));
        }
        let [value] = values else {
            return None;
        };
        let value = *value;
        match self {
            Self::Label | Self::OnLabel | Self::OffLabel => {
                text_ok(value).then(|| value.to_owned())
            }
            Self::Url => (text_ok(value)
                && (value.starts_with("http://") || value.starts_with("https://")))
            .then(|| value.to_owned()),
            Self::Color => {
                let hex = value.strip_prefix('#')?;
                (matches!(hex.len(), 3 | 6 | 8) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| value.to_owned())
            }
            Self::IsDisabled | Self::IsHidden => match value.trim() {
                "true" | "1" => Some("true".into()),
                "false" | "0" => Some("false".into()),
                _ => None,
            },
            Self::Step => parse_number(value).filter(|n| *n > 0.0).map(format_number),
            Self::Opacity => parse_number(value)
                .filter(|n| (0.0..=100.0).contains(n))
                .map(format_number),
            Self::Labels => None,
        }
    }
}

impl Metafield {
    /// A value a device sets for this metafield, or `None` when it does not
    /// fit its type: a number, `true`/`false`, or a line of text within
    /// the metafield limit.
    pub fn checked_value(&self, value: &str) -> Option<String> {
        let value = crate::text::line(
            "metafields.value",
            value,
            crate::text::limits::METAFIELD_VALUE,
        )
        .ok()?;
        match self.value_type {
            MetafieldType::Text => Some(value),
            MetafieldType::Number => parse_number(&value).map(format_number),
            MetafieldType::Boolean => matches!(value.as_str(), "true" | "false").then_some(value),
        }
    }

    /// Blynk's name of the metafield's type.
    pub fn blynk_type(&self) -> &'static str {
        match self.value_type {
            MetafieldType::Text => "Text",
            MetafieldType::Number => "Number",
            MetafieldType::Boolean => "Boolean",
        }
    }
}

/// Whether a timestamped point at `at` may be stored `now`: at most a
/// month old, at most a month ahead.
pub fn point_time_ok(now: i64, at: i64) -> bool {
    at >= now.saturating_sub(bounds::BATCH_WINDOW_MS)
        && at <= now.saturating_add(bounds::BATCH_WINDOW_MS)
}

/// The oldest time (unix ms) a device's history keeps `now` when its
/// template keeps `retention_days`: points before it are pruned.
pub fn retention_cutoff(now: i64, retention_days: i64) -> i64 {
    now.saturating_sub(retention_days.saturating_mul(bounds::DAY_MS))
}

/// Whether a device last seen at `last_seen` is online `now`.
pub fn online(last_seen: Option<i64>, now: i64, heartbeat_ms: i64) -> bool {
    last_seen.is_some_and(|seen| now.saturating_sub(seen) <= heartbeat_ms)
}

/// Whether a request of a device last seen at `last_seen` should write
/// its last-seen time `now` (at most once per [`bounds::SEEN_EVERY_MS`]).
pub fn seen_due(last_seen: Option<i64>, now: i64) -> bool {
    last_seen.is_none_or(|seen| now.saturating_sub(seen) >= bounds::SEEN_EVERY_MS || now < seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(value_type: ValueType) -> Datastream {
        Datastream {
            pin: 1,
            name: "S".into(),
            value_type,
            enum_values: Vec::new(),
            min: None,
            max: None,
            units: String::new(),
            default_value: None,
            decimals: None,
        }
    }

    fn number(n: f64) -> Result<PinValue, ValueRefusal> {
        Ok(PinValue::One(Scalar::Number(n)))
    }

    #[test]
    fn the_retention_cutoff_lies_its_days_before_now() {
        let now = 1_700_000_000_000;
        assert_eq!(retention_cutoff(now, 1), now - bounds::DAY_MS);
        assert_eq!(retention_cutoff(now, 30), now - 30 * bounds::DAY_MS);
        // No overflow: an absurd retention keeps everything ever sent.
        assert!(retention_cutoff(now, i64::MAX) < 0);
    }

    #[test]
    fn pins_are_virtual_v0_to_v255_in_either_case() {
        assert_eq!(parse_pin("V0"), Some(0));
        assert_eq!(parse_pin("v255"), Some(255));
        assert_eq!(parse_pin("V007"), Some(7));
        for bad in [
            "V256", "V", "1", "D1", "A0", "V1a", "V-1", "V1000", "VV1", " V1", "",
        ] {
            assert_eq!(parse_pin(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn integers_are_rounded_and_clamped() {
        let mut ds = stream(ValueType::Integer);
        ds.min = Some(0.0);
        ds.max = Some(100.0);
        assert_eq!(ds.parse_value(&["42"], 1024), number(42.0));
        assert_eq!(ds.parse_value(&[" 42 "], 1024), number(42.0));
        assert_eq!(ds.parse_value(&["41,6"], 1024), number(42.0));
        assert_eq!(ds.parse_value(&["250"], 1024), number(100.0));
        assert_eq!(ds.parse_value(&["-3"], 1024), number(0.0));
        assert_eq!(ds.parse_value(&["1e1"], 1024), number(10.0));
        ds.min = None;
        ds.max = None;
        assert_eq!(
            ds.parse_value(&["1e300"], 1024),
            Err(ValueRefusal::Mismatch),
            "beyond exact integers"
        );
    }

    #[test]
    fn doubles_take_a_comma_decimal_point_and_are_clamped() {
        let mut ds = stream(ValueType::Double);
        assert_eq!(ds.parse_value(&["21.5"], 1024), number(21.5));
        assert_eq!(ds.parse_value(&["21,5"], 1024), number(21.5));
        assert_eq!(ds.parse_value(&["-0"], 1024), number(0.0));
        ds.max = Some(20.0);
        assert_eq!(ds.parse_value(&["21,5"], 1024), number(20.0));
        for bad in [
            "",
            " ",
            "NaN",
            "nan",
            "inf",
            "-Infinity",
            "infinity",
            "1e999",
            "1,234.5",
            "1.234,5",
            "1,2,3",
            "0x10",
            "12abc",
            "--1",
            "1..2",
            ".",
            "e5",
        ] {
            assert_eq!(
                ds.parse_value(&[bad], 1024),
                Err(ValueRefusal::Mismatch),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn strings_are_bounded_and_enums_match_their_values() {
        let ds = stream(ValueType::String);
        assert_eq!(
            ds.parse_value(&["hello world"], 1024),
            Ok(PinValue::One(Scalar::Text("hello world".into())))
        );
        assert_eq!(ds.parse_value(&[""], 1024), Err(ValueRefusal::Mismatch));
        assert_eq!(ds.parse_value(&["a\0b"], 1024), Err(ValueRefusal::Mismatch));
        assert_eq!(
            ds.parse_value(&["ü".repeat(513).as_str()], 1024),
            Err(ValueRefusal::TooLong { limit: 1024 }),
            "bytes, not characters"
        );
        let mut mode = stream(ValueType::Enum);
        mode.enum_values = vec!["off".into(), "eco".into()];
        assert_eq!(
            mode.parse_value(&["eco"], 1024),
            Ok(PinValue::One(Scalar::Text("eco".into())))
        );
        assert_eq!(
            mode.parse_value(&["ECO"], 1024),
            Err(ValueRefusal::Mismatch)
        );
        assert_eq!(mode.parse_value(&["1"], 1024), Err(ValueRefusal::Mismatch));
    }

    #[test]
    fn several_parts_make_a_multi_part_value_each_part_checked() {
        let ds = stream(ValueType::Double);
        assert_eq!(
            ds.parse_value(&["13.4", "52,5"], 1024),
            Ok(PinValue::Many(vec![
                Scalar::Number(13.4),
                Scalar::Number(52.5)
            ]))
        );
        assert_eq!(
            ds.parse_value(&["13.4", "x"], 1024),
            Err(ValueRefusal::Mismatch)
        );
        assert_eq!(ds.parse_value(&[], 1024), Err(ValueRefusal::Mismatch));
        let seventeen = vec!["1"; 17];
        assert_eq!(
            ds.parse_value(&seventeen, 1024),
            Err(ValueRefusal::Mismatch)
        );
        let value = ds.parse_value(&["1", "2.5"], 1024).unwrap();
        assert_eq!(value.display(), "[1,2.5]");
        let text = stream(ValueType::String)
            .parse_value(&["a\"b", "c"], 1024)
            .unwrap();
        assert_eq!(text.display(), r#"["a\"b","c"]"#);
    }

    #[test]
    fn numbers_show_whole_without_a_point() {
        assert_eq!(format_number(42.0), "42");
        assert_eq!(format_number(-7.0), "-7");
        assert_eq!(format_number(21.5), "21.5");
        assert_eq!(format_number(0.1), "0.1");
    }

    #[test]
    fn properties_are_checked_by_kind() {
        use PinPropertyName as P;
        assert_eq!(P::parse("isDisabled"), Some(P::IsDisabled));
        assert_eq!(P::parse("isdisabled"), None);
        assert_eq!(
            P::Label.checked(&["Boiler"], 1024).as_deref(),
            Some("Boiler")
        );
        assert_eq!(P::Label.checked(&["a", "b"], 1024), None);
        assert_eq!(
            P::Color.checked(&["#D3435C"], 1024).as_deref(),
            Some("#D3435C")
        );
        assert_eq!(P::Color.checked(&["red"], 1024), None);
        assert_eq!(P::IsHidden.checked(&["1"], 1024).as_deref(), Some("true"));
        assert_eq!(P::IsHidden.checked(&["yes"], 1024), None);
        assert_eq!(P::Step.checked(&["0,5"], 1024).as_deref(), Some("0.5"));
        assert_eq!(P::Step.checked(&["-1"], 1024), None);
        assert_eq!(P::Opacity.checked(&["101"], 1024), None);
        assert_eq!(
            P::Labels.checked(&["off", "on"], 1024).as_deref(),
            Some(r#"["off","on"]"#)
        );
        assert_eq!(P::Url.checked(&["ftp://x"], 1024), None);
        assert_eq!(P::Label.checked(&["x".repeat(1025).as_str()], 1024), None);
    }

    #[test]
    fn metafield_values_fit_their_type() {
        let field = |value_type| Metafield {
            name: "F".into(),
            value_type,
            default_value: String::new(),
        };
        assert_eq!(
            field(MetafieldType::Text).checked_value(" S-1 ").as_deref(),
            Some("S-1")
        );
        assert_eq!(
            field(MetafieldType::Number).checked_value("3,5").as_deref(),
            Some("3.5")
        );
        assert_eq!(field(MetafieldType::Number).checked_value("three"), None);
        assert_eq!(field(MetafieldType::Boolean).checked_value("yes"), None);
    }

    #[test]
    fn points_lie_within_a_month_and_online_follows_the_heartbeat() {
        let now = 1_700_000_000_000;
        assert!(point_time_ok(now, now - bounds::BATCH_WINDOW_MS));
        assert!(!point_time_ok(now, now - bounds::BATCH_WINDOW_MS - 1));
        assert!(!point_time_ok(now, now + bounds::BATCH_WINDOW_MS + 1));
        assert!(online(Some(now - 60_000), now, 60_000));
        assert!(!online(Some(now - 60_001), now, 60_000));
        assert!(!online(None, now, 60_000));
        assert!(seen_due(None, now));
        assert!(!seen_due(Some(now - 999), now));
        assert!(seen_due(Some(now - 1000), now));
    }
}
