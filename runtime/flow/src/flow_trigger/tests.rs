#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;

/// The Flow triggers of a flow whose `triggers:` list is `triggers` (YAML, indented by 2).
fn triggers(triggers: &str) -> Vec<FlowTrigger> {
    let yaml = format!(
        "id: listener\nnamespace: n\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    \
         message: hi\ntriggers:\n{triggers}"
    );
    let flow = crate::parse_flow(&yaml, &crate::Registry::core())
        .unwrap_or_else(|d| panic!("{d:?}"))
        .flow;
    flow.triggers
        .iter()
        .map(|t| FlowTrigger::from_trigger(t).unwrap().unwrap())
        .collect()
}

fn one(trigger: &str) -> FlowTrigger {
    triggers(trigger).remove(0)
}

struct Exec {
    id: String,
    namespace: String,
    flow_id: String,
    state: String,
    labels: Vec<Label>,
    outputs: Option<Map<String, Json>>,
    context: Json,
    now: DateTime<Utc>,
}

fn exec(id: &str, namespace: &str, flow_id: &str, state: &str) -> Exec {
    Exec {
        id: id.into(),
        namespace: namespace.into(),
        flow_id: flow_id.into(),
        state: state.into(),
        labels: Vec::new(),
        outputs: None,
        context: json!({"outputs": {"only": {"value": format!("from {id}")}}, "labels": {}}),
        now: "2024-03-01T10:00:00Z".parse().unwrap(),
    }
}

impl Exec {
    fn src(&self) -> Source<'_> {
        Source {
            execution_id: &self.id,
            termination: 4,
            namespace: &self.namespace,
            flow_id: &self.flow_id,
            flow_revision: 3,
            state: &self.state,
            labels: &self.labels,
            outputs: self.outputs.as_ref(),
            context: &self.context,
            now: self.now,
        }
    }
}

fn r() -> Renderer {
    Renderer::new()
}

#[test]
fn only_flow_triggers_are_parsed() {
    let t: Trigger = serde_json::from_value(json!({
        "id": "s", "type": "io.kestra.plugin.core.trigger.Schedule", "cron": "* * * * *"
    }))
    .unwrap();
    assert!(FlowTrigger::from_trigger(&t).unwrap().is_none());
    let legacy: Trigger = serde_json::from_value(json!({
        "id": "f", "type": "io.kestra.core.models.triggers.types.Flow"
    }))
    .unwrap();
    let ft = FlowTrigger::from_trigger(&legacy).unwrap().unwrap();
    // no condition: every terminated execution
    assert!(
        ft.matches(&exec("E", "a.b", "x", "KILLED").src(), &r())
            .unwrap()
    );
    assert!(!ft.is_stateful());
}

#[test]
fn status_and_flow_conditions_must_all_hold() {
    let t = one(
        "  - id: listen\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n      \
         - type: io.kestra.plugin.core.condition.ExecutionStatus\n        in: [SUCCESS]\n      \
         - type: io.kestra.core.models.conditions.types.ExecutionFlowCondition\n        \
         namespace: up\n        flowId: src\n",
    );
    let r = r();
    assert!(
        t.matches(&exec("E", "up", "src", "SUCCESS").src(), &r)
            .unwrap()
    );
    assert!(
        !t.matches(&exec("E", "up", "src", "FAILED").src(), &r)
            .unwrap()
    );
    assert!(
        !t.matches(&exec("E", "up", "other", "SUCCESS").src(), &r)
            .unwrap()
    );
    assert!(
        !t.matches(&exec("E", "up.sub", "src", "SUCCESS").src(), &r)
            .unwrap()
    );
}

#[test]
fn trigger_states_and_not_in() {
    let t = one(
        "  - id: listen\n    type: io.kestra.plugin.core.trigger.Flow\n    states: [FAILED, WARNING]\n    \
         conditions:\n      - type: io.kestra.plugin.core.condition.ExecutionStatus\n        \
         notIn: [WARNING]\n",
    );
    let r = r();
    assert!(t.matches(&exec("E", "a", "b", "FAILED").src(), &r).unwrap());
    assert!(
        !t.matches(&exec("E", "a", "b", "WARNING").src(), &r)
            .unwrap()
    );
    assert!(
        !t.matches(&exec("E", "a", "b", "SUCCESS").src(), &r)
            .unwrap()
    );
}

