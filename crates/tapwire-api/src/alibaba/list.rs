//! List semantics shared by every Alibaba List call.
//!
//! - Explicit IDs select; an unknown or malformed ID simply matches nothing (Alibaba
//!   answers an empty list, not an error).
//! - Results are ordered by ID. `NextToken` carries the last key returned, so a page
//!   continues after it and items that exist for the whole walk are seen exactly once.
//!   The last page has an empty `NextToken`.
//! - `TotalCount` counts every match, not just the page.

use std::ops::RangeInclusive;

use tapwire_control::{ApiError, ErrorKind};
use tapwire_model::resource::Tag;

use super::params::Params;

/// Page size and position.
#[derive(Debug, Clone)]
pub struct Page {
    /// Items per page.
    pub max_results: usize,
    /// Return items whose key is greater than this.
    pub after: Option<String>,
}

const TOKEN_PREFIX: &str = "ali1:";

/// Reads `MaxResults` (within `range`, `default` when absent) and `NextToken`.
pub fn page(params: &Params, range: RangeInclusive<u32>, default: u32) -> Result<Page, ApiError> {
    let max_results = match params.parsed::<u32>("MaxResults")? {
        None => default,
        Some(n) if range.contains(&n) => n,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "The value {n} of MaxResults is invalid; it must be between {} and {}.",
                range.start(),
                range.end()
            )));
        }
    };
    let after = match params.get("NextToken") {
        None | Some("") => None,
        Some(token) => Some(decode_token(token).ok_or_else(|| {
            ApiError::new(ErrorKind::InvalidNextToken, format!("The NextToken '{token}' is invalid."))
        })?),
    };
    Ok(Page { max_results: max_results as usize, after })
}

fn decode_token(token: &str) -> Option<String> {
    let text = String::from_utf8(hex::decode(token).ok()?).ok()?;
    text.strip_prefix(TOKEN_PREFIX).map(str::to_owned)
}

fn encode_token(last_key: &str) -> String {
    hex::encode(format!("{TOKEN_PREFIX}{last_key}"))
}

/// One page of `matches` (any order): the page, the next token (empty on the last page)
/// and the total number of matches.
pub fn paginate<T>(mut matches: Vec<T>, key: impl Fn(&T) -> String, page: &Page) -> (Vec<T>, String, usize) {
    matches.sort_by_key(|t| key(t));
    let total = matches.len();
    let start = match &page.after {
        None => 0,
        Some(after) => matches.partition_point(|t| key(t) <= *after),
    };
    let rest: Vec<T> = matches.into_iter().skip(start).collect();
    let more = rest.len() > page.max_results;
    let items: Vec<T> = rest.into_iter().take(page.max_results).collect();
    let next = match items.last() {
        Some(last) if more => encode_token(&key(last)),
        _ => String::new(),
    };
    (items, next, total)
}

/// A tag condition of a List call: the key, and the value when one is given.
#[derive(Debug, Clone)]
pub struct TagFilter {
    key: String,
    value: Option<String>,
}

/// Reads `prefix.N.Key` / `prefix.N.Value` conditions.
pub fn tag_filters(params: &Params, prefix: &str) -> Result<Vec<TagFilter>, ApiError> {
    let mut out = Vec::new();
    for n in params.indices(prefix)? {
        out.push(TagFilter {
            key: params.required(&format!("{prefix}.{n}.Key"))?.to_owned(),
            value: params.get(&format!("{prefix}.{n}.Value")).map(str::to_owned),
        });
    }
    Ok(out)
}

/// Whether `tags` satisfy every condition.
pub fn has_tags(tags: &[Tag], filters: &[TagFilter]) -> bool {
    filters.iter().all(|f| tags.iter().any(|t| t.key == f.key && f.value.as_ref().is_none_or(|v| *v == t.value)))
}

/// Alibaba's `CreationTime`: UTC to the minute, `2023-09-05T15:26Z`.
pub fn creation_time(epoch_seconds: i64) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]Z");
    time::OffsetDateTime::from_unix_timestamp(epoch_seconds)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn creation_time_is_minute_precision_utc() {
        assert_eq!(creation_time(0), "1970-01-01T00:00Z");
        assert_eq!(creation_time(1_693_927_599), "2023-09-05T15:26Z");
        assert_eq!(creation_time(951_782_400), "2000-02-29T00:00Z");
    }

    #[test]
    fn pages_walk_every_item_once() {
        let items: Vec<u32> = (0..23).collect();
        let key = |n: &u32| format!("{n:03}");
        let mut page = Page { max_results: 10, after: None };
        let mut seen = Vec::new();
        loop {
            let (got, next, total) = paginate(items.clone(), key, &page);
            assert_eq!(total, 23);
            seen.extend(got);
            if next.is_empty() {
                break;
            }
            page.after = decode_token(&next);
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn max_results_is_checked() {
        let p = Params::new([("MaxResults".to_owned(), "101".to_owned())]);
        assert!(page(&p, 1..=100, 10).is_err());
        let p = Params::new([("NextToken".to_owned(), "zz".to_owned())]);
        assert_eq!(page(&p, 1..=100, 10).unwrap_err().kind, ErrorKind::InvalidNextToken);
    }
}
