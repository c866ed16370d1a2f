//! Describe semantics shared by every EC2 Describe call.
//!
//! - Explicit IDs must all exist, else the kind's `…NotFound` error.
//! - `Filter.N.Name` / `Filter.N.Value.M`: values of one filter are OR-ed, filters are
//!   AND-ed, matching is case-sensitive, `*` and `?` are wildcards (`tapwire_model::wildcard`); an unknown name is
//!   `InvalidFilter`.
//! - Results are ordered by ID. `NextToken` carries the last ID returned, so a page
//!   continues after it: items that exist for the whole walk are seen exactly once, even
//!   while others are inserted or deleted.

use std::collections::BTreeMap;

use imbl::OrdMap;
use std::fmt::Display;
use std::ops::Bound;
use std::str::FromStr;

use tapwire_control::{ApiError, ErrorKind, ResourceKind};
use tapwire_model::limits;
use tapwire_model::resource::Tag;

use super::params::Params;
use crate::cancel::Cancel;
use tapwire_model::wildcard;

/// One parsed `Filter.N`.
#[derive(Debug, Clone)]
pub struct NameFilter {
    /// Filter name.
    pub name: String,
    /// Accepted values (OR).
    pub values: Vec<String>,
}

/// Most `Filter.N` one request may give.
pub const MAX_FILTERS: usize = 50;
/// Most filter values one request may give, across its filters (as EC2 says).
pub const MAX_FILTER_VALUES: usize = 200;
/// Longest filter value, in characters (a wildcard pattern against stored text).
pub const MAX_FILTER_VALUE_CHARS: usize = 255;
/// Most explicit IDs one Describe may name.
pub const MAX_IDS: usize = 1000;
/// Items per page when the caller gives no `MaxResults`; the answer then carries a
/// `nextToken` like any page, which the SDKs' paginators follow.
pub const DEFAULT_PAGE: usize = 1000;

/// Reads every `Filter.N` and checks names against `known`, within EC2's bounds.
pub fn name_filters(params: &Params, known: &[&str]) -> Result<Vec<NameFilter>, ApiError> {
    let indices = params.indices("Filter")?;
    if indices.len() > MAX_FILTERS {
        return Err(ApiError::new(
            ErrorKind::FilterLimitExceeded,
            format!("The maximum number of filters in a single call is {MAX_FILTERS}."),
        ));
    }
    let mut out = Vec::new();
    let mut total = 0;
    for n in indices {
        let name = params.required(&format!("Filter.{n}.Name"))?.to_owned();
        let tag_filter = name.strip_prefix("tag:").is_some_and(|key| !key.is_empty()) && known.contains(&"tag:*");
        if !known.contains(&name.as_str()) && !tag_filter {
            return Err(ApiError::new(ErrorKind::InvalidFilter, format!("The filter '{name}' is invalid")));
        }
        let values = params.list(&format!("Filter.{n}.Value"))?;
        total += values.len();
        if total > MAX_FILTER_VALUES {
            return Err(ApiError::new(
                ErrorKind::FilterLimitExceeded,
                format!("The maximum number of filter values specified on a single call is {MAX_FILTER_VALUES}."),
            ));
        }
        if let Some(v) = values.iter().find(|v| v.chars().count() > MAX_FILTER_VALUE_CHARS) {
            return Err(ApiError::invalid(format!(
                "The filter value '{}…' is longer than {MAX_FILTER_VALUE_CHARS} characters.",
                v.chars().take(16).collect::<String>()
            )));
        }
        out.push(NameFilter { name, values });
    }
    Ok(out)
}

/// The filter names every taggable resource takes besides its own (`tag:*` stands for
/// `tag:KEY` with any key).
pub const TAG_FILTERS: [&str; 2] = ["tag-key", "tag:*"];

/// The values of a tag filter: every key for `tag-key`, the value of tag KEY for
/// `tag:KEY`; `None` for any other name.
pub fn tag_values(tags: &[Tag], name: &str) -> Option<Vec<String>> {
    if name == "tag-key" {
        return Some(tags.iter().map(|t| t.key.clone()).collect());
    }
    let key = name.strip_prefix("tag:")?;
    Some(tags.iter().filter(|t| t.key == key).map(|t| t.value.clone()).collect())
}

/// Whether an item passes every filter; `values_of(name)` gives the item's values.
pub fn passes(filters: &[NameFilter], mut values_of: impl FnMut(&str) -> Vec<String>) -> bool {
    filters.iter().all(|f| {
        let have = values_of(&f.name);
        f.values.iter().any(|want| have.iter().any(|v| wildcard::matches(want, v)))
    })
}

/// Page size and position.
#[derive(Debug, Clone)]
pub struct Page {
    /// Items per page.
    pub max_results: usize,
    /// Return items whose ID is greater than this.
    pub after: Option<String>,
}

impl Default for Page {
    fn default() -> Self {
        Self { max_results: DEFAULT_PAGE, after: None }
    }
}

const TOKEN_PREFIX: &str = "tw1:";

