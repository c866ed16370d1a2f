//! A small XML writer for EC2 responses: elements in the order written, text escaped,
//! nothing else. EC2 Query responses need no attributes but the root's namespace.

use std::fmt::{Display, Write};

/// The EC2 2016-11-15 namespace.
pub const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// Builds one XML document.
#[derive(Debug, Default)]
pub struct Xml {
    buf: String,
}

/// Escapes XML text (`<`, `>`, `&` only, as EC2 does).
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::partial_escape(text)
}

impl Xml {
    /// Starts `<{action}Response xmlns=…><requestId>…</requestId>`.
    pub fn response(action: &str, request_id: &str) -> Self {
        let mut x = Self { buf: String::with_capacity(1024) };
        x.buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = write!(x.buf, "<{action}Response xmlns=\"{NAMESPACE}\">");
        x.leaf("requestId", request_id);
        x
    }

    /// Ends the response document.
    #[must_use]
    pub fn finish(mut self, action: &str) -> String {
        let _ = write!(self.buf, "</{action}Response>");
        self.buf
    }

    /// Opens an element.
    pub fn open(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.buf, "<{name}>");
        self
    }

    /// Closes an element.
    pub fn close(&mut self, name: &str) -> &mut Self {
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
    pub fn leaf_raw(&mut self, text: &str) -> &mut Self {
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
        self.open(name);
        for item in items {
            self.open("item");
            each(self, item);
            self.close("item");
        }
        self.close(name)
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
