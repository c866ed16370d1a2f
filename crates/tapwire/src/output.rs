//! How commands print what the server answered: `--output json` (the aws CLI's casing,
//! pretty-printed) or `--output table` (aligned columns for a person).

use serde_json::Value;

/// The `--output` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns.
    Table,
    /// JSON, as the server's fields are named.
    Json,
}

/// A table's columns: header and the JSON field each row shows (a top-level name, or a
/// JSON pointer such as `/Agent/ReportedAt` for a nested one).
pub type Columns<'a> = &'a [(&'a str, &'a str)];

/// Prints `value` (an object or an array of objects) as JSON or as a table of `columns`.
pub fn print(output: Output, value: &Value, columns: Columns<'_>) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Table => {
            let rows: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            print!("{}", table(&rows, columns));
        }
    }
    Ok(())
}

/// One cell's text: strings bare, arrays joined by commas, null as `-`.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn field_of<'v>(row: &'v Value, field: &str) -> &'v Value {
    if field.starts_with('/') { row.pointer(field).unwrap_or(&Value::Null) } else { &row[field] }
}

/// Rows under a header line, each column as wide as its widest cell.
pub fn table(rows: &[&Value], columns: Columns<'_>) -> String {
    let cells: Vec<Vec<String>> =
        rows.iter().map(|r| columns.iter().map(|(_, field)| cell(field_of(r, field))).collect()).collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (h, _))| cells.iter().map(|r| r[i].chars().count()).chain([h.len()]).max().unwrap_or(0))
        .collect();
    let line = |items: Vec<&str>| {
        let padded: Vec<String> = items.iter().zip(&widths).map(|(s, w)| format!("{s:<w$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(columns.iter().map(|(h, _)| *h).collect());
    for row in &cells {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn columns_align_and_empty_cells_show_a_dash() {
        let rows = [json!({"A": "x", "B": ["p", "q"]}), json!({"A": "longer", "B": null})];
        let refs: Vec<&Value> = rows.iter().collect();
        assert_eq!(table(&refs, &[("ID", "A"), ("WHAT", "B")]), "ID      WHAT\nx       p,q\nlonger  -\n");
    }
}
