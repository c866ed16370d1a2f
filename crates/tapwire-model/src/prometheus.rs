//! The Prometheus text exposition format (version 0.0.4): what the agent's and the
//! server's `/metrics` write, in one place.
//!
//! A family's `# HELP` and `# TYPE` lines come before its samples; label values are
//! escaped (backslash, double quote, new line) so no value can break a line.

use std::fmt::{Display, Write as _};

/// A metrics page being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Exposition {
    /// An empty page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: `kind` is `counter` or `gauge`.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
    }

    /// The page.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_escaped_labels() {
        let mut m = Exposition::new();
        m.family("x_total", "counter", "Things.");
        m.sample("x_total", &[("a", "q\"uote\\n\new")], 3);
        assert_eq!(
            m.finish(),
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{a=\"q\\\"uote\\\\n\\new\"} 3\n"
        );
    }
}
