//! Property tests of the device data plane's value parsing
//! (`arbor_core::device_data`): whatever a device sends, a value is of the
//! datastream's type and within its min/max, or refused; numbers read alike
//! with either decimal point; NaN, infinities and empty text never pass.

use arbor_core::device_data::{PinValue, ValueRefusal, parse_number};
use arbor_core::template::{Datastream, Scalar, ValueType};
use proptest::prelude::*;

const LIMIT: usize = 1024;

fn stream(value_type: ValueType, min: Option<f64>, max: Option<f64>) -> Datastream {
    Datastream {
        pin: 3,
        name: "S".into(),
        value_type,
        enum_values: Vec::new(),
        min,
        max,
        units: String::new(),
        default_value: None,
        decimals: None,
    }
}

/// Optional bounds with min ≤ max, whole numbers when `whole`.
fn bounds(whole: bool) -> impl Strategy<Value = (Option<f64>, Option<f64>)> {
    (
        proptest::option::of(-1.0e6..1.0e6f64),
        proptest::option::of(0.0..2.0e6f64),
    )
        .prop_map(move |(min, span)| {
            let min = min.map(|m| if whole { m.round() } else { m });
            let max = match (min, span) {
                (Some(min), Some(span)) => Some(min + if whole { span.round() } else { span }),
                (None, Some(span)) => Some(if whole { span.round() } else { span }),
                (_, None) => None,
            };
            (min, max)
        })
}

fn number_of(value: &PinValue) -> f64 {
    match value {
        PinValue::One(Scalar::Number(n)) => *n,
        other => panic!("not one number: {other:?}"),
    }
}

fn within(n: f64, (min, max): (Option<f64>, Option<f64>)) -> bool {
    min.is_none_or(|min| n >= min) && max.is_none_or(|max| n <= max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Any text at all: an accepted number is finite, of the type and
    /// within the bounds; nothing panics.
    #[test]
    fn any_text_yields_a_bounded_value_of_the_type_or_a_refusal(
        text in "\\PC{0,24}|[-+0-9.,eE ]{0,16}",
        whole in any::<bool>(),
        limits in bounds(false),
    ) {
        let limits = if whole {
            (limits.0.map(f64::round), limits.1.map(f64::round))
        } else {
            limits
        };
        let ds = stream(if whole { ValueType::Integer } else { ValueType::Double }, limits.0, limits.1);
        match ds.parse_value(&[text.as_str()], LIMIT) {
            Ok(value) => {
                let n = number_of(&value);
                prop_assert!(n.is_finite());
                prop_assert!(within(n, limits), "{n} outside {limits:?}");
                if whole {
                    prop_assert_eq!(n.fract(), 0.0);
                }
            }
            Err(refusal) => prop_assert_eq!(refusal, ValueRefusal::Mismatch),
        }
    }

    /// A decimal number reads the same with `.` or `,` as its point, and
    /// the result is the number clamped (rounded first for integers).
    #[test]
    fn decimals_read_alike_with_either_point_and_are_clamped(
        n in -1.0e9..1.0e9f64,
        limits in bounds(true),
        whole in any::<bool>(),
    ) {
        let ds = stream(if whole { ValueType::Integer } else { ValueType::Double }, limits.0, limits.1);
        let dotted = format!("{n}");
        let comma = dotted.replace('.', ",");
        let a = ds.parse_value(&[dotted.as_str()], LIMIT).unwrap();
        let b = ds.parse_value(&[comma.as_str()], LIMIT).unwrap();
        prop_assert_eq!(&a, &b);
        let expected = ds.clamp(if whole { n.round() } else { n }) + 0.0;
        prop_assert_eq!(number_of(&a), expected);
    }

    /// Whole numbers read back exactly, out-of-range ones land on the bound.
    #[test]
    fn integers_read_back_exactly_or_clamped(i in -(1i64 << 52)..(1i64 << 52), limits in bounds(true)) {
        let ds = stream(ValueType::Integer, limits.0, limits.1);
        let value = ds.parse_value(&[i.to_string().as_str()], LIMIT).unwrap();
        let n = i as f64;
        prop_assert_eq!(number_of(&value), ds.clamp(n) + 0.0);
        if within(n, limits) {
            prop_assert_eq!(value.display(), i.to_string());
        }
    }

    /// NaN and the infinities, however spelled, and empty or blank text,
    /// are refused by numeric datastreams.
    #[test]
    fn nan_infinity_and_empty_are_refused(
        word in "(?i)(nan|inf|infinity)",
        sign in "[-+]?",
        blank in " {0,3}",
        whole in any::<bool>(),
    ) {
        let ds = stream(if whole { ValueType::Integer } else { ValueType::Double }, None, None);
        let spelled = format!("{sign}{word}");
        prop_assert_eq!(ds.parse_value(&[spelled.as_str()], LIMIT), Err(ValueRefusal::Mismatch));
        prop_assert_eq!(ds.parse_value(&[blank.as_str()], LIMIT), Err(ValueRefusal::Mismatch));
        prop_assert_eq!(parse_number("1e400"), None);
    }

    /// Strings are kept byte for byte up to the limit and refused beyond.
    #[test]
    fn strings_are_kept_as_sent_up_to_the_limit(text in "[^\u{0}]{1,40}", repeat in 1usize..60) {
        let ds = stream(ValueType::String, None, None);
        let long = text.repeat(repeat);
        match ds.parse_value(&[long.as_str()], LIMIT) {
            Ok(value) => {
                prop_assert!(long.len() <= LIMIT);
                prop_assert_eq!(value, PinValue::One(Scalar::Text(long.clone())));
            }
            Err(refusal) => {
                prop_assert!(long.len() > LIMIT);
                prop_assert_eq!(refusal, ValueRefusal::TooLong { limit: LIMIT });
            }
        }
    }

    /// An enum takes exactly its values.
    #[test]
    fn enums_take_exactly_their_values(
        values in proptest::collection::btree_set("[a-z]{1,8}", 1..6),
        probe in "[a-z]{1,8}",
    ) {
        let mut ds = stream(ValueType::Enum, None, None);
        ds.enum_values = values.iter().cloned().collect();
        let parsed = ds.parse_value(&[probe.as_str()], LIMIT);
        if values.contains(&probe) {
            prop_assert_eq!(parsed, Ok(PinValue::One(Scalar::Text(probe.clone()))));
        } else {
            prop_assert_eq!(parsed, Err(ValueRefusal::Mismatch));
        }
    }
}
