//! Tags on every taggable resource, and Alibaba's resource groups.
//!
//! Tag rules are the caller's dialect's: EC2 allows 50 tags, keys of 127 characters and
//! reserves `aws:`; Alibaba allows 20, keys and values of 128 characters, reserves
//! `aliyun` and `acs:`, and forbids URL schemes in keys and values. Keys under
//! `tapwire:` are tapwire's own: a session's sampling and caps, checked here.

use std::collections::BTreeSet;

use tapwire_model::limits::{alibaba_tags, ec2_tags};
use tapwire_model::resource::{Filter, FilterRule, NetworkInterface, Session, Tag, Tags, Target, upsert_tag};
use tapwire_model::sampling::{self, SessionLimits};

use super::Planner;
use crate::dialect::Dialect;
use crate::error::{ApiError, ErrorKind};
use crate::ops::{Output, ResourceRef, TagSelector};
use crate::state::Change;

/// A dialect's tag rules.
struct TagRules {
    per_resource: usize,
    key_max_chars: usize,
    value_max_chars: usize,
    reserved_prefixes: &'static [&'static str],
    /// Alibaba: neither key nor value may contain a URL scheme.
    forbid_urls: bool,
}

impl TagRules {
    fn of(dialect: Dialect) -> Self {
        match dialect {
            Dialect::Alibaba => TagRules {
                per_resource: alibaba_tags::PER_RESOURCE,
                key_max_chars: alibaba_tags::KEY_MAX_CHARS,
                value_max_chars: alibaba_tags::VALUE_MAX_CHARS,
                reserved_prefixes: alibaba_tags::RESERVED_PREFIXES,
                forbid_urls: true,
            },
            Dialect::Ec2 | Dialect::Tapwire => TagRules {
                per_resource: ec2_tags::PER_RESOURCE,
                key_max_chars: ec2_tags::KEY_MAX_CHARS,
                value_max_chars: ec2_tags::VALUE_MAX_CHARS,
                reserved_prefixes: &[ec2_tags::RESERVED_PREFIX],
                forbid_urls: false,
            },
        }
    }
}

