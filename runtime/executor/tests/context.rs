//! What expressions of a task see: the render context the executor hands to plugins.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;
use weft_executor::State;

#[test]
fn secret_inputs_are_revealed_to_expressions() {
    let mut s = Sim::new(
        r#"
id: f
namespace: t
inputs:
  - {id: password, type: SECRET}
tasks:
  - {id: show, type: io.kestra.plugin.core.debug.Return, format: "{{ inputs.password }}"}
"#,
    )
    .inputs(json!({"password": {"type": "weft.datatype:secret", "value": "hunter2"}}));
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.output("show", None)["value"], json!("hunter2"));
    // the execution keeps the sealed value
    assert_eq!(
        s.exec.inputs["password"]["type"],
        json!("weft.datatype:secret")
    );
}

#[test]
fn dotted_labels_are_nested() {
    let mut s = Sim::new(
        r#"
id: f
namespace: t
labels: {team.name: data, plain: x}
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ labels.team.name }} {{ labels.plain }} {{ labels.system.correlationId == execution.id }}"
"#,
    );
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.output("show", None)["value"], json!("data x true"));
}

#[test]
fn labels_are_the_flow_s_then_the_request_s_then_the_correlation_id() {
    let s = Sim::new(
        r#"
id: f
namespace: t
labels: {team: data, env: dev}
tasks:
  - {id: show, type: io.kestra.plugin.core.debug.Return, format: x}
"#,
    );
    let exec = s.exec.clone().with_labels(vec![
        weft_flow::model::Label {
            key: "env".into(),
            value: "prod".into(),
        },
        weft_flow::model::Label {
            key: "ticket".into(),
            value: "42".into(),
        },
    ]);
    let labels: Vec<(&str, &str)> = exec
        .labels
        .iter()
        .map(|l| (l.key.as_str(), l.value.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("team", "data"),
            ("env", "prod"),
            ("ticket", "42"),
            ("system.correlationId", exec.id.as_str()),
        ]
    );
}
