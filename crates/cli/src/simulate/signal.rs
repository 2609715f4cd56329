//! Values that look like a device's: numbers drift along a slow sine with a
//! wandering offset and a little noise, inside the datastream's min..max and
//! at its decimals; enums and status texts stay put and now and then switch.
//! Randomness is passed in, so a seeded generator gives the same series.

use super::api::{Datastream, ValueType};
use rand::{Rng, RngExt};

/// Status texts a string datastream reports.
const STATUSES: [&str; 6] = ["ok", "idle", "running", "heating", "cooling", "service due"];

/// How often per sample an enum or status changes.
const SWITCH_PROBABILITY: f64 = 0.05;

/// The range used when a numeric datastream leaves min or max unset.
const DEFAULT_SPAN: f64 = 100.0;

#[derive(Debug)]
pub enum Signal {
    Number {
        low: f64,
        high: f64,
        decimals: usize,
        period_secs: f64,
        phase: f64,
        /// A mean-reverting random walk around the sine.
        offset: f64,
    },
    Choice {
        values: Vec<String>,
        current: usize,
    },
    Status {
        current: usize,
    },
}

impl Signal {
    /// A signal for `datastream`, or none if there is nothing valid to send
    /// (an enum without values).
    pub fn new(datastream: &Datastream, rng: &mut impl Rng) -> Option<Signal> {
        Some(match datastream.value_type {
            ValueType::Integer | ValueType::Double => {
                let (low, high) = match (datastream.min, datastream.max) {
                    (Some(low), Some(high)) => (low, high.max(low)),
                    (Some(low), None) => (low, low + DEFAULT_SPAN),
                    (None, Some(high)) => (high - DEFAULT_SPAN, high),
                    (None, None) => (0.0, DEFAULT_SPAN),
                };
                let decimals = match datastream.value_type {
                    ValueType::Integer => 0,
                    _ => usize::from(datastream.decimals.unwrap_or(1).min(6)),
                };
                Signal::Number {
                    low,
                    high,
                    decimals,
                    period_secs: rng.random_range(60.0..600.0),
                    phase: rng.random_range(0.0..std::f64::consts::TAU),
                    offset: 0.0,
                }
            }
            ValueType::Enum if datastream.enum_values.is_empty() => return None,
            ValueType::Enum => Signal::Choice {
                current: rng.random_range(0..datastream.enum_values.len()),
                values: datastream.enum_values.clone(),
            },
            ValueType::String => Signal::Status {
                current: rng.random_range(0..STATUSES.len()),
            },
        })
    }

    /// The value at `t` seconds into the run, as the device API reads it.
    pub fn sample(&mut self, t: f64, rng: &mut impl Rng) -> String {
        match self {
            Signal::Number {
                low,
                high,
                decimals,
                period_secs,
                phase,
                offset,
            } => {
                let span = *high - *low;
                if span <= 0.0 {
                    return format_number(*low, *decimals);
                }
                let middle = *low + span / 2.0;
                let wave = 0.3 * span * (std::f64::consts::TAU * t / *period_secs + *phase).sin();
                *offset = 0.97 * *offset + rng.random_range(-0.02..0.02) * span;
                let noise = rng.random_range(-0.005..0.005) * span;
                let value = (middle + wave + *offset + noise).clamp(*low, *high);
                format_number(value, *decimals)
            }
            Signal::Choice { values, current } => {
                if values.len() > 1 && rng.random_bool(SWITCH_PROBABILITY) {
                    *current = (*current + rng.random_range(1..values.len())) % values.len();
                }
                values[*current].clone()
            }
            Signal::Status { current } => {
                if rng.random_bool(SWITCH_PROBABILITY) {
                    *current = (*current + rng.random_range(1..STATUSES.len())) % STATUSES.len();
                }
                STATUSES[*current].to_owned()
            }
        }
    }
}

/// `value` with `decimals` digits after the point, never `-0`.
fn format_number(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    match text.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn datastream(value_type: ValueType, min: Option<f64>, max: Option<f64>) -> Datastream {
        Datastream {
            pin: 1,
            name: "x".into(),
            value_type,
            enum_values: Vec::new(),
            min,
            max,
            decimals: None,
        }
    }

    fn series(datastream: &Datastream, samples: usize) -> Vec<String> {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut signal = Signal::new(datastream, &mut rng).unwrap();
        (0..samples)
            .map(|i| signal.sample(i as f64, &mut rng))
            .collect()
    }

    #[test]
    fn doubles_stay_within_min_and_max_at_their_decimals_and_move_smoothly() {
        let mut boiler = datastream(ValueType::Double, Some(0.0), Some(120.0));
        boiler.decimals = Some(2);
        let values: Vec<f64> = series(&boiler, 2000)
            .iter()
            .inspect(|v| assert_eq!(v.split('.').nth(1).map(str::len), Some(2), "{v}"))
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(values.iter().all(|v| (0.0..=120.0).contains(v)));
        // One second apart, a value moves by a few percent of the range, not
        // across it.
        let largest_step = values
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f64::max);
        assert!(largest_step < 12.0, "{largest_step}");
        let spread = values.iter().cloned().fold(f64::MIN, f64::max)
            - values.iter().cloned().fold(f64::MAX, f64::min);
        assert!(spread > 20.0, "the value barely moves: {spread}");
    }

    #[test]
    fn integers_are_whole_and_unset_bounds_get_a_range_next_to_the_set_one() {
        let above = datastream(ValueType::Integer, Some(-40.0), None);
        for value in series(&above, 500) {
            let value: i64 = value.parse().unwrap();
            assert!((-40..=60).contains(&value), "{value}");
        }
        let below = datastream(ValueType::Integer, None, Some(5.0));
        assert!(
            series(&below, 500)
                .iter()
                .all(|v| (-95..=5).contains(&v.parse::<i64>().unwrap()))
        );
        let fixed = datastream(ValueType::Integer, Some(3.0), Some(3.0));
        assert!(series(&fixed, 10).iter().all(|v| v == "3"));
    }

    #[test]
    fn enums_send_only_their_values_and_switch_now_and_then() {
        let mut mode = datastream(ValueType::Enum, None, None);
        mode.enum_values = vec!["off".into(), "eco".into(), "comfort".into()];
        let values = series(&mode, 1000);
        assert!(values.iter().all(|v| mode.enum_values.contains(v)));
        let switches = values.windows(2).filter(|w| w[0] != w[1]).count();
        assert!((10..200).contains(&switches), "{switches} switches");
        mode.enum_values.clear();
        assert!(Signal::new(&mode, &mut SmallRng::seed_from_u64(1)).is_none());
    }

    #[test]
    fn strings_are_short_status_texts() {
        let status = datastream(ValueType::String, None, None);
        assert!(
            series(&status, 200)
                .iter()
                .all(|v| STATUSES.contains(&v.as_str()))
        );
    }

    #[test]
    fn negative_zero_is_written_as_zero() {
        assert_eq!(format_number(-0.04, 1), "0.0");
        assert_eq!(format_number(-0.4, 0), "0");
        assert_eq!(format_number(-1.26, 1), "-1.3");
    }
}