#[test]
fn namespace_comparisons() {
    let t = triggers(
        "  - id: eq\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n      \
         - type: io.kestra.plugin.core.condition.ExecutionNamespace\n        namespace: com.acme\n  \
         - id: prefix\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n      \
         - type: io.kestra.plugin.core.condition.ExecutionNamespace\n        namespace: com.acme\n        \
         comparison: PREFIX\n  \
         - id: legacy\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n      \
         - type: io.kestra.core.models.conditions.types.ExecutionNamespaceCondition\n        \
         namespace: com.acme\n        prefix: true\n  \
         - id: suffix\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n      \
         - type: io.kestra.plugin.core.condition.ExecutionNamespace\n        namespace: .prod\n        \
         comparison: SUFFIX\n",
    );
    let r = r();
    let sub = exec("E", "com.acme.prod", "f", "SUCCESS");
    let got: Vec<bool> = t
        .iter()
        .map(|t| t.matches(&sub.src(), &r).unwrap())
        .collect();
    assert_eq!(got, [false, true, true, true]);
    let same = exec("E", "com.acme", "f", "SUCCESS");
    let got: Vec<bool> = t
        .iter()
        .map(|t| t.matches(&same.src(), &r).unwrap())
        .collect();
    assert_eq!(got, [true, true, true, false]);
}

#[test]
fn expression_labels_not_and_or() {
    let t = one(
        "  - id: listen\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n      \
         - type: io.kestra.plugin.core.condition.Expression\n        \
         expression: \"{{ outputs.only.value == 'from E1' }}\"\n      \
         - type: io.kestra.plugin.core.condition.ExecutionLabels\n        labels:\n          team: a\n      \
         - type: io.kestra.plugin.core.condition.Not\n        conditions:\n          \
         - type: io.kestra.plugin.core.condition.ExecutionStatus\n            in: [FAILED]\n",
    );
    let r = r();
    let mut e = exec("E1", "a", "b", "SUCCESS");
    assert!(!t.matches(&e.src(), &r).unwrap(), "the label is missing");
    e.labels.push(Label {
        key: "team".into(),
        value: "a".into(),
    });
    assert!(t.matches(&e.src(), &r).unwrap());
    e.state = "FAILED".into();
    assert!(!t.matches(&e.src(), &r).unwrap(), "Not");
    let mut other = exec("E2", "a", "b", "SUCCESS");
    other.labels = e.labels.clone();
    assert!(!t.matches(&other.src(), &r).unwrap(), "the expression");
}

#[test]
fn an_unsupported_condition_parses_but_does_not_fire() {
    let t = one(
        "  - id: listen\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n      \
         - type: io.kestra.plugin.core.condition.Weekend\n",
    );
    let err = t
        .matches(&exec("E", "a", "b", "SUCCESS").src(), &r())
        .unwrap_err();
    assert!(
        err.contains("io.kestra.plugin.core.condition.Weekend"),
        "{err}"
    );
}

fn multiple() -> FlowTrigger {
    one(
        "  - id: multiple-listen-flow\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n      \
         - type: io.kestra.plugin.core.condition.ExecutionStatus\n        in: [SUCCESS]\n      \
         - id: multiple\n        type: io.kestra.plugin.core.condition.MultipleCondition\n        \
         window: P1D\n        windowAdvance: P0D\n        conditions:\n          \
         flow-a:\n            type: io.kestra.plugin.core.condition.ExecutionFlow\n            \
         namespace: n\n            flowId: a\n          \
         flow-b:\n            type: io.kestra.plugin.core.condition.ExecutionFlow\n            \
         namespace: n\n            flowId: b\n",
    )
}

#[test]
fn a_multiple_condition_fires_once_every_named_condition_was_met() {
    let t = multiple();
    assert!(t.is_stateful());
    let r = r();
    let mut st = FlowTriggerState::default();
    let a = exec("A1", "n", "a", "SUCCESS");
    assert!(t.matches(&a.src(), &r).unwrap());
    assert!(!t.record(&mut st, &a.src(), &r).unwrap());
    // a again: still waits for b
    let a2 = exec("A2", "n", "a", "SUCCESS");
    assert!(!t.record(&mut st, &a2.src(), &r).unwrap());
    let b = exec("B1", "n", "b", "SUCCESS");
    assert!(t.record(&mut st, &b.src(), &r).unwrap());
    // reset: b alone does not fire again
    let b2 = exec("B2", "n", "b", "SUCCESS");
    assert!(!t.record(&mut st, &b2.src(), &r).unwrap());
    // the same execution handled twice: counted once, fires again only if it fired
    assert!(t.record(&mut st, &b.src(), &r).unwrap());
    assert!(!t.record(&mut st, &b2.src(), &r).unwrap());
    // the state survives a round trip through JSON
    let text = serde_json::to_string(&st).unwrap();
    assert_eq!(serde_json::from_str::<FlowTriggerState>(&text).unwrap(), st);
}

#[test]
fn results_of_an_earlier_window_do_not_count() {
    let t = multiple();
    let r = r();
    let mut st = FlowTriggerState::default();
    let a = exec("A1", "n", "a", "SUCCESS");
    assert!(!t.record(&mut st, &a.src(), &r).unwrap());
    let mut b = exec("B1", "n", "b", "SUCCESS");
    b.now = "2024-03-02T00:00:01Z".parse().unwrap();
    assert!(!t.record(&mut st, &b.src(), &r).unwrap(), "a was yesterday");
    let mut a2 = exec("A2", "n", "a", "SUCCESS");
    a2.now = "2024-03-02T08:00:00Z".parse().unwrap();
    assert!(t.record(&mut st, &a2.src(), &r).unwrap());
}

