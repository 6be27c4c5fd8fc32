//! Which groups the poller manages: the enabled groups (tag `lambda-autoscaler:enabled=true`)
//! that a policy group selects, by name or by tags.

use std::collections::BTreeSet;

use crate::GroupInfo;
use crate::policy::{PolicyDocument, Query, Selector};
use crate::tags::PAUSED_TAG;

#[derive(Clone, Debug, PartialEq)]
pub struct ManagedGroup {
    pub info: GroupInfo,
    /// Index of the policy group that selected it (the first that matches).
    pub policy_index: usize,
    pub paused: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Discovery {
    pub managed: Vec<ManagedGroup>,
    /// Groups the policy names that are not among the enabled ones (not tagged, or absent).
    pub named_but_not_enabled: Vec<String>,
}

/// A managed group's metric's GetMetricData query id, which must match
/// `^[a-z][a-zA-Z0-9_]*$`: the group's index among the managed, then the metric's id.
pub fn query_id(group_index: usize, metric_id: &str) -> String {
    format!("g{group_index}_{metric_id}")
}

impl Discovery {
    /// Every metric of every managed group, by [`query_id`].
    pub fn queries(&self, document: &PolicyDocument) -> Vec<(String, Query)> {
        self.managed
            .iter()
            .enumerate()
            .flat_map(|(gi, managed)| {
                document.groups[managed.policy_index]
                    .metrics
                    .iter()
                    .map(move |metric| (query_id(gi, &metric.id), metric.query.clone()))
            })
            .collect()
    }
}

fn selects(selector: &Selector, group: &GroupInfo) -> bool {
    match selector {
        Selector::Name(name) => *name == group.name,
        Selector::Tags(tags) => tags.iter().all(|(k, v)| group.tags.get(k) == Some(v)),
    }
}

pub fn discover(document: &PolicyDocument, enabled: Vec<GroupInfo>) -> Discovery {
    let names: BTreeSet<&str> = enabled.iter().map(|g| g.name.as_str()).collect();
    let named_but_not_enabled = document
        .groups
        .iter()
        .filter_map(|g| match &g.selector {
            Selector::Name(name) if !names.contains(name.as_str()) => Some(name.clone()),
            _ => None,
        })
        .collect();
    let managed = enabled
        .into_iter()
        .filter_map(|info| {
            let policy_index = document.groups.iter().position(|p| selects(&p.selector, &info))?;
            let paused = info.tags.get(PAUSED_TAG).is_some_and(|v| v.eq_ignore_ascii_case("true"));
            Some(ManagedGroup { info, policy_index, paused })
        })
        .collect();
    Discovery { managed, named_but_not_enabled }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::policy::{PolicyFormat, parse_policy_text};

    fn group(name: &str, tags: &[(&str, &str)]) -> GroupInfo {
        GroupInfo {
            name: name.into(),
            min_size: 0,
            max_size: 10,
            desired_capacity: 1,
            pending_instances: 0,
            in_service_instances: 0,
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn selects_by_name_then_tags_and_reports_named_groups_not_enabled() {
        let metric =
            r#"{"id": "m", "query": {"namespace": "N", "metric_name": "M"}, "target": {"average": 1}}"#;
        let doc = parse_policy_text(
            &format!(
                r#"{{"groups": [{{"name": "api", "metrics": [{metric}]}}, {{"name": "gone", "metrics": [{metric}]}},
                    {{"tags": {{"team": "web"}}, "metrics": [{metric}]}}]}}"#
            ),
            PolicyFormat::Json,
        )
        .unwrap();
        let found = discover(
            &doc,
            vec![
                group("api", &[("team", "web")]),
                group("web-1", &[("team", "web"), (PAUSED_TAG, "true")]),
                group("batch", &[("team", "batch")]),
            ],
        );
        let managed: Vec<(&str, usize, bool)> =
            found.managed.iter().map(|m| (m.info.name.as_str(), m.policy_index, m.paused)).collect();
        assert_eq!(managed, [("api", 0, false), ("web-1", 2, true)]);
        assert_eq!(found.named_but_not_enabled, ["gone"]);
    }
}