/// Reads `MaxResults` (5–1000, [`DEFAULT_PAGE`] when absent) and `NextToken`.
pub fn page(params: &Params) -> Result<Page, ApiError> {
    let max_results = match params.parsed::<u32>("MaxResults")? {
        None => DEFAULT_PAGE,
        Some(n) if limits::EC2_MAX_RESULTS.contains(&n) => n as usize,
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

/// What every Describe call asks: explicit IDs, name filters and a page.
#[derive(Debug, Clone, Default)]
pub struct Describe {
    /// Explicit IDs (`{Kind}Id.N`); all must exist.
    pub ids: Vec<String>,
    /// `Filter.N`, names checked.
    pub filters: Vec<NameFilter>,
    /// `MaxResults` and `NextToken`.
    pub page: Page,
}

impl Describe {
    /// Reads `{id_key}.N`, `Filter.N` (names from `known`), `MaxResults` and `NextToken`.
    pub fn parse(params: &Params, id_key: &str, known: &[&str]) -> Result<Self, ApiError> {
        let ids = params.list(id_key)?;
        if ids.len() > MAX_IDS {
            return Err(ApiError::invalid(format!("At most {MAX_IDS} {id_key} values can be given.")));
        }
        Ok(Self { ids, filters: name_filters(params, known)?, page: page(params)? })
    }

    /// Applies explicit IDs, filters and paging to `items`, a map ordered by ID.
    ///
    /// Explicit IDs are looked up directly; otherwise the walk starts right after the
    /// page cursor, so a request costs what it returns, not what the account holds. The
    /// walk stops (`RequestCancelled`) once `cancel` is raised.
    pub fn select<'a, K, T>(
        &self,
        items: &'a OrdMap<K, T>,
        visible: impl Fn(&T) -> bool,
        kind: ResourceKind,
        values_of: impl Fn(&T, &str) -> Vec<String>,
        cancel: &Cancel,
    ) -> Result<(Vec<&'a T>, Option<String>), ApiError>
    where
        K: Ord + Clone + FromStr + Display,
        T: Clone,
    {
        select(items, visible, self, kind, values_of, cancel)
    }
}

fn select<'a, K, T>(
    items: &'a OrdMap<K, T>,
    visible: impl Fn(&T) -> bool,
    q: &Describe,
    kind: ResourceKind,
    values_of: impl Fn(&T, &str) -> Vec<String>,
    cancel: &Cancel,
) -> Result<(Vec<&'a T>, Option<String>), ApiError>
where
    K: Ord + Clone + FromStr + Display,
    T: Clone,
{
    let (ids, page) = (&q.ids, &q.page);
    let mut walked = 0usize;
    let mut gone = false;
    let mut wanted = |t: &&T| {
        walked += 1;
        if walked.is_multiple_of(64) && cancel.is_cancelled() {
            gone = true;
        }
        !gone && visible(t) && passes(&q.filters, |name| values_of(t, name))
    };
    let result = if !ids.is_empty() {
        // Ordered by ID and deduplicated, like a walk of the whole map would be.
        let mut found: BTreeMap<&K, &T> = BTreeMap::new();
        for raw in ids {
            let (key, t) = raw
                .parse::<K>()
                .ok()
                .and_then(|k| items.get_key_value(&k))
                .filter(|(_, t)| visible(t))
                .ok_or_else(|| ApiError::not_found(kind, raw))?;
            found.insert(key, t);
        }
        paged(found.into_iter().filter(|(_, t)| wanted(t)), page)
    } else {
        let start = match &page.after {
            None => Bound::Unbounded,
            Some(after) => match after.parse::<K>() {
                Ok(k) => Bound::Excluded(k),
                Err(_) => return Err(ApiError::new(ErrorKind::InvalidNextToken, "The pagination token is invalid.")),
            },
        };
        paged(items.range((start, Bound::Unbounded)).filter(|(_, t)| wanted(t)), page)
    };
    if gone {
        return Err(ApiError::new(ErrorKind::RequestCancelled, "The client went away before the answer was ready."));
    }
    Ok(result)
}

fn paged<'a, K: Display + 'a, T: 'a>(
    mut walk: impl Iterator<Item = (&'a K, &'a T)>,
    page: &Page,
) -> (Vec<&'a T>, Option<String>) {
    let taken: Vec<(&K, &T)> = walk.by_ref().take(page.max_results).collect();
    let next = match (taken.last(), walk.next()) {
        (Some((last, _)), Some(_)) => Some(encode_token(&last.to_string())),
        _ => None,
    };
    (taken.into_iter().map(|(_, t)| t).collect(), next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_every_item_once_and_survive_inserts() {
        let mut items: OrdMap<String, String> = (0..12).map(|i| (format!("id-{i:02}"), format!("id-{i:02}"))).collect();
        let mut q = Describe { page: Page { max_results: 5, after: None }, ..Describe::default() };
        let mut seen = Vec::new();
        loop {
            let (got, next) =
                q.select(&items, |_| true, ResourceKind::Filter, |_, _| vec![], &Cancel::default()).unwrap();
            seen.extend(got.into_iter().cloned());
            let inserted = format!("id-{:02}", 50 + seen.len()); // inserted during the walk
            items.insert(inserted.clone(), inserted);
            match next {
                Some(token) => q.page.after = decode_token(&token),
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
        let items: OrdMap<String, String> = [("a".to_owned(), "a".to_owned())].into_iter().collect();
        let q = Describe { ids: vec!["b".into()], ..Describe::default() };
        let err = q.select(&items, |_| true, ResourceKind::Session, |_, _| vec![], &Cancel::default()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound(ResourceKind::Session));
    }

    #[test]
    fn a_gone_client_stops_the_walk() {
        let items: OrdMap<String, String> = (0..1000).map(|i| (format!("{i:04}"), String::new())).collect();
        let cancel = Cancel::default();
        drop(cancel.on_drop());
        let q = Describe::default();
        let err = q.select(&items, |_| true, ResourceKind::Filter, |_, _| vec![], &cancel).unwrap_err();
        assert_eq!(err.kind, ErrorKind::RequestCancelled);
    }
}
