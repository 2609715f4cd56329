//! Device templates' content (SPEC.md section 1): datastreams on virtual
//! pins V0–V255, events and metafields, and the rules a template must keep.
//!
//! Pure validation: [`TemplateContent::checked`] is the only way to a
//! [`CheckedTemplate`], which is what the store writes, so every way in
//! (API, CLI, demo data) is held to the same rules. Each refusal names the
//! field at fault and, for a part, which one (`datastream V3`, `event
//! "overheat"`).

use crate::DomainError;
use crate::text::{self, limits};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Bounds of a template's content (documented in the API).
pub mod bounds {
    /// Highest virtual pin (V0–V255).
    pub const MAX_PIN: u16 = 255;
    /// Datastreams per template: one per pin at most.
    pub const DATASTREAMS: usize = 256;
    /// Events per template.
    pub const EVENTS: usize = 64;
    /// Metafields per template.
    pub const METAFIELDS: usize = 64;
    /// Values of one enum datastream.
    pub const ENUM_VALUES: usize = 64;
    /// Characters of one enum value.
    pub const ENUM_VALUE: usize = 64;
    /// Characters of an event code (`a-z`, `0-9`, `_`).
    pub const EVENT_CODE: usize = 50;
    /// Characters of an event name.
    pub const EVENT_NAME: usize = 64;
    /// Characters of a template description.
    pub const DESCRIPTION: usize = 2000;
    /// Characters of a string datastream's default value.
    pub const STRING_DEFAULT: usize = 255;
    /// Most decimals a double datastream shows.
    pub const MAX_DECIMALS: u8 = 6;
    /// Longest history retention a template may set, in days (ten years).
    pub const MAX_HISTORY_RETENTION_DAYS: i64 = 3650;
}

/// What a datastream holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    Integer,
    Double,
    String,
    Enum,
}

impl ValueType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Integer => "integer",
            Self::Double => "double",
            Self::String => "string",
            Self::Enum => "enum",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Integer, Self::Double, Self::String, Self::Enum]
            .into_iter()
            .find(|t| t.as_str() == text)
    }

    fn numeric(self) -> bool {
        matches!(self, Self::Integer | Self::Double)
    }
}

/// How serious an event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventLevel {
    Info,
    Warning,
    Critical,
}

impl EventLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Info, Self::Warning, Self::Critical]
            .into_iter()
            .find(|l| l.as_str() == text)
    }
}

/// What a metafield holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetafieldType {
    Text,
    Number,
    Boolean,
}

impl MetafieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Boolean => "boolean",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Text, Self::Number, Self::Boolean]
            .into_iter()
            .find(|t| t.as_str() == text)
    }
}

/// A datastream's default value: a number for integer and double
/// datastreams, a text for string and enum ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Number(f64),
    Text(String),
}

impl Scalar {
    /// The stored form: numbers as decimal text.
    pub fn to_stored(&self) -> String {
        match self {
            Self::Number(n) => n.to_string(),
            Self::Text(t) => t.clone(),
        }
    }

    /// Back from the stored form, for a datastream of `value_type`.
    pub fn from_stored(value_type: ValueType, stored: &str) -> Self {
        match (value_type.numeric(), stored.parse::<f64>()) {
            (true, Ok(n)) => Self::Number(n),
            _ => Self::Text(stored.to_owned()),
        }
    }
}

/// A datastream on a virtual pin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Datastream {
    /// The virtual pin, 0–255 (V0–V255).
    pub pin: u16,
    pub name: String,
    pub value_type: ValueType,
    /// The values of an enum datastream (empty for other types).
    pub enum_values: Vec<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub units: String,
    pub default_value: Option<Scalar>,
    /// Decimals shown, double datastreams only (0–6).
    pub decimals: Option<u8>,
}

/// An event a device of the template may log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub code: String,
    pub name: String,
    pub level: EventLevel,
}

/// A metafield every device of the template has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metafield {
    pub name: String,
    pub value_type: MetafieldType,
    /// Empty: no default.
    pub default_value: String,
}

