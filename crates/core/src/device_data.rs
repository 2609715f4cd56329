//! The device data plane's values (SPEC.md section 7): what a device sends
//! to a datastream, as the store keeps it.

use crate::template::Scalar;
use serde::{Deserialize, Serialize};

/// A datastream value: one part (a number for integer and double
/// datastreams, a text for string and enum ones), or several parts sent
/// together (`&value=lon&value=lat`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PinValue {
    One(Scalar),
    Many(Vec<Scalar>),
}
