//! Describe semantics shared by every EC2 Describe call.
//!
//! - Explicit IDs must all exist, else the kind's `…NotFound` error.
//! - `Filter.N.Name` / `Filter.N.Value.M`: values of one filter are OR-ed, filters are
//!   AND-ed, matching is case-sensitive, `*` and `?` are wildcards; an unknown name is
//!   `InvalidFilter`.
//! - Results are ordered by ID. `NextToken` carries the last ID returned, so a page
//!   continues after it: items that exist for the whole walk are seen exactly once, even
//!   while others are inserted or deleted.

use tapwire_control::{ApiError, ErrorKind, ResourceKind};
use tapwire_model::limits;

use super::params::Params;

/// One parsed `Filter.N`.
#[derive(Debug, Clone)]
pub struct NameFilter {
    /// Filter name.
    pub name: String,
    /// Accepted values (OR).
    pub values: Vec<String>,
}

/// Reads every `Filter.N` and checks names against `known`.
pub fn name_filters(params: &Params, known: &[&str]) -> Result<Vec<NameFilter>, ApiError> {
    let mut out = Vec::new();
    for n in params.indices("Filter")? {
        let name = params.required(&format!("Filter.{n}.Name"))?.to_owned();
        if !known.contains(&name.as_str()) {
            return Err(ApiError::new(ErrorKind::InvalidFilter, format!("The filter '{name}' is invalid")));
        }
        let values = params.list(&format!("Filter.{n}.Value"))?;
        out.push(NameFilter { name, values });
    }
    Ok(out)
}

/// EC2 wildcard match: `*` any run, `?` any one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether an item passes every filter; `values_of(name)` gives the item's values.
pub fn passes(filters: &[NameFilter], mut values_of: impl FnMut(&str) -> Vec<String>) -> bool {
    filters.iter().all(|f| {
        let have = values_of(&f.name);
        f.values.iter().any(|want| have.iter().any(|v| glob(want, v)))
    })
}

/// Page size and position.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Items per page; `None` returns everything.
    pub max_results: Option<usize>,
    /// Return items whose ID is greater than this.
    pub after: Option<String>,
}

const TOKEN_PREFIX: &str = "tw1:";

/// Reads `MaxResults` (5–1000) and `NextToken`.
pub fn page(params: &Params) -> Result<Page, ApiError> {
    let max_results = match params.parsed::<u32>("MaxResults")? {
        None => None,
        Some(n) if limits::EC2_MAX_RESULTS.contains(&n) => Some(n as usize),
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "Value ( {n} ) for parameter maxResults is invalid. Expecting a value between {} and {}.",
                limits::EC2_MAX_RESULTS.start(),
                limits::EC2_MAX_RESULTS.end()
            )));
        }
    };
    let after =
        match params.get("NextToken") {
            None | Some("") => None,
            Some(token) => Some(decode_token(token).ok_or_else(|| {
                ApiError::new(ErrorKind::InvalidNextToken, format!("The token '{token}' is invalid."))
            })?),
        };
    Ok(Page { max_results, after })
}

fn decode_token(token: &str) -> Option<String> {
    let bytes = hex::decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix(TOKEN_PREFIX).map(str::to_owned)
}

fn encode_token(last_id: &str) -> String {
    hex::encode(format!("{TOKEN_PREFIX}{last_id}"))
}

/// Applies explicit IDs, filters and paging to `items` (already in ID order).
pub fn select<'a, T>(
    items: impl Iterator<Item = &'a T>,
    id_of: impl Fn(&T) -> String,
    ids: &[String],
    kind: ResourceKind,
    filters: &[NameFilter],
    values_of: impl Fn(&T, &str) -> Vec<String>,
    page: &Page,
) -> Result<(Vec<&'a T>, Option<String>), ApiError>
where
    T: 'a,
{
    let all: Vec<&T> = items.collect();
    if let Some(missing) = ids.iter().find(|want| !all.iter().any(|t| id_of(t) == **want)) {
        return Err(ApiError::not_found(kind, missing));
    }
    let mut selected = all
        .into_iter()
        .filter(|t| ids.is_empty() || ids.contains(&id_of(t)))
        .filter(|t| passes(filters, |name| values_of(t, name)))
        .filter(|t| page.after.as_ref().is_none_or(|after| id_of(t) > *after));
    match page.max_results {
        None => Ok((selected.collect(), None)),
        Some(max) => {
            let out: Vec<&T> = selected.by_ref().take(max).collect();
            let next = match (out.last(), selected.next()) {
                (Some(last), Some(_)) => Some(encode_token(&id_of(last))),
                _ => None,
            };
            Ok((out, next))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_ec2() {
        assert!(glob("web*", "web-1"));
        assert!(glob("w?b", "web"));
        assert!(glob("*", ""));
        assert!(!glob("web", "Web"));
        assert!(!glob("a*c", "abd"));
        assert!(glob("a*c*", "abcbc"));
    }

    #[test]
    fn pages_walk_every_item_once_and_survive_inserts() {
        let mut items: Vec<String> = (0..12).map(|i| format!("id-{i:02}")).collect();
        let mut page = Page { max_results: Some(5), after: None };
        let mut seen = Vec::new();
        loop {
            let (got, next) =
                select(items.iter(), |s| s.clone(), &[], ResourceKind::Filter, &[], |_, _| vec![], &page).unwrap();
            seen.extend(got.into_iter().cloned());
            items.push(format!("id-{:02}", 50 + seen.len())); // inserted during the walk
            items.sort();
            match next {
                Some(token) => page.after = decode_token(&token),
                None => break,
            }
        }
        let original: Vec<String> = (0..12).map(|i| format!("id-{i:02}")).collect();
        for id in &original {
            assert_eq!(seen.iter().filter(|s| *s == id).count(), 1, "{id}");
        }
    }

    #[test]
    fn explicit_missing_id_is_not_found() {
        let items = ["a".to_owned()];
        let err = select(
            items.iter(),
            |s| s.clone(),
            &["b".into()],
            ResourceKind::Session,
            &[],
            |_, _| vec![],
            &Page::default(),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound(ResourceKind::Session));
    }
}
