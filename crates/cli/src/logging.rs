//! The server's log on standard error, as text or JSON lines.
//!
//! One event is one line, whatever it carries: an email, a path or a header
//! a client sent cannot start a line of its own or colour the terminal.
//! JSON escapes every control character already; the text format escapes
//! only some in messages and none in `%display` fields, so text fields are
//! written through [`escaped`], which escapes control characters (C0, DEL,
//! C1), line and paragraph separators and bidirectional overrides.

use arbor_server::config::LogFormat;
use std::fmt::{self, Write as _};
use tracing_subscriber::field::MakeExt as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::{Writer, debug_fn};

/// The default filter: INFO (including the access log, target
/// `arbor::access`); `ARBOR_LOG` overrides it (`EnvFilter` syntax).
const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// Installs the global subscriber (once per process).
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARBOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ =
        tracing::subscriber::set_global_default(subscriber(format, filter, ansi, std::io::stderr));
}

fn subscriber<W>(
    format: LogFormat,
    filter: tracing_subscriber::EnvFilter,
    ansi: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(builder.json().finish()),
        LogFormat::Text => Box::new(
            builder
                .with_ansi(ansi)
                .fmt_fields(
                    debug_fn(|writer, field, value| {
                        if field.name() == "message" {
                            escaped(writer, value)
                        } else {
                            write!(writer, "{}=", field.name())?;
                            escaped(writer, value)
                        }
                    })
                    .delimited(" "),
                )
                .finish(),
        ),
    }
}

/// Writes `value` (its `Debug`, which for `%display` fields and messages is
/// their `Display`) with every character that could break or disguise a
/// line escaped.
fn escaped(writer: &mut Writer<'_>, value: &dyn fmt::Debug) -> fmt::Result {
    write!(Escaping(writer), "{value:?}")
}

struct Escaping<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(needs_escape) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn logged(format: LogFormat, ansi: bool) -> String {
        let buffer = Buffer::default();
        let subscriber = subscriber(
            format,
            tracing_subscriber::EnvFilter::new("info"),
            ansi,
            buffer.clone(),
        );
        let forged = "x\nINFO forged: admin logged in\r\u{1b}[2J\u{9b}31m\u{2028}\u{202e}";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", path = %forged);
            let _entered = span.enter();
            tracing::info!(email = %forged, header = ?forged, "login of {forged} failed");
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_text_event_is_one_line_whatever_its_fields_carry() {
        for ansi in [false, true] {
            let text = logged(LogFormat::Text, ansi);
            assert_eq!(text.lines().count(), 1, "{text}");
            assert!(text.ends_with('\n'));
            let line = text.trim_end_matches('\n');
            for c in ['\r', '\u{9b}', '\u{2028}', '\u{202e}'] {
                assert!(!line.contains(c), "{c:?} in {line:?}");
            }
            if !ansi {
                assert!(!line.contains('\u{1b}'), "{line:?}");
            }
            // The field values are there, escaped, four times (span, message,
            // email, header).
            assert_eq!(line.matches("INFO forged").count(), 4, "{line}");
            assert!(
                line.contains(r"x\nINFO forged: admin logged in\r\u{1b}[2J"),
                "{line}"
            );
        }
    }

    #[test]
    fn a_json_event_is_one_line_whatever_its_fields_carry() {
        let text = logged(LogFormat::Json, false);
        assert_eq!(text.lines().count(), 1, "{text}");
        let event: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert!(
            event["fields"]["email"]
                .as_str()
                .unwrap()
                .starts_with("x\nINFO forged")
        );
    }
}
