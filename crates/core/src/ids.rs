//! Typed identifiers. Every id is a database row id (`BIGINT`); the newtypes keep
//! an organization id from ever being passed where a user id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(value: i64) -> Self {
                Self(value)
            }
        }
    };
}

id_type!(
    /// An organization. The id of a hierarchy's root organization also names the hierarchy.
    OrgId
);
id_type!(
    /// A person with an account.
    UserId
);
id_type!(
    /// A device instance.
    DeviceId
);
id_type!(
    /// A named place, owned by a user or an org (it never grants or limits access).
    LocationId
);
id_type!(
    /// An entry of an org's tag catalog.
    TagId
);
id_type!(
    /// A role of one hierarchy (at most nine per hierarchy).
    RoleId
);
id_type!(
    /// A device template (product definition) of one hierarchy.
    DeviceTemplateId
);
