//! An IAM-style policy language, the subset an operator of traffic mirroring needs.
//!
//! ```json
//! { "Version": "2012-10-17",
//!   "Statement": [
//!     { "Effect": "Allow", "Action": ["ec2:Describe*", "vpc:List*"], "Resource": "*" },
//!     { "Effect": "Allow", "Action": "ec2:ModifyTrafficMirrorSession",
//!       "Resource": "arn:aws:ec2:*:*:traffic-mirror-session/*",
//!       "Condition": { "StringEquals": { "aws:ResourceTag/team": "netsec" } } },
//!     { "Effect": "Deny", "Action": "ec2:Delete*", "Resource": "*" } ] }
//! ```
//!
//! - `Statement` is a list (or one object); each has `Effect` (`Allow`/`Deny`), `Action`
//!   and `Resource` (a string or a list; `*` and `?` are wildcards; actions compare without
//!   case, resources with), an optional `Sid`, and an optional `Condition` with
//!   `StringEquals` or `StringLike` on `aws:ResourceTag/KEY` (`acs:ResourceTag/KEY` is the
//!   same key), a value or a list of values.
//! - A request is an action and the resources it touches (each an ARN with its tags; `*`
//!   for actions with no resource, such as Describe). It is allowed when every resource
//!   has an `Allow` statement matching it and no resource has a matching `Deny`: an
//!   explicit deny wins, and anything not allowed is denied.
//! - Anything else in a document is refused with a message naming the part.

use serde_json::Value;

use tapwire_model::wildcard::matches;

/// A checked policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
    /// (key, patterns, like): all must hold.
    conditions: Vec<(String, Vec<String>, bool)>,
}

/// A resource a request touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Its ARN, or `*` for actions with no resource.
    pub arn: String,
    /// Its tags (key, value), when it exists.
    pub tags: Vec<(String, String)>,
}

/// What a policy says of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Every resource is allowed and none denied.
    Allow,
    /// A statement denies it.
    ExplicitDeny,
    /// Nothing allows it.
    ImplicitDeny,
}

/// Why a document is not a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(String);

fn bad(at: &str, what: impl std::fmt::Display) -> PolicyError {
    PolicyError(format!("{at}: {what}"))
}

fn strings(v: &Value, at: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                _ => Err(bad(&format!("{at}[{i}]"), "must be a non-empty string")),
            })
            .collect(),
        _ => Err(bad(at, "must be a non-empty string or a list of them")),
    }
}

/// The tag key of a condition key, if it is one this language knows.
fn tag_key(key: &str) -> Option<&str> {
    key.strip_prefix("aws:ResourceTag/").or_else(|| key.strip_prefix("acs:ResourceTag/")).filter(|k| !k.is_empty())
}

fn statement(v: &Value, at: &str) -> Result<Statement, PolicyError> {
    let obj = v.as_object().ok_or_else(|| bad(at, "must be an object"))?;
    for key in obj.keys() {
        if !matches!(key.as_str(), "Sid" | "Effect" | "Action" | "Resource" | "Condition") {
            return Err(bad(
                &format!("{at}.{key}"),
                "is not supported (Sid, Effect, Action, Resource and Condition are)",
            ));
        }
    }
    let allow = match obj.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => true,
        Some(Value::String(e)) if e == "Deny" => false,
        Some(other) => return Err(bad(&format!("{at}.Effect"), format!("must be Allow or Deny, not {other}"))),
        None => return Err(bad(&format!("{at}.Effect"), "is missing")),
    };
    let actions =
        strings(obj.get("Action").ok_or_else(|| bad(&format!("{at}.Action"), "is missing"))?, &format!("{at}.Action"))?;
    for (i, a) in actions.iter().enumerate() {
        if a != "*" && !a.contains(':') {
            return Err(bad(&format!("{at}.Action[{i}]"), format!("'{a}' must be SERVICE:ACTION, e.g. ec2:Describe*")));
        }
    }
    let resources = strings(
        obj.get("Resource").ok_or_else(|| bad(&format!("{at}.Resource"), "is missing"))?,
        &format!("{at}.Resource"),
    )?;
    for (i, r) in resources.iter().enumerate() {
        if r != "*" && !(r.starts_with("arn:") || r.starts_with("acs:")) {
            return Err(bad(&format!("{at}.Resource[{i}]"), format!("'{r}' must be * or an ARN (arn:… or acs:…)")));
        }
    }
    let mut conditions = Vec::new();
    if let Some(cond) = obj.get("Condition") {
        let ops = cond.as_object().ok_or_else(|| bad(&format!("{at}.Condition"), "must be an object"))?;
        for (op, keys) in ops {
            let like = match op.as_str() {
                "StringEquals" => false,
                "StringLike" => true,
                _ => {
                    return Err(bad(
                        &format!("{at}.Condition.{op}"),
                        "is not supported (StringEquals and StringLike are)",
                    ));
                }
            };
            let keys = keys.as_object().ok_or_else(|| bad(&format!("{at}.Condition.{op}"), "must be an object"))?;
            for (key, values) in keys {
                let tag = tag_key(key).ok_or_else(|| {
                    bad(&format!("{at}.Condition.{op}.{key}"), "is not supported (aws:ResourceTag/KEY is)")
                })?;
                conditions.push((tag.to_owned(), strings(values, &format!("{at}.Condition.{op}.{key}"))?, like));
            }
        }
    }
    Ok(Statement { allow, actions, resources, conditions })
}

