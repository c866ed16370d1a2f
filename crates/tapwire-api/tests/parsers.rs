//! Per-action parsing, through the real dispatch of both dialects on an in-memory control
//! plane: a minimal request gets past its parser; a missing required parameter is
//! `MissingParameter`; and (EC2) a key no parser reads is `UnknownParameter` before
//! anything runs, whatever the action (no parameter is read after execution).

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use tapwire_api::cancel::Cancel;
use tapwire_api::{Api, ApiConfig, alibaba, ec2};
use tapwire_control::ControlConfig;
use tapwire_control::testing;

const F: &str = "tmf-0123456789abcdef0";
const R: &str = "tmfr-0123456789abcdef0";
const S: &str = "tms-0123456789abcdef0";
const T: &str = "tmt-0123456789abcdef0";
const E: &str = "eni-0123456789abcdef0";

/// An action, its minimal request, and the key it cannot do without (if any).
type Row = (&'static str, &'static [(&'static str, &'static str)], Option<&'static str>);

/// Every EC2 action with a minimal request and the key it cannot do without (if any).
const EC2: &[Row] = &[
    ("CreateTrafficMirrorFilter", &[], None),
    (
        "CreateTrafficMirrorFilterRule",
        &[
            ("TrafficMirrorFilterId", F),
            ("TrafficDirection", "ingress"),
            ("RuleNumber", "1"),
            ("RuleAction", "accept"),
            ("SourceCidrBlock", "0.0.0.0/0"),
            ("DestinationCidrBlock", "0.0.0.0/0"),
        ],
        Some("RuleAction"),
    ),
    (
        "CreateTrafficMirrorSession",
        &[
            ("NetworkInterfaceId", E),
            ("TrafficMirrorTargetId", T),
            ("TrafficMirrorFilterId", F),
            ("SessionNumber", "1"),
        ],
        Some("SessionNumber"),
    ),
    ("CreateTrafficMirrorTarget", &[("NetworkInterfaceId", E)], None),
    ("DeleteTrafficMirrorFilter", &[("TrafficMirrorFilterId", F)], Some("TrafficMirrorFilterId")),
    ("DeleteTrafficMirrorFilterRule", &[("TrafficMirrorFilterRuleId", R)], Some("TrafficMirrorFilterRuleId")),
    ("DeleteTrafficMirrorSession", &[("TrafficMirrorSessionId", S)], Some("TrafficMirrorSessionId")),
    ("DeleteTrafficMirrorTarget", &[("TrafficMirrorTargetId", T)], Some("TrafficMirrorTargetId")),
    ("DescribeTrafficMirrorFilters", &[], None),
    ("DescribeTrafficMirrorFilterRules", &[], None),
    ("DescribeTrafficMirrorSessions", &[], None),
    ("DescribeTrafficMirrorTargets", &[], None),
    ("ModifyTrafficMirrorFilterNetworkServices", &[("TrafficMirrorFilterId", F)], Some("TrafficMirrorFilterId")),
    ("ModifyTrafficMirrorFilterRule", &[("TrafficMirrorFilterRuleId", R)], Some("TrafficMirrorFilterRuleId")),
    ("ModifyTrafficMirrorSession", &[("TrafficMirrorSessionId", S)], Some("TrafficMirrorSessionId")),
    ("CreateTags", &[("ResourceId.1", F), ("Tag.1.Key", "k")], Some("ResourceId.1")),
    ("DeleteTags", &[("ResourceId.1", F)], Some("ResourceId.1")),
    ("DescribeTags", &[], None),
    ("DescribeNetworkInterfaces", &[], None),
];

/// Every Alibaba action with a minimal request and the key it cannot do without.
const ALIBABA: &[Row] = &[
    ("OpenTrafficMirrorService", &[], None),
    ("GetTrafficMirrorServiceStatus", &[], None),
    ("CreateTrafficMirrorFilter", &[("RegionId", "cn-hangzhou")], Some("RegionId")),
    (
        "DeleteTrafficMirrorFilter",
        &[("RegionId", "cn-hangzhou"), ("TrafficMirrorFilterId", F)],
        Some("TrafficMirrorFilterId"),
    ),
    (
        "CreateTrafficMirrorFilterRules",
        &[
            ("RegionId", "cn-hangzhou"),
            ("TrafficMirrorFilterId", F),
            ("IngressRules.1.Action", "accept"),
            ("IngressRules.1.Priority", "1"),
            ("IngressRules.1.Protocol", "ALL"),
            ("IngressRules.1.SourceCidrBlock", "0.0.0.0/0"),
            ("IngressRules.1.DestinationCidrBlock", "0.0.0.0/0"),
        ],
        Some("IngressRules.1.Priority"),
    ),
    (
        "DeleteTrafficMirrorFilterRules",
        &[
            ("RegionId", "cn-hangzhou"),
            ("TrafficMirrorFilterId", F),
            ("TrafficMirrorFilterRuleIds.1", "tmr-0123456789abcdef0"),
        ],
        Some("TrafficMirrorFilterRuleIds.1"),
    ),
    (
        "UpdateTrafficMirrorFilterAttribute",
        &[("RegionId", "cn-hangzhou"), ("TrafficMirrorFilterId", F)],
        Some("TrafficMirrorFilterId"),
    ),
    (
        "UpdateTrafficMirrorFilterRuleAttribute",
        &[("RegionId", "cn-hangzhou"), ("TrafficMirrorFilterRuleId", "tmr-0123456789abcdef0")],
        Some("TrafficMirrorFilterRuleId"),
    ),
    ("ListTrafficMirrorFilters", &[("RegionId", "cn-hangzhou")], Some("RegionId")),
    (
        "CreateTrafficMirrorSession",
        &[
            ("RegionId", "cn-hangzhou"),
            ("TrafficMirrorSourceIds.1", E),
            ("TrafficMirrorTargetId", "eni-0123456789abcdef1"),
            ("TrafficMirrorTargetType", "NetworkInterface"),
            ("TrafficMirrorFilterId", F),
            ("Priority", "1"),
        ],
        Some("Priority"),
    ),
    (
        "DeleteTrafficMirrorSession",
        &[("RegionId", "cn-hangzhou"), ("TrafficMirrorSessionId", S)],
        Some("TrafficMirrorSessionId"),
    ),
    (
        "UpdateTrafficMirrorSessionAttribute",
        &[("RegionId", "cn-hangzhou"), ("TrafficMirrorSessionId", S)],
        Some("TrafficMirrorSessionId"),
    ),
    (
        "AddSourcesToTrafficMirrorSession",
        &[("RegionId", "cn-hangzhou"), ("TrafficMirrorSessionId", S), ("TrafficMirrorSourceIds.1", E)],
        Some("TrafficMirrorSourceIds.1"),
    ),
    (
        "RemoveSourcesFromTrafficMirrorSession",
        &[("RegionId", "cn-hangzhou"), ("TrafficMirrorSessionId", S), ("TrafficMirrorSourceIds.1", E)],
        Some("TrafficMirrorSessionId"),
    ),
    ("ListTrafficMirrorSessions", &[("RegionId", "cn-hangzhou")], Some("RegionId")),
    (
        "TagResources",
        &[
            ("RegionId", "cn-hangzhou"),
            ("ResourceType", "TRAFFICMIRRORFILTER"),
            ("ResourceId.1", F),
            ("Tag.1.Key", "k"),
        ],
        Some("ResourceType"),
    ),
    (
        "UnTagResources",
        &[("RegionId", "cn-hangzhou"), ("ResourceType", "TRAFFICMIRRORFILTER"), ("ResourceId.1", F), ("All", "true")],
        Some("ResourceId.1"),
    ),
    (
        "ListTagResources",
        &[("RegionId", "cn-hangzhou"), ("ResourceType", "TRAFFICMIRRORSESSION")],
        Some("ResourceType"),
    ),
    (
        "MoveResourceGroup",
        &[
            ("RegionId", "cn-hangzhou"),
            ("ResourceType", "TrafficMirrorFilter"),
            ("ResourceId", F),
            ("NewResourceGroupId", "rg-1"),
        ],
        Some("NewResourceGroupId"),
    ),
];

/// Codes a parser answers with; anything else means the request got past parsing.
const PARSE_CODES: &[&str] = &[
    "MissingParameter",
    "UnknownParameter",
    "InvalidParameterValue",
    "InvalidParameter",
    "InvalidParameterCombination",
];

fn pairs(params: &[(&str, &str)], action: &str, drop: Option<&str>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        params.iter().filter(|(k, _)| Some(*k) != drop).map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    out.push(("Action".into(), action.into()));
    out
}

fn ec2_code(api: &Api, pairs: Vec<(String, String)>) -> Option<String> {
    let caller = ec2::Caller::root("us-east-1");
    let reply = ec2::handle(api, &caller, ec2::params::Params::new(pairs), "rid", &Cancel::default());
    let body = reply.body;
    let a = body.find("<Code>")? + 6;
    Some(body[a..a + body[a..].find('<')?].to_owned())
}

fn alibaba_code(api: &Api, action: &str, pairs: Vec<(String, String)>) -> Option<String> {
    let caller = alibaba::Caller::root();
    let reply = alibaba::handle(api, &caller, action, alibaba::params::Params::new(pairs), "rid");
    let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    v["Code"].as_str().map(str::to_owned)
}

fn api() -> Api {
    Api::unauthenticated(testing::control(5, ControlConfig::default()), ApiConfig::default())
}

#[test]
fn every_ec2_action_parses_refuses_missing_and_unknown_parameters() {
    let api = api();
    let names: Vec<&str> = ec2::action_names().collect();
    assert_eq!(names.len(), EC2.len(), "a new action needs a row here");
    for (action, params, required) in EC2 {
        assert!(names.contains(action), "{action}");
        let code = ec2_code(&api, pairs(params, action, None));
        assert!(code.as_deref().is_none_or(|c| !PARSE_CODES.contains(&c)), "{action}: minimal request: {code:?}");
        if let Some(key) = required {
            let code = ec2_code(&api, pairs(params, action, Some(key)));
            assert_eq!(code.as_deref(), Some("MissingParameter"), "{action} without {key}");
        }
        let before = api.control.read().revision;
        let mut bogus = pairs(params, action, None);
        bogus.push(("Bogus".into(), "1".into()));
        assert_eq!(ec2_code(&api, bogus).as_deref(), Some("UnknownParameter"), "{action}");
        assert_eq!(api.control.read().revision, before, "{action}: an unknown parameter still wrote");
    }
}

#[test]
fn every_alibaba_action_parses_and_refuses_missing_parameters() {
    let api = api();
    let names: Vec<&str> = alibaba::action_names().collect();
    assert_eq!(names.len(), ALIBABA.len(), "a new action needs a row here");
    for (action, params, required) in ALIBABA {
        assert!(names.contains(action), "{action}");
        let code = alibaba_code(&api, action, pairs(params, action, None));
        assert!(code.as_deref().is_none_or(|c| !PARSE_CODES.contains(&c)), "{action}: minimal request: {code:?}");
        if let Some(key) = required {
            let code = alibaba_code(&api, action, pairs(params, action, Some(key)));
            assert_eq!(code.as_deref(), Some("MissingParameter"), "{action} without {key}");
        }
    }
}
