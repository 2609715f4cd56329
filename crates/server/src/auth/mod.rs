//! Authentication at the HTTP edge: throttling of failed logins and the session
//! extractor.

pub mod session;
pub mod throttle;