#[test]
fn without_reset_each_contributing_execution_fires_again() {
    let t = one(
        "  - id: listen\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      \
         id: p\n      resetOnSuccess: false\n      timeWindow:\n        type: SLIDING_WINDOW\n        \
         window: PT1H\n      flows:\n        - namespace: n\n          flowId: a\n        \
         - namespace: n\n          flowId: b\n",
    );
    let r = r();
    let mut st = FlowTriggerState::default();
    assert!(
        !t.record(&mut st, &exec("A1", "n", "a", "SUCCESS").src(), &r)
            .unwrap()
    );
    assert!(
        t.record(&mut st, &exec("B1", "n", "b", "SUCCESS").src(), &r)
            .unwrap()
    );
    assert!(
        t.record(&mut st, &exec("B2", "n", "b", "SUCCESS").src(), &r)
            .unwrap()
    );
    // an execution that meets nothing does not fire
    assert!(
        !t.record(&mut st, &exec("C1", "n", "c", "SUCCESS").src(), &r)
            .unwrap()
    );
    // over an hour later, a is no longer in the sliding window
    let mut late = exec("B3", "n", "b", "SUCCESS");
    late.now = "2024-03-01T11:30:00Z".parse().unwrap();
    assert!(!t.record(&mut st, &late.src(), &r).unwrap());
}

#[test]
fn preconditions_flows_and_where_filters() {
    let t = one(
        "  - id: flow\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: flow\n      \
         flows:\n        - namespace: n.pre\n          flowId: a\n          states: [SUCCESS, FAILED]\n        \
         - namespace: n.pre\n          flowId: b\n      \
         where:\n        - id: labelled\n          filters:\n            \
         - field: NAMESPACE\n              type: STARTS_WITH\n              value: n.\n            \
         - field: EXPRESSION\n              type: IS_TRUE\n              value: \"{{ labels.some == 'label' }}\"\n        \
         - id: either\n          operand: OR\n          filters:\n            \
         - field: FLOW_ID\n              type: IN\n              values: [x, b]\n            \
         - field: STATE\n              type: EQUAL_TO\n              value: WARNING\n",
    );
    let r = r();
    let mut st = FlowTriggerState::default();
    let mut a = exec("A1", "n.pre", "a", "FAILED");
    a.context = json!({"labels": {"some": "label"}});
    assert!(!t.record(&mut st, &a.src(), &r).unwrap());
    // b FAILED meets only `either`: flows[1] wants SUCCESS
    let b_failed = exec("B0", "n.pre", "b", "FAILED");
    assert!(!t.record(&mut st, &b_failed.src(), &r).unwrap());
    let b = exec("B1", "n.pre", "b", "SUCCESS");
    assert!(t.record(&mut st, &b.src(), &r).unwrap());
    let w = &st.windows["flow"];
    assert!(w.results.is_empty(), "reset on success");
}

#[test]
fn bad_preconditions_are_errors() {
    let t: Trigger = serde_json::from_value(json!({
        "id": "f", "type": FLOW_TYPES[0],
        "preconditions": {"id": "p", "where": [{"id": "w", "filters": [{"field": "FLOW_ID", "type": "REGEX", "value": "("}]}]}
    }))
    .unwrap();
    let err = FlowTrigger::from_trigger(&t).unwrap_err();
    assert!(
        err.contains("preconditions") && err.contains("regex"),
        "{err}"
    );
    let t: Trigger = serde_json::from_value(json!({
        "id": "f", "type": FLOW_TYPES[0], "preconditions": {"id": "p"}
    }))
    .unwrap();
    assert!(FlowTrigger::from_trigger(&t).is_err());
}

#[test]
fn variables_and_inputs_come_from_the_source() {
    let t = one(
        "  - id: listen\n    type: io.kestra.plugin.core.trigger.Flow\n    inputs:\n      \
         from-parent: \"{{ outputs.only.value }}\"\n      \
         id: \"{{ trigger.executionId }}/{{ trigger.outputs.date }}\"\n",
    );
    let mut e = exec("E1", "up", "src", "SUCCESS");
    e.outputs = Some(Map::from_iter([("date".to_string(), json!("2024-01-01"))]));
    let vars = FlowTrigger::variables(&e.src());
    assert_eq!(
        vars,
        json!({"executionId": "E1", "namespace": "up", "flowId": "src", "flowRevision": 3,
               "state": "SUCCESS", "outputs": {"date": "2024-01-01"}})
    );
    assert_eq!(
        t.trigger_json(&e.src()),
        json!({"id": "listen", "type": FLOW_TYPES[0], "variables": vars})
    );
    let inputs = t.render_inputs(&e.src(), &r()).unwrap();
    assert_eq!(
        Json::Object(inputs),
        json!({"from-parent": "from E1", "id": "E1/2024-01-01"})
    );
}