/// A template's name, description and parts, as given or as stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TemplateContent {
    pub name: String,
    pub description: String,
    pub datastreams: Vec<Datastream>,
    pub events: Vec<Event>,
    pub metafields: Vec<Metafield>,
    /// How many days the values and events its devices send are kept
    /// (1 to [`bounds::MAX_HISTORY_RETENTION_DAYS`]); `None`: the server's
    /// default (`device_api.history_retention_days`).
    #[serde(default)]
    pub history_retention_days: Option<i64>,
}

/// A template's content that passed [`TemplateContent::checked`]: names
/// trimmed, every rule kept. Only this module makes one.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedTemplate(TemplateContent);

impl CheckedTemplate {
    pub fn content(&self) -> &TemplateContent {
        &self.0
    }
}

/// Prefixes a refusal's reason with the part it is about.
fn about<T>(part: impl Fn() -> String, result: Result<T, DomainError>) -> Result<T, DomainError> {
    result.map_err(|e| match e {
        DomainError::Invalid { field, reason } => DomainError::Invalid {
            field,
            reason: format!("{}: {reason}", part()),
        },
        other => other,
    })
}

fn invalid<T>(field: &'static str, reason: impl Into<String>) -> Result<T, DomainError> {
    Err(DomainError::invalid(field, reason))
}

fn finite(field: &'static str, value: Option<f64>) -> Result<(), DomainError> {
    match value {
        Some(v) if !v.is_finite() => invalid(field, "must be a finite number"),
        _ => Ok(()),
    }
}

fn count(field: &'static str, n: usize, max: usize) -> Result<(), DomainError> {
    if n > max {
        invalid(field, format!("at most {max} per template (has {n})"))
    } else {
        Ok(())
    }
}

impl Datastream {
    fn checked(mut self) -> Result<Self, DomainError> {
        use ValueType as T;
        if self.pin > bounds::MAX_PIN {
            return invalid(
                "datastreams.pin",
                format!("V{} is not a virtual pin (V0–V255)", self.pin),
            );
        }
        self.name = text::name("datastreams.name", &self.name, limits::DATASTREAM_NAME)?;
        self.units = text::line("datastreams.units", &self.units, limits::DATASTREAM_UNITS)?;
        finite("datastreams.min", self.min)?;
        finite("datastreams.max", self.max)?;
        if !self.value_type.numeric() && (self.min.is_some() || self.max.is_some()) {
            return invalid(
                "datastreams.min",
                format!(
                    "min and max apply to integer and double datastreams, not {}",
                    self.value_type.as_str()
                ),
            );
        }
        if let (Some(min), Some(max)) = (self.min, self.max)
            && min > max
        {
            return invalid(
                "datastreams.min",
                format!("min ({min}) must not exceed max ({max})"),
            );
        }
        if self.value_type == T::Integer
            && [self.min, self.max]
                .into_iter()
                .flatten()
                .any(|v| v.fract() != 0.0)
        {
            return invalid(
                "datastreams.min",
                "min and max of an integer datastream must be whole numbers",
            );
        }
        match (self.value_type, self.decimals) {
            (T::Double, Some(d)) if d > bounds::MAX_DECIMALS => {
                return invalid(
                    "datastreams.decimals",
                    format!("at most {} (has {d})", bounds::MAX_DECIMALS),
                );
            }
            (T::Double, _) | (_, None) => {}
            (other, Some(_)) => {
                return invalid(
                    "datastreams.decimals",
                    format!(
                        "decimals apply to double datastreams, not {}",
                        other.as_str()
                    ),
                );
            }
        }
        if self.value_type == T::Enum {
            self.enum_values = self.checked_enum_values()?;
        } else if !self.enum_values.is_empty() {
            return invalid(
                "datastreams.enum_values",
                format!(
                    "only enum datastreams have values, not {}",
                    self.value_type.as_str()
                ),
            );
        }
        self.default_value = self.checked_default()?;
        Ok(self)
    }

    fn checked_enum_values(&self) -> Result<Vec<String>, DomainError> {
        const FIELD: &str = "datastreams.enum_values";
        if self.enum_values.is_empty() {
            return invalid(FIELD, "an enum datastream needs at least one value");
        }
        if self.enum_values.len() > bounds::ENUM_VALUES {
            return invalid(
                FIELD,
                format!(
                    "at most {} values (has {})",
                    bounds::ENUM_VALUES,
                    self.enum_values.len()
                ),
            );
        }
        let mut seen = BTreeSet::new();
        let mut values = Vec::with_capacity(self.enum_values.len());
        for value in &self.enum_values {
            let value = text::name(FIELD, value, bounds::ENUM_VALUE)?;
            if !seen.insert(value.clone()) {
                return invalid(FIELD, format!("the value {value:?} is listed twice"));
            }
            values.push(value);
        }
        Ok(values)
    }