impl Policy {
    /// Parses and checks a policy document.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| PolicyError(format!("the policy is not JSON: {e}")))?;
        let obj = doc.as_object().ok_or_else(|| PolicyError("the policy must be a JSON object".into()))?;
        for key in obj.keys() {
            if !matches!(key.as_str(), "Version" | "Statement" | "Id") {
                return Err(bad(key, "is not supported (Version and Statement are)"));
            }
        }
        match obj.get("Version") {
            None => {}
            Some(Value::String(v)) if v == "2012-10-17" || v == "1" => {}
            Some(other) => return Err(bad("Version", format!("must be 2012-10-17 (or Alibaba's 1), not {other}"))),
        }
        let statements = match obj.get("Statement") {
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, s)| statement(s, &format!("Statement[{i}]")))
                .collect::<Result<_, _>>()?,
            Some(single @ Value::Object(_)) => vec![statement(single, "Statement")?],
            Some(_) => return Err(bad("Statement", "must be a non-empty list of statements")),
            None => return Err(bad("Statement", "is missing")),
        };
        Ok(Self { statements })
    }

    /// What the policy says of `action` on `resources` (none: the action names no
    /// resource, checked as `*`).
    pub fn decide(&self, action: &str, resources: &[Resource]) -> Decision {
        let any = [Resource { arn: "*".into(), tags: Vec::new() }];
        let resources = if resources.is_empty() { &any[..] } else { resources };
        let action = action.to_ascii_lowercase();
        let applies = |s: &Statement, r: &Resource| {
            s.actions.iter().any(|p| matches(&p.to_ascii_lowercase(), &action))
                && s.resources.iter().any(|p| matches(p, &r.arn))
                && s.conditions.iter().all(|(key, patterns, like)| {
                    r.tags
                        .iter()
                        .any(|(k, v)| k == key && patterns.iter().any(|p| if *like { matches(p, v) } else { p == v }))
                })
        };
        let mut all_allowed = true;
        for r in resources {
            if self.statements.iter().any(|s| !s.allow && applies(s, r)) {
                return Decision::ExplicitDeny;
            }
            all_allowed &= self.statements.iter().any(|s| s.allow && applies(s, r));
        }
        if all_allowed { Decision::Allow } else { Decision::ImplicitDeny }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(arn: &str, tags: &[(&str, &str)]) -> Resource {
        Resource { arn: arn.into(), tags: tags.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect() }
    }

    #[test]
    fn read_only_allows_describes_only() {
        let p = Policy::parse(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:Describe*","vpc:List*"],"Resource":"*"}]}"#).unwrap();
        assert_eq!(p.decide("ec2:DescribeTrafficMirrorSessions", &[]), Decision::Allow);
        assert_eq!(p.decide("EC2:describetraffiCmirrorsessions", &[]), Decision::Allow);
        assert_eq!(p.decide("vpc:ListTrafficMirrorFilters", &[]), Decision::Allow);
        assert_eq!(p.decide("ec2:CreateTrafficMirrorFilter", &[]), Decision::ImplicitDeny);
    }

    #[test]
    fn explicit_deny_wins_and_tags_condition() {
        let p = Policy::parse(
            r#"{"Statement":[
              {"Effect":"Allow","Action":"ec2:*","Resource":"arn:aws:ec2:*:*:traffic-mirror-session/*",
               "Condition":{"StringEquals":{"aws:ResourceTag/team":["netsec","ops"]}}},
              {"Effect":"Deny","Action":"ec2:DeleteTrafficMirrorSession","Resource":"*"}]}"#,
        )
        .unwrap();
        let mine = res("arn:aws:ec2:us-east-1:123456789012:traffic-mirror-session/tms-1", &[("team", "netsec")]);
        let theirs = res("arn:aws:ec2:us-east-1:123456789012:traffic-mirror-session/tms-2", &[("team", "web")]);
        assert_eq!(p.decide("ec2:ModifyTrafficMirrorSession", std::slice::from_ref(&mine)), Decision::Allow);
        assert_eq!(p.decide("ec2:ModifyTrafficMirrorSession", std::slice::from_ref(&theirs)), Decision::ImplicitDeny);
        assert_eq!(p.decide("ec2:ModifyTrafficMirrorSession", &[mine.clone(), theirs]), Decision::ImplicitDeny);
        assert_eq!(p.decide("ec2:DeleteTrafficMirrorSession", &[mine]), Decision::ExplicitDeny);
    }

    #[test]
    fn bad_documents_name_the_bad_part() {
        let cases = [
            ("not json", "not JSON"),
            (r#"{"Statement":[{"Effect":"allow","Action":"ec2:*","Resource":"*"}]}"#, "Statement[0].Effect"),
            (r#"{"Statement":[{"Effect":"Allow","Action":"Describe","Resource":"*"}]}"#, "Statement[0].Action[0]"),
            (r#"{"Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"tms-1"}]}"#, "Statement[0].Resource[0]"),
            (r#"{"Statement":[{"Effect":"Allow","Action":"ec2:*"}]}"#, "Statement[0].Resource"),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*","NotAction":"x"}]}"#,
                "Statement[0].NotAction",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*","Condition":{"IpAddress":{}}}]}"#,
                "Condition.IpAddress",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*","Condition":{"StringEquals":{"aws:SourceIp":"x"}}}]}"#,
                "aws:SourceIp",
            ),
            (r#"{"Version":"2008-10-17","Statement":[]}"#, "Version"),
            (r#"{"Statement":[]}"#, "Statement"),
        ];
        for (doc, part) in cases {
            let err = Policy::parse(doc).unwrap_err().to_string();
            assert!(err.contains(part), "{doc}: {err}");
        }
    }
}
