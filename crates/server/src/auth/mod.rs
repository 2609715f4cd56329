//! Authentication: password hashing and policy, opaque tokens, throttling,
//! sessions.

pub mod password;
pub mod throttle;
pub mod token;
