#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{TimeZone, Utc};
use indexmap::IndexMap;
use serde_json::{Value as Json, json};
use weft_flow::expr::Renderer;
use weft_flow::model::Flow;

use super::*;

/// A flow of ours with every input type and validator.
const EVERY_TYPE: &str = r#"
id: every-input
namespace: weft.tests.inputs
inputs:
  - id: name
    type: STRING
  - id: code
    type: STRING
    validator: "[A-Z]{2}\\d+"
    required: false
  - id: count
    type: INT
    min: 1
    max: 5
    required: false
  - id: ratio
    type: FLOAT
    min: 0.25
    max: 2.5
    required: false
  - id: flag
    type: BOOLEAN
    required: false
  - id: legacyFlag
    type: BOOL
    required: false
  - id: at
    type: DATETIME
    after: "2020-01-01T00:00:00Z"
    before: "2030-01-01T00:00:00Z"
    required: false
  - id: day
    type: DATE
    after: "2020-01-01"
    before: "2020-12-31"
    required: false
  - id: clock
    type: TIME
    after: "08:00:00"
    before: "18:30:00"
    required: false
  - id: wait
    type: DURATION
    min: PT1M
    max: PT1H
    required: false
  - id: upload
    type: FILE
    required: false
  - id: doc
    type: JSON
    required: false
  - id: conf
    type: YAML
    required: false
  - id: site
    type: URI
    required: false
  - id: password
    type: SECRET
    required: false
  - id: numbers
    type: ARRAY
    itemType: INT
    required: false
  - id: color
    type: SELECT
    values: [red, green, blue]
    required: false
  - id: free
    type: SELECT
    values: [a, b]
    allowCustomValue: true
    required: false
  - id: colors
    type: MULTISELECT
    values: [red, green, blue]
    required: false
  - id: level
    type: ENUM
    values: [LOW, HIGH]
    required: false
  - id: mail
    type: EMAIL
    required: false
  - id: deep.er.value
    type: INT
    required: false
  - id: deep.flag
    type: BOOLEAN
    required: false
  - id: greeting
    type: STRING
    defaults: "hello {{ inputs.name }}"
  - id: retries
    type: INT
    defaults: 3
  - id: settings
    type: YAML
    defaults:
      a: 1
      b: [x, y]
tasks:
  - id: noop
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.name }}"
"#;

fn flow(src: &str) -> Flow {
    match weft_flow::parse_flow(src, &weft_flow::Registry::core()) {
        Ok(p) => p.flow,
        Err(d) => panic!("test flow does not parse: {d:?}"),
    }
}

fn text(pairs: &[(&str, &str)]) -> IndexMap<String, RawInput> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), RawInput::Text(v.to_string())))
        .collect()
}

fn read(f: &Flow, raw: &IndexMap<String, RawInput>) -> Result<Map<String, Json>, InputErrors> {
    let renderer = Renderer::new();
    let now = Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap();
    let ctx = InputContext::new("exec1", now, &renderer);
    read_inputs(f, raw, &ctx)
}

/// The one error of reading `name=value` (plus the required `name`) on the every-type flow.
fn error_of(id: &str, value: &str) -> String {
    let f = flow(EVERY_TYPE);
    let raw = text(&[("name", "n"), (id, value)]);
    match read(&f, &raw) {
        Ok(v) => panic!("{id}={value} should be refused, got {v:?}"),
        Err(e) => {
            assert_eq!(e.len(), 1, "{e}");
            assert_eq!(e.0[0].id, id);
            e.to_string()
        }
    }
}

fn value_of(id: &str, value: &str) -> Json {
    let f = flow(EVERY_TYPE);
    let raw = text(&[("name", "n"), (id, value)]);
    let typed = read(&f, &raw).unwrap_or_else(|e| panic!("{id}={value}: {e}"));
    let mut cur = &Json::Object(typed);
    for part in id.split('.') {
        cur = &cur[part];
    }
    cur.clone()
}