impl Planner<'_> {
    pub(super) fn create_tags(&mut self, resources: Vec<ResourceRef>, tags: Vec<Tag>) -> Result<Output, ApiError> {
        let mut planned = Vec::with_capacity(resources.len());
        for r in dedup(resources) {
            let tagged = if matches!(r, ResourceRef::Session(_)) { Tagged::Session } else { Tagged::Other };
            planned.push((r, self.merged_tags(self.tags_of(r)?, tags.clone(), tagged)?));
        }
        for (r, t) in planned {
            self.put_tags(r, t)?;
        }
        Ok(Output::Done)
    }

    pub(super) fn delete_tags(
        &mut self,
        resources: Vec<ResourceRef>,
        selectors: Vec<TagSelector>,
    ) -> Result<Output, ApiError> {
        let mut planned = Vec::with_capacity(resources.len());
        for r in dedup(resources) {
            let mut tags = self.tags_of(r)?;
            if selectors.is_empty() {
                tags.clear();
            } else {
                tags.retain(|t| {
                    !selectors.iter().any(|s| s.key == t.key && s.value.as_ref().is_none_or(|v| *v == t.value))
                });
            }
            planned.push((r, tags));
        }
        for (r, t) in planned {
            self.put_tags(r, t)?;
        }
        Ok(Output::Done)
    }

    pub(super) fn move_resource_group(
        &mut self,
        resource: ResourceRef,
        resource_group: String,
    ) -> Result<Output, ApiError> {
        let change = match resource {
            ResourceRef::Filter(id) => {
                Change::PutFilter(Filter { resource_group: Some(resource_group), ..self.filter(id)?.clone() })
            }
            ResourceRef::Session(id) => {
                Change::PutSession(Session { resource_group: Some(resource_group), ..self.session(id)?.clone() })
            }
            ResourceRef::Rule(_) | ResourceRef::Target(_) | ResourceRef::Interface(_) => {
                return Err(ApiError::invalid("Only filters and sessions belong to resource groups."));
            }
        };
        self.changes.push(change);
        Ok(Output::Done)
    }

    fn tags_of(&self, r: ResourceRef) -> Result<Tags, ApiError> {
        Ok(match r {
            ResourceRef::Filter(id) => self.filter(id)?.tags.clone(),
            ResourceRef::Rule(id) => self.rule(id)?.tags.clone(),
            ResourceRef::Session(id) => self.session(id)?.tags.clone(),
            ResourceRef::Target(id) => self.target(id)?.tags.clone(),
            ResourceRef::Interface(id) => self.interface(id)?.tags.clone(),
        })
    }

    fn put_tags(&mut self, r: ResourceRef, tags: Tags) -> Result<(), ApiError> {
        let change = match r {
            ResourceRef::Filter(id) => Change::PutFilter(Filter { tags, ..self.filter(id)?.clone() }),
            ResourceRef::Rule(id) => Change::PutRule(FilterRule { tags, ..self.rule(id)?.clone() }),
            ResourceRef::Session(id) => Change::PutSession(Session { tags, ..self.session(id)?.clone() }),
            ResourceRef::Target(id) => Change::PutTarget(Target { tags, ..self.target(id)?.clone() }),
            ResourceRef::Interface(id) => {
                Change::PutInterface(NetworkInterface { tags, ..self.interface(id)?.clone() })
            }
        };
        self.changes.push(change);
        Ok(())
    }

    /// `existing` with `new` upserted, checked against the caller's dialect's tag rules
    /// and tapwire's reserved keys.
    pub(super) fn merged_tags(&self, mut existing: Tags, new: Vec<Tag>, tagged: Tagged) -> Result<Tags, ApiError> {
        let rules = TagRules::of(self.dialect);
        let reserved_new: Vec<Tag> =
            new.iter().filter(|t| t.key.starts_with(sampling::RESERVED_PREFIX)).cloned().collect();
        let has_url = |s: &str| rules.forbid_urls && (s.contains("http://") || s.contains("https://"));
        for t in new {
            if t.key.is_empty() || t.key.chars().count() > rules.key_max_chars {
                return Err(ApiError::new(
                    ErrorKind::InvalidTagKey,
                    format!("Tag keys must be 1 to {} characters long.", rules.key_max_chars),
                ));
            }
            if let Some(prefix) = rules.reserved_prefixes.iter().find(|p| t.key.starts_with(**p)) {
                return Err(ApiError::new(
                    ErrorKind::InvalidTagKey,
                    format!("Tag keys starting with '{prefix}' are reserved."),
                ));
            }
            if has_url(&t.key) {
                return Err(ApiError::new(ErrorKind::InvalidTagKey, "Tag keys must not contain http:// or https://."));
            }
            if t.value.chars().count() > rules.value_max_chars || has_url(&t.value) {
                return Err(ApiError::invalid(format!(
                    "Tag values must be at most {} characters long and contain no http:// or https://.",
                    rules.value_max_chars
                )));
            }
            upsert_tag(&mut existing, t);
        }
        if existing.len() > rules.per_resource {
            return Err(ApiError::new(
                ErrorKind::TagLimitExceeded,
                format!("A resource can have at most {} tags.", rules.per_resource),
            ));
        }
        check_reserved(tagged, &reserved_new, &existing)?;
        Ok(existing)
    }
}

/// What a set of tags belongs to, for tapwire's reserved keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tagged {
    /// A session: its `tapwire:` keys are its sampling and caps.
    Session,
    /// Anything else: `tapwire:` keys are refused.
    Other,
}

/// tapwire's reserved keys (`tapwire:`): on a session, its sampling and caps, whose
/// values must parse ([`SessionLimits`]); on any other resource, refused.
fn check_reserved(tagged: Tagged, new: &[Tag], merged: &Tags) -> Result<(), ApiError> {
    if tagged == Tagged::Session {
        return SessionLimits::from_tags(merged).map(drop).map_err(ApiError::invalid);
    }
    match new.iter().find(|t| t.key.starts_with(sampling::RESERVED_PREFIX)) {
        Some(t) => Err(ApiError::invalid(format!("The tag key {} applies to traffic mirror sessions only.", t.key))),
        None => Ok(()),
    }
}

fn dedup(resources: Vec<ResourceRef>) -> Vec<ResourceRef> {
    let mut seen = BTreeSet::new();
    resources.into_iter().filter(|r| seen.insert(*r)).collect()
}
