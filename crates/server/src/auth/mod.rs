//! Authentication at the HTTP edge: the client's address (the key of the
//! login throttle, which lives in arbor-app), the session
//! extractor and the refusal of cross-site requests made with the session
//! cookie.

pub mod client;
pub mod cross_site;
pub mod session;
pub mod tarpit;