#[test]
fn every_type_typed() {
    let f = flow(EVERY_TYPE);
    let mut raw = text(&[
        ("name", "Ada"),
        ("code", "AB12"),
        ("count", "3"),
        ("ratio", "1.1"),
        ("flag", "TRUE"),
        ("legacyFlag", "false"),
        ("at", "2024-01-02T03:04:05+01:00"),
        ("day", "2020-06-30"),
        ("clock", "12:30"),
        ("wait", "PT90S"),
        ("doc", r#"{"k": [1, 2]}"#),
        ("conf", "a: 1\nb:\n- x"),
        ("site", "https://example.com/a?b=c"),
        ("password", "hunter2"),
        ("numbers", "[1, 2, 3]"),
        ("color", "green"),
        ("free", "anything"),
        ("colors", r#"["red", "blue"]"#),
        ("level", "HIGH"),
        ("mail", "ada@example.com"),
        ("deep.er.value", "7"),
        ("deep.flag", "true"),
    ]);
    raw.insert(
        "upload".into(),
        RawInput::File {
            name: "data.csv".into(),
            uri: "kestra:///weft/tests/inputs/every-input/executions/exec1/inputs/upload/data.csv"
                .into(),
        },
    );
    let typed = Json::Object(read(&f, &raw).unwrap());
    let expected = json!({
        "name": "Ada",
        "code": "AB12",
        "count": 3,
        "ratio": 1.1,
        "flag": true,
        "legacyFlag": false,
        "at": "2024-01-02T02:04:05Z",
        "day": "2020-06-30",
        "clock": "12:30:00",
        "wait": "PT1M30S",
        "upload": "kestra:///weft/tests/inputs/every-input/executions/exec1/inputs/upload/data.csv",
        "doc": {"k": [1, 2]},
        "conf": {"a": 1, "b": ["x"]},
        "site": "https://example.com/a?b=c",
        "password": {"type": "weft.datatype:secret", "value": "hunter2"},
        "numbers": [1, 2, 3],
        "color": "green",
        "free": "anything",
        "colors": ["red", "blue"],
        "level": "HIGH",
        "mail": "ada@example.com",
        "deep": {"er": {"value": 7}, "flag": true},
        "greeting": "hello Ada",
        "retries": 3,
        "settings": {"a": 1, "b": ["x", "y"]},
    });
    assert_eq!(typed, expected);
    // the secret is never the plain text, but expressions get it back
    assert_ne!(typed["password"], json!("hunter2"));
    assert_eq!(reveal_secrets(&typed)["password"], json!("hunter2"));
    assert_eq!(mask_secrets(&typed)["password"], json!("******"));
}

#[test]
fn optional_without_value_is_null_and_required_is_an_error() {
    let f = flow(EVERY_TYPE);
    let typed = read(&f, &text(&[("name", "x")])).unwrap();
    assert_eq!(typed.get("count"), Some(&Json::Null));
    assert_eq!(
        typed.get("deep"),
        Some(&json!({"er": {"value": null}, "flag": null}))
    );
    let err = read(&f, &IndexMap::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "name: Invalid input for `name`, missing required input, but received `null`"
    );
    // a JSON null counts as absent
    let mut raw = IndexMap::new();
    raw.insert("name".to_string(), RawInput::Json(Json::Null));
    assert_eq!(
        read(&f, &raw).unwrap_err().0[0].message,
        "missing required input"
    );
}

#[test]
fn every_error_message() {
    let cases: &[(&str, &str, &str)] = &[
        ("code", "ab1", "it must match the pattern `[A-Z]{2}\\d+`"),
        ("count", "0", "it must be more than `1`"),
        ("count", "6", "it must be less than `5`"),
        ("count", "2.5", "Expected `INT` but received `2.5`"),
        ("ratio", "0.1", "it must be more than `0.25`"),
        ("ratio", "3", "it must be less than `2.5`"),
        ("ratio", "abc", "Expected `FLOAT` but received `abc`"),
        ("flag", "yes", "Expected `BOOLEAN` but received `yes`"),
        ("legacyFlag", "1", "Expected `BOOL` but received `1`"),
        (
            "at",
            "2019-12-31T23:59:59Z",
            "it must be after `2020-01-01T00:00:00Z`",
        ),
        (
            "at",
            "2031-01-01T00:00:00Z",
            "it must be before `2030-01-01T00:00:00Z`",
        ),
        (
            "at",
            "2024-01-02",
            "Expected `DATETIME` but received `2024-01-02`",
        ),
        ("day", "2019-06-30", "it must be after `2020-01-01`"),
        ("day", "2021-01-01", "it must be before `2020-12-31`"),
        (
            "day",
            "2020-02-30",
            "Expected `DATE` but received `2020-02-30`",
        ),
        ("clock", "07:59:59", "it must be after `08:00`"),
        ("clock", "18:30:01", "it must be before `18:30`"),
        ("clock", "25:00", "Expected `TIME` but received `25:00`"),
        ("wait", "PT30S", "It must be more than `PT1M`"),
        ("wait", "PT2H", "It must be less than `PT1H`"),
        (
            "wait",
            "5 minutes",
            "Expected `DURATION` but received `5 minutes`",
        ),
        ("doc", "{nope", "Expected `JSON` but received `{nope`"),
        ("conf", "a: [", "Expected `YAML` but received `a: [`"),
        (
            "site",
            "http:/bla",
            "Expected `URI` but received `http:/bla`",
        ),
        (
            "site",
            "not a uri",
            "Expected `URI` but received `not a uri`",
        ),
        (
            "upload",
            "/tmp/local.csv",
            "Expected `FILE` but received `/tmp/local.csv`",
        ),
        (
            "numbers",
            r#"["s1", "s2"]"#,
            "Unable to parse array element as `INT` on `s1`",
        ),
        ("numbers", "1, 2", "Expected `ARRAY` but received `1, 2`"),
        (
            "color",
            "pink",
            "it must match the values `[red, green, blue]`",
        ),
        (
            "colors",
            r#"["red", "pink"]"#,
            "it must match the values `[red, green, blue]`",
        ),
        ("level", "MEDIUM", "it must match the values `[LOW, HIGH]`"),
        ("mail", "not-an-email", "The input must be a valid email"),
        ("deep.er.value", "x", "Expected `INT` but received `x`"),
    ];
    for (id, value, message) in cases {
        let got = error_of(id, value);
        let want = format!("{id}: Invalid input for `{id}`, {message}");
        assert!(
            got.starts_with(&want),
            "{id}={value}:\n got  {got}\n want {want}..."
        );
        assert!(got.ends_with(&format!(", but received `{value}`")), "{got}");
    }
}

#[test]
fn every_accepted_value() {
    let cases: &[(&str, &str, Json)] = &[
        ("code", "ZZ0", json!("ZZ0")),
        ("count", "1", json!(1)),
        ("count", "5", json!(5)),
        ("ratio", "0.25", json!(0.25)),
        ("ratio", "2.5", json!(2.5)),
        ("flag", "False", json!(false)),
        ("at", "2020-01-01T00:00:00Z", json!("2020-01-01T00:00:00Z")),
        (
            "at",
            "2024-01-02T03:04:05.120Z",
            json!("2024-01-02T03:04:05.120Z"),
        ),
        ("at", "2024-01-02T03:04Z", json!("2024-01-02T03:04:00Z")),
        ("day", "2020-12-31", json!("2020-12-31")),
        ("clock", "18:30", json!("18:30:00")),
        ("clock", "08:00:00.5", json!("08:00:00.5")),
        ("wait", "PT1H", json!("PT1H")),
        ("wait", "PT60M", json!("PT1H")),
        (
            "upload",
            "nsfile:///data/a.csv",
            json!("nsfile:///data/a.csv"),
        ),
        ("doc", "{}", json!({})),
        ("doc", "[1]", json!([1])),
        ("conf", "{}", json!({})),
        (
            "site",
            "http://localhost:8080/x",
            json!("http://localhost:8080/x"),
        ),
        ("numbers", "[]", json!([])),
        ("colors", "red, green", json!(["red", "green"])),
        ("mail", "a.b+c@d.org", json!("a.b+c@d.org")),
    ];
    for (id, value, want) in cases {
        assert_eq!(&value_of(id, value), want, "{id}={value}");
    }
}

#[test]
fn several_errors_are_all_reported_in_flow_order() {
    let f = flow(EVERY_TYPE);
    let err = read(&f, &text(&[("count", "9"), ("color", "pink")])).unwrap_err();
    let ids: Vec<&str> = err.0.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["name", "count", "color"]);
    assert_eq!(err.of("count").count(), 1);
    assert_eq!(
        err.to_string(),
        "name: Invalid input for `name`, missing required input, but received `null`, \
         count: Invalid input for `count`, it must be less than `5`, but received `9`, \
         color: Invalid input for `color`, it must match the values `[red, green, blue]`, but received `pink`"
    );
}

#[test]
fn typed_json_values_are_converted_and_validated() {
    let f = flow(EVERY_TYPE);
    let mut raw: IndexMap<String, RawInput> = IndexMap::new();
    raw.insert("name".into(), RawInput::Json(json!(12)));
    raw.insert("count".into(), RawInput::Json(json!(2)));
    raw.insert("ratio".into(), RawInput::Json(json!(0.42)));
    raw.insert("flag".into(), RawInput::Json(json!(true)));
    raw.insert("doc".into(), RawInput::Json(json!({"a": 1})));
    raw.insert("numbers".into(), RawInput::Json(json!([4, "5"])));
    let typed = read(&f, &raw).unwrap();
    assert_eq!(typed["name"], json!("12"));
    assert_eq!(typed["count"], json!(2));
    assert_eq!(typed["ratio"], json!(0.42));
    assert_eq!(typed["flag"], json!(true));
    assert_eq!(typed["doc"], json!({"a": 1}));
    assert_eq!(typed["numbers"], json!([4, 5]));
    raw.insert("count".into(), RawInput::Json(json!(20)));
    assert_eq!(
        read(&f, &raw).unwrap_err().to_string(),
        "count: Invalid input for `count`, it must be less than `5`, but received `20`"
    );
}

#[test]
fn defaults_with_expressions_see_other_inputs() {
    let f = flow(
        r#"
id: defaults
namespace: weft.tests
inputs:
  - id: user
    type: STRING
  - id: greeting
    type: STRING
    defaults: "Hi {{ inputs.user | upper }} from {{ flow.namespace }}"
  - id: when
    type: DATETIME
    defaults: "{{ now() }}"
  - id: count
    type: INT
    defaults: "{{ inputs.user | length }}"
    min: 5
  - id: empty
    type: STRING
    defaults: ''
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: x
"#,
    );
    let typed = read(&f, &text(&[("user", "ada")])).unwrap_err();
    // `count` defaults to 3, under its minimum: defaults are validated too
    assert_eq!(
        typed.to_string(),
        "count: Invalid input for `count`, it must be more than `5`, but received `3`"
    );
    let typed = read(&f, &text(&[("user", "adalove")])).unwrap();
    assert_eq!(typed["greeting"], json!("Hi ADALOVE from weft.tests"));
    assert_eq!(typed["when"], json!("2024-05-06T07:08:09Z"));
    assert_eq!(typed["count"], json!(7));
    assert_eq!(typed["empty"], json!(""));
    // a value wins over the default
    let typed = read(&f, &text(&[("user", "adalove"), ("greeting", "yo")])).unwrap();
    assert_eq!(typed["greeting"], json!("yo"));
}

#[test]
fn depends_on_conditions_hide_inputs() {
    let f = flow(
        r#"
id: depends
namespace: weft.tests
inputs:
  - id: cloud
    type: SELECT
    values: [AWS, GCP]
  - id: region
    type: STRING
    defaults: "{{ inputs.cloud == 'AWS' ? 'us-east-1' : 'europe-west1' }}"
    dependsOn:
      inputs: [cloud]
  - id: awsOnly
    type: STRING
    dependsOn:
      inputs: [cloud]
      condition: "{{ inputs.cloud == 'AWS' }}"
  - id: afterAws
    type: STRING
    required: false
    dependsOn:
      inputs: [awsOnly]
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: x
"#,
    );
    let typed = read(&f, &text(&[("cloud", "GCP")])).unwrap();
    assert_eq!(
        Json::Object(typed),
        json!({"cloud": "GCP", "region": "europe-west1"})
    );
    let err = read(&f, &text(&[("cloud", "AWS")])).unwrap_err();
    assert_eq!(err.0[0].id, "awsOnly");
    assert_eq!(err.0[0].message, "missing required input");
    let typed = read(&f, &text(&[("cloud", "AWS"), ("awsOnly", "y")])).unwrap();
    assert_eq!(
        Json::Object(typed),
        json!({"cloud": "AWS", "region": "us-east-1", "awsOnly": "y", "afterAws": null})
    );
}

#[test]
fn dependencies_are_read_first_and_cycles_end() {
    let f = flow(
        r#"
id: order
namespace: weft.tests
inputs:
  - id: b
    type: STRING
    defaults: "{{ inputs.a }}-b"
    dependsOn:
      inputs: [a]
  - id: a
    type: STRING
    defaults: "a"
    dependsOn:
      inputs: [b]
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: x
"#,
    );
    let typed = read(&f, &IndexMap::new()).unwrap();
    assert_eq!(typed["a"], json!("a"));
    assert_eq!(typed["b"], json!("a-b"));
}

#[test]
fn raw_mode_keeps_values_and_fills_defaults() {
    let f = flow(EVERY_TYPE);
    let mut raw = IndexMap::new();
    raw.insert("name".to_string(), json!("Ada"));
    raw.insert("count".to_string(), json!(42)); // above max: not validated
    raw.insert("flag".to_string(), json!("not a bool")); // not parsed
    raw.insert("deep.flag".to_string(), json!(true));
    raw.insert("extra".to_string(), json!([1]));
    let renderer = Renderer::new();
    let ctx = InputContext::new(
        "e",
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        &renderer,
    );
    let typed = Json::Object(read_inputs_raw(&f, &raw, &ctx).unwrap());
    assert_eq!(
        typed,
        json!({
            "name": "Ada",
            "count": 42,
            "flag": "not a bool",
            "deep": {"flag": true},
            "extra": [1],
            "greeting": "hello Ada",
            "retries": 3,
            "settings": {"a": 1, "b": ["x", "y"]},
        })
    );
}

#[test]
fn secrets_are_never_printed() {
    let f = flow(
        r#"
id: secrets
namespace: weft.tests
inputs:
  - id: token
    type: SECRET
    validator: "tk-[0-9]+"
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: x
"#,
    );
    let err = read(&f, &text(&[("token", "hunter2")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "token: Invalid input for `token`, it must match the pattern `tk-[0-9]+`, but received `******`"
    );
    let typed = read(&f, &text(&[("token", "tk-42")])).unwrap();
    assert!(is_secret(&typed["token"]));
    assert!(
        !mask_secrets(&Json::Object(typed.clone()))
            .to_string()
            .contains("tk-42")
    );
    // a sealed secret passed on (a Subflow task's inputs) stays one secret
    let mut raw = IndexMap::new();
    raw.insert("token".to_string(), RawInput::Json(typed["token"].clone()));
    assert_eq!(read(&f, &raw).unwrap()["token"], typed["token"]);
}

#[test]
fn float_is_a_java_float() {
    assert_eq!(java::float(0.1), "0.1");
    assert_eq!(java::float(1.0), "1.0");
    assert_eq!(java::float(42.42), "42.42");
    assert_eq!(java::float(1.0e7), "1.0E7");
    assert_eq!(java::float(1.5e-5), "1.5E-5");
    assert_eq!(value_of("ratio", "0.42"), json!(0.42));
}

#[test]
fn java_printing_of_times_and_values() {
    let t = |s: &str| convert::parse_time(s).unwrap();
    assert_eq!(java::local_time(&t("01:00:00")), "01:00");
    assert_eq!(java::local_time(&t("11:59:59")), "11:59:59");
    assert_eq!(java::local_time(&t("10:15:30.1")), "10:15:30.100");
    assert_eq!(java::to_string(&json!(["s1", "s2"])), "[s1, s2]");
    assert_eq!(java::to_string(&json!({"a": "b"})), "{a=b}");
}

#[test]
fn select_values_from_an_expression() {
    let f = flow(
        r#"
id: select
namespace: weft.tests
inputs:
  - id: env
    type: SELECT
    expression: "{{ ['dev', 'prod'] | toJson }}"
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: x
"#,
    );
    assert_eq!(
        read(&f, &text(&[("env", "prod")])).unwrap()["env"],
        json!("prod")
    );
    let err = read(&f, &text(&[("env", "qa")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "env: Invalid input for `env`, it must match the values `[dev, prod]`, but received `qa`"
    );
}

#[test]
fn undeclared_inputs_and_file_uris() {
    let f = flow(EVERY_TYPE);
    let raw = text(&[("name", "x"), ("nope", "y")]);
    assert_eq!(undeclared_inputs(&f, raw.keys()), ["nope"]);
    assert_eq!(
        file_input_uri(
            "io.kestra.tests",
            "inputs",
            "test",
            "file",
            "application-test.yml"
        ),
        "kestra:///io/kestra/tests/inputs/executions/test/inputs/file/application-test.yml"
    );
}

#[test]
fn describes_what_inputs_expect() {
    let f = flow(EVERY_TYPE);
    let d = |id: &str| describe(f.inputs.iter().find(|i| i.id == id).unwrap());
    assert_eq!(d("name"), "a string; required");
    assert_eq!(d("count"), "an integer (e.g. 42) between 1 and 5; optional");
    assert_eq!(d("code"), "a string matching `[A-Z]{2}\\d+`; optional");
    assert_eq!(d("color"), "one of [red, green, blue]; optional");
    assert_eq!(d("free"), "one of [a, b] (or any other value); optional");
    assert_eq!(
        d("numbers"),
        "a JSON array of an integer (e.g. 42); optional"
    );
    assert_eq!(d("retries"), "an integer (e.g. 42); default `3`");
    assert!(d("wait").starts_with("an ISO-8601 duration"));
    assert!(d("day").contains("from 2020-01-01 to 2020-12-31"));
}

#[test]
fn kinds_parse_case_insensitively() {
    assert_eq!(
        InputKind::parse("multiselect"),
        Some(InputKind::MultiSelect)
    );
    assert_eq!(InputKind::parse("BOOL"), Some(InputKind::Bool));
    assert_eq!(InputKind::parse("TABLE"), None);
    for k in InputKind::ALL {
        assert_eq!(InputKind::parse(k.name()), Some(k));
    }
}