    fn checked_default(&self) -> Result<Option<Scalar>, DomainError> {
        const FIELD: &str = "datastreams.default_value";
        let Some(default) = &self.default_value else {
            return Ok(None);
        };
        match (self.value_type, default) {
            (ValueType::Integer | ValueType::Double, Scalar::Number(n)) => {
                let n = *n;
                if !n.is_finite() {
                    return invalid(FIELD, "must be a finite number");
                }
                if self.value_type == ValueType::Integer && n.fract() != 0.0 {
                    return invalid(FIELD, format!("{n} is not a whole number"));
                }
                if self.min.is_some_and(|min| n < min) || self.max.is_some_and(|max| n > max) {
                    return invalid(FIELD, format!("{n} lies outside min and max"));
                }
                Ok(Some(Scalar::Number(n)))
            }
            (ValueType::String, Scalar::Text(t)) => Ok(Some(Scalar::Text(text::line(
                FIELD,
                t,
                bounds::STRING_DEFAULT,
            )?))),
            (ValueType::Enum, Scalar::Text(t)) => {
                let t = t.trim();
                if self.enum_values.iter().any(|v| v == t) {
                    Ok(Some(Scalar::Text(t.to_owned())))
                } else {
                    invalid(FIELD, format!("{t:?} is not one of the enum values"))
                }
            }
            (value_type, _) => invalid(
                FIELD,
                format!(
                    "a {} datastream needs a {} default",
                    value_type.as_str(),
                    if value_type.numeric() {
                        "number"
                    } else {
                        "text"
                    }
                ),
            ),
        }
    }
}

impl Event {
    fn checked(mut self) -> Result<Self, DomainError> {
        let code = self.code.trim();
        let length = code.chars().count();
        if length == 0 || length > bounds::EVENT_CODE {
            return invalid(
                "events.code",
                format!(
                    "must be 1 to {} characters (has {length})",
                    bounds::EVENT_CODE
                ),
            );
        }
        if !code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return invalid(
                "events.code",
                format!("{code:?} may hold only a-z, 0-9 and _"),
            );
        }
        self.code = code.to_owned();
        self.name = text::name("events.name", &self.name, bounds::EVENT_NAME)?;
        Ok(self)
    }
}

impl Metafield {
    fn checked(mut self) -> Result<Self, DomainError> {
        const FIELD: &str = "metafields.default_value";
        self.name = text::name("metafields.name", &self.name, limits::METAFIELD_NAME)?;
        let default = text::line(FIELD, &self.default_value, limits::METAFIELD_VALUE)?;
        match self.value_type {
            MetafieldType::Number
                if !default.is_empty() && !default.parse::<f64>().is_ok_and(f64::is_finite) =>
            {
                return invalid(FIELD, format!("{default:?} is not a number"));
            }
            MetafieldType::Boolean if !matches!(default.as_str(), "" | "true" | "false") => {
                return invalid(FIELD, format!("{default:?} is not true or false"));
            }
            _ => {}
        }
        self.default_value = default;
        Ok(self)
    }
}

