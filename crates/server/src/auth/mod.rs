//! Authentication at the HTTP edge: throttling of failed logins, the session
//! extractor and the refusal of cross-site requests made with the session
//! cookie.

pub mod cross_site;
pub mod session;
pub mod throttle;
