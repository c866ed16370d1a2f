//! A small XML writer for EC2 responses: elements in the order written, text escaped,
//! nothing else. EC2 Query responses need no attributes but the root's namespace.
//!
//! Invariant: every document is well-formed XML 1.0 whatever text it is given. Elements
//! are written through scopes ([`Xml::element`], [`Xml::list`]) so they always close, and
//! text is escaped; characters XML 1.0 cannot carry at all (most C0 controls, lone
//! surrogates cannot occur in `str`, U+FFFE/U+FFFF) are written as U+FFFD. The API refuses
//! such characters at the door; this is the last line for anything already stored.

use std::borrow::Cow;
use std::fmt::{Display, Write};

/// The EC2 2016-11-15 namespace.
pub const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// Builds one XML document.
#[derive(Debug, Default)]
pub struct Xml {
    buf: String,
}

/// Whether XML 1.0 can carry `c` in text (the `Char` production).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes XML text (`<`, `>`, `&`, as EC2 does) and replaces characters XML 1.0 cannot
/// carry with U+FFFD.
pub fn escape(text: &str) -> Cow<'_, str> {
    if text.chars().all(is_xml_char) {
        return quick_xml::escape::partial_escape(text);
    }
    let clean: String = text.chars().map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' }).collect();
    Cow::Owned(quick_xml::escape::partial_escape(&clean).into_owned())
}

impl Xml {
    /// Writes `<{action}Response xmlns=…><requestId>…</requestId>`, then `body`, then the
    /// closing tag: the whole success document.
    pub fn response(action: &str, request_id: &str, body: impl FnOnce(&mut Self)) -> String {
        let mut x = Self { buf: String::with_capacity(1024) };
        x.buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = write!(x.buf, "<{action}Response xmlns=\"{NAMESPACE}\">");
        x.leaf("requestId", request_id);
        body(&mut x);
        let _ = write!(x.buf, "</{action}Response>");
        x.buf
    }

    /// `<name>…</name>` with the content written by `body`.
    pub fn element(&mut self, name: &str, body: impl FnOnce(&mut Self)) -> &mut Self {
        let _ = write!(self.buf, "<{name}>");
        body(self);
        let _ = write!(self.buf, "</{name}>");
        self
    }

    /// `<name>value</name>` with the value escaped.
    pub fn leaf(&mut self, name: &str, value: impl Display) -> &mut Self {
        let text = value.to_string();
        let _ = write!(self.buf, "<{name}>{}</{name}>", escape(&text));
        self
    }

    /// Escaped text with no element around it (scalar list items).
    pub fn text(&mut self, text: &str) -> &mut Self {
        self.buf.push_str(&escape(text));
        self
    }

    /// A leaf when `value` is present; nothing otherwise (EC2 omits absent scalars).
    pub fn opt(&mut self, name: &str, value: Option<impl Display>) -> &mut Self {
        if let Some(v) = value {
            self.leaf(name, v);
        }
        self
    }

    /// `<name><item>…</item>…</name>`, each item written by `each`; empty lists render as
    /// `<name/>`.
    pub fn list<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Self, T),
    ) -> &mut Self {
        let mut items = items.into_iter().peekable();
        if items.peek().is_none() {
            let _ = write!(self.buf, "<{name}/>");
            return self;
        }
        self.element(name, |x| {
            for item in items {
                x.element("item", |x| each(x, item));
            }
        })
    }
}

/// The EC2 error document.
pub fn error_document(code: &str, message: &str, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
        escape(code),
        escape(message),
        escape(request_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_close_and_text_is_always_well_formed() {
        let doc = Xml::response("Test", "rid", |x| {
            x.element("a", |x| {
                x.leaf("b", "x < y & \u{1}\u{0}\u{b}\u{1b}\u{fffe} é");
            });
            x.list("set", ["1", "2"], |x, v| {
                x.text(v);
            });
            x.list("empty", std::iter::empty::<&str>(), |_, _| {});
        });
        assert!(doc.ends_with(
            "<a><b>x &lt; y &amp; \u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd} é</b></a><set><item>1</item><item>2</item></set><empty/></TestResponse>"
        ));
        let mut reader = quick_xml::Reader::from_str(&doc);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("not well-formed: {e}"),
            }
        }
    }

    #[test]
    fn xml_chars_are_the_xml_1_0_set() {
        assert!(is_xml_char('\t') && is_xml_char('a') && is_xml_char('\u{10FFFF}'));
        assert!(!is_xml_char('\u{0}') && !is_xml_char('\u{1f}') && !is_xml_char('\u{FFFE}'));
    }
}