impl TemplateContent {
    /// The content with names trimmed, or the first rule it breaks: pins
    /// V0–V255 and unique, unique event codes and metafield names (ignoring
    /// case), min ≤ max, an enum with values and a default among them, a
    /// default within min and max, bounded names and counts, a history
    /// retention of 1 to 3650 days when one is set.
    pub fn checked(self) -> Result<CheckedTemplate, DomainError> {
        let name = text::name("name", &self.name, limits::DEVICE_TEMPLATE_NAME)?;
        let description = text::free_text("description", &self.description, bounds::DESCRIPTION)?;
        count("datastreams", self.datastreams.len(), bounds::DATASTREAMS)?;
        count("events", self.events.len(), bounds::EVENTS)?;
        count("metafields", self.metafields.len(), bounds::METAFIELDS)?;

        let mut pins = BTreeSet::new();
        let mut datastreams = Vec::with_capacity(self.datastreams.len());
        for ds in self.datastreams {
            let pin = ds.pin;
            let ds = about(|| format!("datastream V{pin}"), ds.checked())?;
            if !pins.insert(pin) {
                return invalid(
                    "datastreams.pin",
                    format!("V{pin} is used by more than one datastream"),
                );
            }
            datastreams.push(ds);
        }
        let mut codes = BTreeSet::new();
        let mut events = Vec::with_capacity(self.events.len());
        for (i, event) in self.events.into_iter().enumerate() {
            let event = about(|| format!("event {}", i + 1), event.checked())?;
            if !codes.insert(event.code.clone()) {
                return invalid(
                    "events.code",
                    format!("the code {:?} is used by more than one event", event.code),
                );
            }
            events.push(event);
        }
        if let Some(days) = self.history_retention_days
            && !(1..=bounds::MAX_HISTORY_RETENTION_DAYS).contains(&days)
        {
            return invalid(
                "history_retention_days",
                format!(
                    "must be 1 to {} days, or null for the server's default (is {days})",
                    bounds::MAX_HISTORY_RETENTION_DAYS
                ),
            );
        }
        let mut names = BTreeSet::new();
        let mut metafields = Vec::with_capacity(self.metafields.len());
        for (i, field) in self.metafields.into_iter().enumerate() {
            let field = about(|| format!("metafield {}", i + 1), field.checked())?;
            if !names.insert(field.name.to_lowercase()) {
                return invalid(
                    "metafields.name",
                    format!(
                        "the name {:?} is used by more than one metafield",
                        field.name
                    ),
                );
            }
            metafields.push(field);
        }
        Ok(CheckedTemplate(TemplateContent {
            name,
            description,
            datastreams,
            events,
            metafields,
            history_retention_days: self.history_retention_days,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(pin: u16, value_type: ValueType) -> Datastream {
        Datastream {
            pin,
            name: format!("Stream {pin}"),
            value_type,
            enum_values: Vec::new(),
            min: None,
            max: None,
            units: String::new(),
            default_value: None,
            decimals: None,
        }
    }

    fn template(datastreams: Vec<Datastream>) -> TemplateContent {
        TemplateContent {
            name: " Boiler ".into(),
            description: String::new(),
            datastreams,
            events: vec![Event {
                code: "overheat".into(),
                name: "Overheat".into(),
                level: EventLevel::Critical,
            }],
            metafields: vec![Metafield {
                name: "Serial".into(),
                value_type: MetafieldType::Text,
                default_value: String::new(),
            }],
            history_retention_days: None,
        }
    }

    fn field(result: Result<CheckedTemplate, DomainError>) -> &'static str {
        match result {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_full_template_passes_with_names_trimmed() {
        let mut temperature = stream(0, ValueType::Double);
        temperature.min = Some(-20.0);
        temperature.max = Some(120.0);
        temperature.default_value = Some(Scalar::Number(20.5));
        temperature.decimals = Some(1);
        temperature.units = "°C".into();
        let mut mode = stream(255, ValueType::Enum);
        mode.enum_values = vec!["off".into(), "eco".into()];
        mode.default_value = Some(Scalar::Text("eco".into()));
        let checked = template(vec![temperature, mode]).checked().unwrap();
        assert_eq!(checked.content().name, "Boiler");
        assert_eq!(checked.content().datastreams.len(), 2);
    }

    #[test]
    fn pins_are_virtual_and_unique() {
        assert_eq!(
            field(template(vec![stream(256, ValueType::Integer)]).checked()),
            "datastreams.pin"
        );
        let twice = template(vec![
            stream(3, ValueType::Integer),
            stream(3, ValueType::String),
        ]);
        assert_eq!(field(twice.checked()), "datastreams.pin");
    }

    #[test]
    fn min_must_not_exceed_max_and_defaults_lie_within() {
        let mut ds = stream(1, ValueType::Integer);
        ds.min = Some(10.0);
        ds.max = Some(0.0);
        assert_eq!(
            field(template(vec![ds.clone()]).checked()),
            "datastreams.min"
        );
        ds.max = Some(20.0);
        ds.default_value = Some(Scalar::Number(30.0));
        assert_eq!(
            field(template(vec![ds.clone()]).checked()),
            "datastreams.default_value"
        );
        ds.default_value = Some(Scalar::Number(10.5));
        assert_eq!(
            field(template(vec![ds.clone()]).checked()),
            "datastreams.default_value"
        );
        ds.default_value = Some(Scalar::Text("10".into()));
        assert_eq!(
            field(template(vec![ds]).checked()),
            "datastreams.default_value"
        );
    }

    #[test]
    fn enums_need_values_and_a_default_among_them() {
        let mut ds = stream(2, ValueType::Enum);
        assert_eq!(
            field(template(vec![ds.clone()]).checked()),
            "datastreams.enum_values"
        );
        ds.enum_values = vec!["a".into(), "a".into()];
        assert_eq!(
            field(template(vec![ds.clone()]).checked()),
            "datastreams.enum_values"
        );
        ds.enum_values = vec!["a".into(), "b".into()];
        ds.default_value = Some(Scalar::Text("c".into()));
        assert_eq!(
            field(template(vec![ds.clone()]).checked()),
            "datastreams.default_value"
        );
        let mut not_enum = stream(3, ValueType::String);
        not_enum.enum_values = vec!["a".into()];
        assert_eq!(
            field(template(vec![not_enum]).checked()),
            "datastreams.enum_values"
        );
    }

    #[test]
    fn decimals_are_for_doubles_and_bounded() {
        let mut ds = stream(4, ValueType::Integer);
        ds.decimals = Some(1);
        assert_eq!(field(template(vec![ds]).checked()), "datastreams.decimals");
        let mut ds = stream(4, ValueType::Double);
        ds.decimals = Some(7);
        assert_eq!(field(template(vec![ds]).checked()), "datastreams.decimals");
    }

    #[test]
    fn event_codes_and_metafield_names_are_unique() {
        let mut t = template(Vec::new());
        t.events.push(t.events[0].clone());
        assert_eq!(field(t.checked()), "events.code");
        let mut t = template(Vec::new());
        t.events[0].code = "Over heat".into();
        assert_eq!(field(t.checked()), "events.code");
        let mut t = template(Vec::new());
        let mut again = t.metafields[0].clone();
        again.name = "SERIAL".into();
        t.metafields.push(again);
        assert_eq!(field(t.checked()), "metafields.name");
        let mut t = template(Vec::new());
        t.metafields[0].value_type = MetafieldType::Number;
        t.metafields[0].default_value = "twelve".into();
        assert_eq!(field(t.checked()), "metafields.default_value");
    }

    #[test]
    fn history_retention_is_one_day_to_ten_years_or_the_default() {
        for days in [
            None,
            Some(1),
            Some(30),
            Some(bounds::MAX_HISTORY_RETENTION_DAYS),
        ] {
            let mut t = template(Vec::new());
            t.history_retention_days = days;
            assert_eq!(t.checked().unwrap().content().history_retention_days, days);
        }
        for days in [0, -1, bounds::MAX_HISTORY_RETENTION_DAYS + 1, i64::MAX] {
            let mut t = template(Vec::new());
            t.history_retention_days = Some(days);
            match t.checked() {
                Err(DomainError::Invalid { field, reason }) => {
                    assert_eq!(field, "history_retention_days");
                    assert!(reason.contains("1 to 3650 days"), "{reason}");
                }
                other => panic!("{days}: {other:?}"),
            }
        }
    }

    #[test]
    fn names_and_counts_are_bounded() {
        let mut t = template(Vec::new());
        t.name = "x".repeat(65);
        assert_eq!(field(t.checked()), "name");
        let mut t = template(Vec::new());
        t.events = (0..=bounds::EVENTS)
            .map(|i| Event {
                code: format!("e{i}"),
                name: "E".into(),
                level: EventLevel::Info,
            })
            .collect();
        assert_eq!(field(t.checked()), "events");
        let mut ds = stream(5, ValueType::Integer);
        ds.name = "n".repeat(limits::DATASTREAM_NAME + 1);
        match template(vec![ds]).checked() {
            Err(DomainError::Invalid { field, reason }) => {
                assert_eq!(field, "datastreams.name");
                assert!(reason.contains("V5"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
