//! End-to-end tests of the expression language: Pebble syntax in, Kestra's output out.

use super::*;
use chrono::TimeZone;
use serde_json::{Value as Json, json};

fn vars() -> Json {
    json!({
        "inputs": {"name": "World", "count": 3, "flag": true, "nothing": null, "list": [3, 1, 2],
                   "failed": null, "from-parent": "p", "json": "{\"a\": {\"b\": [1, 2]}}"},
        "outputs": {"my-task": {"value": "v1"}, "t2": {"value": 42}, "obj": {"value": {"k": "v", "n": 1.5}},
                    "each": {"a": {"value": "A"}, "b": {"value": "B"}}},
        "flow": {"id": "hello", "namespace": "company.team"},
        "execution": {"id": "exec1", "startDate": "2024-03-05T07:08:09.123Z"},
        "taskrun": {"value": "a", "attemptsCount": 1, "id": "tr1"},
        "parents": [{"taskrun": {"value": "p0"}}],
        "labels": {"env": "prod"},
        "vars": {"third": "{{ flow.id }}", "deep": "{{ vars.third }}"}
    })
}

fn ctx(v: &Json) -> Context<'_> {
    Context {
        vars: v,
        now: Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
        seed: 42,
        host: None,
    }
}

fn r(t: &str) -> String {
    let v = vars();
    Renderer::new()
        .render(t, &ctx(&v))
        .unwrap_or_else(|e| panic!("{t}: {e}"))
}

fn r_err(t: &str) -> String {
    let v = vars();
    match Renderer::new().render(t, &ctx(&v)) {
        Ok(s) => panic!("{t} rendered to {s:?}, expected an error"),
        Err(e) => e.message,
    }
}

fn ev(e: &str) -> Json {
    let v = vars();
    Renderer::new()
        .eval(e, &ctx(&v))
        .unwrap_or_else(|err| panic!("{e}: {err}"))
}

#[test]
fn plain_strings_pass_through() {
    assert_eq!(r("no tags here { }"), "no tags here { }");
    assert!(is_template("a {{ b }}"));
    assert!(is_template("{% if x %}"));
    assert!(!is_template("a { b }"));
}

#[test]
fn variables_attributes_and_brackets() {
    assert_eq!(r("Hello {{ inputs.name }}!"), "Hello World!");
    assert_eq!(r("{{ outputs['my-task'].value }}"), "v1");
    assert_eq!(r("{{ inputs['from-parent'] }}"), "p");
    assert_eq!(r("{{ parents[0].taskrun.value }}"), "p0");
    assert_eq!(r("{{ outputs.each[taskrun.value].value }}"), "A");
    assert_eq!(r("{{ inputs.list[1] }}"), "1");
    assert_eq!(r("{{ inputs.list.0 }}"), "3");
}

#[test]
fn values_print_like_kestra() {
    assert_eq!(r("{{ outputs.obj.value }}"), r#"{"k":"v","n":1.5}"#);
    assert_eq!(r("{{ inputs.list }}"), "[3,1,2]");
    assert_eq!(r("{{ inputs.nothing }}"), "");
    assert_eq!(r("{{ inputs.flag }}"), "true");
    assert_eq!(r("{{ 4.0 }}"), "4");
    assert_eq!(r("{{ 2.5 }}"), "2.5");
    assert_eq!(r("a\n"), "a\n");
    assert_eq!(r("{{ 1 }}\n"), "1\n");
}

#[test]
fn strict_undefined_names_the_missing_attribute() {
    assert_eq!(
        r_err("{{ outputs.missing.value }}"),
        "Unable to find `missing` used in the expression `{{ outputs.missing.value }}` at line 1"
    );
    assert!(r_err("{{ missing }}").contains("Unable to find `missing`"));
    assert!(
        r_err("a\n{{ outputs.t2.nope }}")
            .contains("`nope` used in the expression `{{ outputs.t2.nope }}` at line 2")
    );
    assert!(r_err("{{ outputs.notexists == 2 }}").contains("`notexists`"));
    assert!(r_err("{% if outputs.x %}a{% endif %}").contains("`x`"));
    assert!(r_err("{{ inputs.nothing.deeper }}").contains("`deeper`"));
}

#[test]
fn null_coalescing() {
    assert_eq!(r("{{ outputs.missing.value ?? 'x' }}"), "x");
    assert_eq!(r("{{ inputs.nothing ?? 'x' }}"), "x");
    assert_eq!(r("{{ inputs.name ?? 'x' }}"), "World");
    assert_eq!(r("{{ missing ?? other ?? 'z' }}"), "z");
    assert_eq!(
        r("{{ (inputs.failed ?? 'NONE') == 'FIRST' ? ko : '0' }}"),
        "0"
    );
    // lazy: the right side is not evaluated when the left is present
    assert_eq!(r("{{ inputs.name ?? undefinedThing }}"), "World");
}

#[test]
fn undefined_coalescing() {
    assert_eq!(r("{{ outputs.missing.value ??? 'x' }}"), "x");
    assert_eq!(r("{{ inputs.nothing ??? 'x' }}"), "");
    assert_eq!(ev("inputs.nothing ??? 'x'"), Json::Null);
    assert_eq!(r("{{ inputs.name ??? 'x' }}"), "World");
}

#[test]
fn ternary_and_precedence() {
    assert_eq!(r("{{ inputs.count > 2 ? 'big' : 'small' }}"), "big");
    assert_eq!(
        r("{{ inputs.count > 5 ? 'big' : inputs.count > 2 ? 'mid' : 'small' }}"),
        "mid"
    );
    assert_eq!(r("{{ taskrun.attemptsCount == 1 ? 'ok' : ko }}"), "ok");
    assert_eq!(r("{{ inputs.flag ? 1 + 2 : 0 }}"), "3");
    assert_eq!(r("{{ 'a' ~ 'b' | upper }}"), "AB");
    assert_eq!(r("{{ 1 + -2 | abs }}"), "3");
    assert_eq!(r("{{ not inputs.flag }}"), "false");
    assert_eq!(r("{{ 2 + 3 * 4 }}"), "14");
    assert_eq!(r("{{ 7 / 2 }}"), "3");
    assert_eq!(r("{{ 7.0 / 2 }}"), "3.5");
    assert_eq!(r("{{ 7 % 3 }}"), "1");
    assert!(r_err("{{ 1 / 0 }}").contains("division by zero"));
}

#[test]
fn concatenation_and_interpolation() {
    assert_eq!(
        r("{{ flow.namespace ~ '.' ~ flow.id }}"),
        "company.team.hello"
    );
    assert_eq!(r("{{ 'n=' ~ inputs.count ~ inputs.nothing }}"), "n=3");
    assert_eq!(r("{{ \"hi #{inputs.name}!\" }}"), "hi World!");
}

#[test]
fn tests_defined_null_empty() {
    assert_eq!(r("{{ inputs.crash is defined }}"), "false");
    assert_eq!(r("{{ inputs.name is defined }}"), "true");
    assert_eq!(r("{{ outputs.a.b.c is not defined }}"), "true");
    assert_eq!(r("{{ inputs.nothing is null }}"), "true");
    assert_eq!(r("{{ inputs.name is null }}"), "false");
    assert_eq!(r("{{ '' is empty }}"), "true");
    assert_eq!(r("{{ inputs.list is empty }}"), "false");
    assert_eq!(r("{{ 4 is even }}"), "true");
    assert_eq!(r("{{ 3 is odd }}"), "true");
    assert_eq!(r("{{ inputs.json is json }}"), "true");
    assert_eq!(r("{{ inputs.name is json }}"), "false");
    assert_eq!(r("{{ outputs.obj.value is map }}"), "true");
    assert_eq!(r("{{ inputs.list is iterable }}"), "true");
}

#[test]
fn contains_equals_in_and_or() {
    assert_eq!(r("{{ inputs.list contains 2 }}"), "true");
    assert_eq!(r("{{ inputs.list contains 9 }}"), "false");
    assert_eq!(r("{{ 'abc' contains 'b' }}"), "true");
    assert_eq!(r("{{ outputs.obj.value contains 'k' }}"), "true");
    assert_eq!(r("{{ inputs.list contains [1, 2] }}"), "true");
    assert_eq!(r("{{ taskrun.value equals 'a' }}"), "true");
    assert_eq!(r("{{ 2 in inputs.list }}"), "true");
    assert_eq!(r("{{ 5 not in inputs.list }}"), "true");
    assert_eq!(r("{{ inputs.flag and inputs.count > 1 }}"), "true");
    assert_eq!(r("{{ false or inputs.nothing }}"), "false");
    assert_eq!(r("{{ 1 != 2 and 2 >= 2 and 1 <= 0 }}"), "false");
}

#[test]
fn ranges_literals() {
    assert_eq!(r("{{ 1..3 }}"), "[1,2,3]");
    assert_eq!(r("{{ range(0, 6, 2) }}"), "[0,2,4,6]");
    assert_eq!(
        r("{{ {'a': [1, 'x'], 'b': null} }}"),
        r#"{"a":[1,"x"],"b":null}"#
    );
    assert_eq!(ev("{'a': 1}.a"), json!(1));
    assert_eq!(ev("[1, 2, 3]"), json!([1, 2, 3]));
}

#[test]
fn control_tags() {
    assert_eq!(
        r("{% if inputs.count > 5 %}a{% elseif inputs.count > 2 %}b{% else %}c{% endif %}"),
        "b"
    );
    assert_eq!(
        r(
            "{% for x in inputs.list %}{{ loop.index }}:{{ x }}{% if loop.first %}F{% endif %}{% if loop.last %}L{{ loop.length }}{% endif %} {% endfor %}"
        ),
        "0:3F 1:1 2:2L3 "
    );
    assert_eq!(
        r("{% for e in outputs.each %}{{ e.key }}={{ e.value.value }};{% endfor %}"),
        "a=A;b=B;"
    );
    assert_eq!(
        r("{% for e in json(inputs.json) %}{{ e.key }}{% endfor %}"),
        "a"
    );
    assert_eq!(r("{% set x = inputs.count * 2 %}{{ x }}"), "6");
    assert_eq!(
        r("{% raw %}{{ not rendered }}{% endraw %}"),
        "{{ not rendered }}"
    );
    assert_eq!(r("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
    assert_eq!(r("{%- if true -%}\n  yes\n{%- endif -%}"), "yes");
    assert_eq!(r("{% filter upper %}abc{% endfilter %}"), "ABC");
    assert_eq!(r("a{# comment #}b"), "ab");
}

#[test]
fn eval_is_typed() {
    assert_eq!(ev("inputs.count + 1"), json!(4));
    assert_eq!(ev("inputs.list | sort"), json!([1, 2, 3]));
    assert_eq!(ev("outputs.obj.value"), json!({"k": "v", "n": 1.5}));
    assert_eq!(ev("inputs.flag"), json!(true));
    assert_eq!(ev("outputs.missing ?? 'd'"), json!("d"));
    let v = vars();
    let e = Renderer::new()
        .eval("outputs.missing.value", &ctx(&v))
        .unwrap_err();
    assert!(e.message.contains("Unable to find `missing`"));
}

#[test]
fn render_value_renders_keys_and_nested_strings() {
    let v = vars();
    let input = json!({"{{ flow.id }}": ["{{ inputs.count }}", 1, {"k": "{{ labels.env }}"}], "plain": "x"});
    let out = Renderer::new().render_value(&input, &ctx(&v)).unwrap();
    assert_eq!(out, json!({"hello": ["3", 1, {"k": "prod"}], "plain": "x"}));
}

#[test]
fn check_reports_offsets() {
    assert!(check("{{ outputs['a-b'].value | jq('.x') | first }}").is_ok());
    assert!(check("no template").is_ok());
    let e = check("{{ outputs.x | }}").unwrap_err();
    assert_eq!(e.offset, Some(15));
    let e = check("abc {{ outputs.x").unwrap_err();
    assert_eq!(e.offset, Some(4));
    let e = check("{{ x | nofilter }}").unwrap_err();
    assert_eq!(e.offset, Some(7));
    assert!(e.message.contains("unknown filter `nofilter`"));
    let e = check("{{ nofn() }}").unwrap_err();
    assert!(e.message.contains("unknown function `nofn`"));
    let e = check("{{ a ? b }}").unwrap_err();
    assert_eq!(e.offset, Some(9));
    let e = check("{% for x in y %}").unwrap_err();
    assert!(e.message.contains("never closed"));
}

#[test]
fn deterministic_now_uuid_id_random() {
    assert_eq!(r("{{ now() }}"), "2024-01-02T03:04:05.000000Z");
    assert_eq!(
        r("{{ now(format='yyyy-MM-dd', timeZone='Europe/Paris') }}"),
        "2024-01-02"
    );
    assert_eq!(
        r("{{ now() | date('HH:mm', timeZone='Asia/Tokyo') }}"),
        "12:04"
    );
    let a = r("{{ uuid() }} {{ id() }} {{ randomInt(1, 100) }}");
    assert_eq!(a, r("{{ uuid() }} {{ id() }} {{ randomInt(1, 100) }}"));
    let parts: Vec<&str> = a.split(' ').collect();
    assert_eq!(parts[0].len(), 36);
    assert_eq!(&parts[0][14..15], "4");
    assert_eq!(parts[1].len(), 22);
    assert!(parts[1].chars().all(|c| c.is_ascii_alphanumeric()));
    let n: i64 = parts[2].parse().unwrap();
    assert!((1..100).contains(&n));
    assert_ne!(
        r("{{ uuid() }}|{{ uuid() }}").split('|').next(),
        r("{{ uuid() }}|{{ uuid() }}").split('|').nth(1)
    );
    let v = vars();
    let other = Context { seed: 7, ..ctx(&v) };
    assert_ne!(
        Renderer::new().render("{{ uuid() }}", &other).unwrap(),
        r("{{ uuid() }}")
    );
    assert_eq!(r("{{ randomInt(5, 5) }}"), "5");
    assert!(r_err("{{ randomInt(6, 5) }}").contains("less than"));
}

#[test]
fn date_filters() {
    assert_eq!(
        r("{{ execution.startDate | date('yyyy-MM-dd') }}"),
        "2024-03-05"
    );
    assert_eq!(
        r("{{ execution.startDate | date(\"yyyy-MM-dd'T'HH:mm:ss.SSSXXX\") }}"),
        "2024-03-05T07:08:09.123Z"
    );
    assert_eq!(
        r("{{ execution.startDate | date('HH:mm XXX', timeZone='Europe/Paris') }}"),
        "08:08 +01:00"
    );
    assert_eq!(
        r("{{ execution.startDate | date('iso') }}"),
        "2024-03-05T07:08:09.123000Z"
    );
    assert_eq!(
        r("{{ execution.startDate | date('iso_sec') }}"),
        "2024-03-05T07:08:09Z"
    );
    assert_eq!(
        r("{{ execution.startDate | date }}"),
        "2024-03-05T07:08:09.123000Z"
    );
    assert_eq!(
        r("{{ '05/03/2024' | date('yyyy-MM-dd', existingFormat='dd/MM/yyyy') }}"),
        "2024-03-05"
    );
    assert_eq!(
        r("{{ 0 | date('yyyy-MM-dd HH:mm:ss') }}"),
        "1970-01-01 00:00:00"
    );
    assert_eq!(
        r("{{ execution.startDate | dateAdd(1, 'DAYS') | date('yyyy-MM-dd') }}"),
        "2024-03-06"
    );
    assert_eq!(
        r("{{ execution.startDate | dateAdd(-2, 'MONTHS', 'yyyy-MM-dd') }}"),
        "2024-01-05"
    );
    assert_eq!(
        r("{{ execution.startDate | dateAdd(3, 'HOURS', format='HH') }}"),
        "10"
    );
    assert_eq!(r("{{ '2024-01-01T00:00:00Z' | timestamp }}"), "1704067200");
    assert_eq!(
        r("{{ '2024-01-01T00:00:00.5Z' | timestampMicro }}"),
        "1704067200500000"
    );
    assert_eq!(
        r("{{ '2024-01-01T00:00:00Z' | timestampNano }}"),
        "1704067200000000000"
    );
    assert!(r_err("{{ 'garbage' | date }}").contains("not an ISO-8601 date"));
    assert!(
        r_err("{{ execution.startDate | date('yyyy', timeZone='Mars/Olympus') }}")
            .contains("unknown time zone")
    );
    assert!(r_err("{{ execution.startDate | dateAdd(1, 'FORTNIGHTS') }}").contains("unknown unit"));
}

#[test]
fn json_filters_and_functions() {
    assert_eq!(
        r("{{ outputs.obj.value | toJson }}"),
        r#"{"k":"v","n":1.5}"#
    );
    assert_eq!(r("{{ 'x' | json }}"), r#""x""#);
    assert_eq!(r("{{ (inputs.json | fromJson).a.b[1] }}"), "2");
    assert_eq!(r("{{ fromJson(inputs.json).a.b }}"), "[1,2]");
    assert_eq!(r("{{ json(inputs.json).a.b[0] }}"), "1");
    assert!(r_err("{{ fromJson('{bad') }}").contains("invalid JSON"));
    assert_eq!(
        r("{{ {'a': 1, 'b': [1, 2]} | yaml }}"),
        "a: 1\nb:\n- 1\n- 2\n"
    );
    assert_eq!(r("{{ yaml('a: 1').a }}"), "1");
}

#[test]
fn jq_returns_all_results() {
    assert_eq!(r("{{ outputs.obj.value | jq('.k') }}"), r#"["v"]"#);
    assert_eq!(r("{{ outputs.obj.value | jq('.k') | first }}"), "v");
    assert_eq!(r("{{ inputs.list | jq('.[] | . * 2') }}"), "[6,2,4]");
    assert_eq!(r("{{ inputs.json | jq('.a.b | length') | first }}"), "2");
    assert_eq!(
        ev("inputs.list | jq('map(select(. > 1))') | first"),
        json!([3, 2])
    );
    assert!(r_err("{{ inputs.list | jq('.[') }}").contains("jq"));
}

#[test]
fn string_filters() {
    assert_eq!(r("{{ 'hello world' | capitalize }}"), "Hello world");
    assert_eq!(r("{{ 'hello world' | title }}"), "Hello World");
    assert_eq!(r("{{ 'AbC' | lower }}{{ 'AbC' | upper }}"), "abcABC");
    assert_eq!(r("{{ '  x  ' | trim }}"), "x");
    assert_eq!(r("{{ 'this is long' | abbreviate(7) }}"), "this...");
    assert_eq!(r("{{ 'short' | abbreviate(7) }}"), "short");
    assert_eq!(r("{{ 'a-b-c' | replace({'-': '+'}) }}"), "a+b+c");
    assert_eq!(
        r("{{ 'a1b22' | replace({'[0-9]+': '#'}, regexp=true) }}"),
        "a#b#"
    );
    assert_eq!(
        r("{{ 'x=1' | replace({'(\\w)=(\\d)': '$2=$1'}, regexp=true) }}"),
        "1=x"
    );
    assert_eq!(r("{{ 'Hello, World & Co!' | slugify }}"), "hello-world-co");
    assert_eq!(
        r("{{ 'a.b.c' | substringBefore('.') }}|{{ 'a.b.c' | substringBeforeLast('.') }}"),
        "a|a.b"
    );
    assert_eq!(
        r("{{ 'a.b.c' | substringAfter('.') }}|{{ 'a.b.c' | substringAfterLast('.') }}"),
        "b.c|c"
    );
    assert_eq!(
        r("{{ 'abc' | substringAfter('z') }}|{{ 'abc' | substringBefore('z') }}"),
        "|abc"
    );
    assert_eq!(
        r("{{ 'abc' | startsWith('ab') }} {{ 'abc' | endsWith('x') }}"),
        "true false"
    );
    assert_eq!(r("{{ 'a,b,,c,,' | split(',') }}"), r#"["a","b","","c"]"#);
    assert_eq!(r("{{ 'a,b,c' | split(',', 2) }}"), r#"["a","b,c"]"#);
    assert_eq!(r("{{ 'a;b,c' | split('[,;]') }}"), r#"["a","b","c"]"#);
    assert_eq!(r("{{ 'a.b' | split('.') }}"), "[]");
    assert_eq!(r("{{ 'a|b' | split('\\|') }}"), r#"["a","b"]"#);
    assert_eq!(r("{{ 'a\nb' | indent(2) }}"), "a\n  b");
    assert_eq!(r("{{ 'a\nb' | nindent(2) }}"), "\n  a\n  b");
    assert_eq!(r("{{ 'a\n\nb' | indent(2, '-') }}"), "a\n--\n--b");
    assert_eq!(r("{{ '' | nindent(2) }}"), "");
    assert_eq!(r("{{ \"it's\" | escapeChar('single') }}"), "it\\'s");
    assert_eq!(
        r("{{ 'say \"x\"' | escapeChar('double') }}"),
        "say \\\"x\\\""
    );
    assert_eq!(r("{{ \"it's\" | escapeChar('shell') }}"), "it'\\''s");
    assert!(r_err("{{ 'x' | escapeChar('weird') }}").contains("unknown type"));
    assert_eq!(
        r("{{ [\"a'b\", {'k': \"c'd\"}] | escapeChar('SINGLE') }}"),
        r#"["a\\'b",{"k":"c\\'d"}]"#
    );
    assert_eq!(r("{{ 'a b&c/d' | urlencode }}"), "a+b%26c%2Fd");
    assert_eq!(r("{{ 'a+b%26c%2Fd' | urldecode }}"), "a b&c/d");
    assert_eq!(r("{{ 'hello' | base64encode }}"), "aGVsbG8=");
    assert_eq!(r("{{ 'aGVsbG8=' | base64decode }}"), "hello");
    assert!(r_err("{{ '***' | base64decode }}").contains("base64decode"));
    assert_eq!(r("{{ 'abc' | md5 }}"), "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(
        r("{{ 'abc' | sha1 }}"),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        r("{{ 'abc' | sha256 }}"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert!(r("{{ 'abc' | sha512 }}").starts_with("ddaf35a193617aba"));
    assert_eq!(r("{{ 12 | string }}"), "12");
}

#[test]
fn collection_filters() {
    assert_eq!(
        r("{{ inputs.list | first }} {{ inputs.list | last }}"),
        "3 2"
    );
    assert_eq!(r("{{ inputs.list | join(', ') }}"), "3, 1, 2");
    assert_eq!(r("{{ inputs.list | join }}"), "312");
    assert_eq!(r("{{ outputs.obj.value | keys }}"), r#"["k","n"]"#);
    assert_eq!(r("{{ outputs.obj.value | values }}"), r#"["v",1.5]"#);
    assert!(r_err("{{ inputs.list | keys }}").contains("not a map"));
    assert_eq!(
        r("{{ inputs.list | sort }} {{ inputs.list | rsort }}"),
        "[1,2,3] [3,2,1]"
    );
    assert_eq!(
        r("{{ inputs.list | reverse }} {{ 'abc' | reverse }}"),
        "[2,1,3] cba"
    );
    assert_eq!(
        r("{{ inputs.list | slice(1, 3) }} {{ 'abcdef' | slice(2) }}"),
        "[1,2] cdef"
    );
    assert_eq!(
        r("{{ inputs.list | length }} {{ 'héllo' | length }} {{ outputs.obj.value | length }}"),
        "3 5 2"
    );
    assert_eq!(
        r("{{ {'a': 1, 'b': 2} | merge({'b': 3, 'c': 4}) }}"),
        r#"{"a":1,"b":3,"c":4}"#
    );
    assert_eq!(r("{{ [1] | merge([2, 3]) }}"), "[1,2,3]");
    assert_eq!(r("{{ [1, 2, 3, 4, 5] | chunk(2) }}"), "[[1,2],[3,4],[5]]");
    assert!(r_err("{{ [1] | chunk(0) }}").contains("positive"));
    assert_eq!(r("{{ [[1, 2], [3], 4] | flatten }}"), "[1,2,3,4]");
    assert_eq!(r("{{ [1, 2, 1, 3, 2] | distinct }}"), "[1,2,3]");
    assert_eq!(
        r("{{ inputs.nothing | default('d') }} {{ '' | default('e') }} {{ 'x' | default('f') }}"),
        "d e x"
    );
    assert_eq!(r("{{ outputs.missing.value | default('dflt') }}"), "dflt");
    assert_eq!(r("{{ -5 | abs }} {{ -2.5 | abs }}"), "5 2.5");
    assert!(r_err("{{ 'x' | abs }}").contains("not a number"));
    assert_eq!(ev("'42' | number"), json!(42));
    assert_eq!(ev("'4.5' | number"), json!(4.5));
    assert_eq!(ev("'42' | number('FLOAT')"), json!(42.0));
    assert!(r_err("{{ 'x' | number }}").contains("not a number"));
}

#[test]
fn functions() {
    assert_eq!(
        r("{{ min(3, 1, 2) }} {{ max(3, 1, 2) }} {{ max([4, 9]) }}"),
        "1 3 9"
    );
    assert_eq!(r("{{ range(1, 3) }}"), "[1,2,3]");
    assert_eq!(r("{{ range(3, 1, -1) }}"), "[3,2,1]");
    assert_eq!(r("{{ render(vars.third) }}"), "hello");
    assert_eq!(r("{{ render(vars.deep) }}"), "hello");
    assert_eq!(r("{{ renderOnce(vars.deep) }}"), "{{ flow.id }}");
    assert_eq!(r("{{ render(42) }}"), "42");
    assert_eq!(
        r("{{ fetchContext().flow.id }} {{ printContext().labels.env }}"),
        "hello prod"
    );
    let port: i64 = r("{{ randomPort() }}").parse().unwrap();
    assert!((1024..65535).contains(&port));
}

#[test]
fn host_functions_fail_clearly_without_a_host() {
    for t in [
        "{{ secret('X') }}",
        "{{ read('kestra:///a') }}",
        "{{ kv('K') }}",
        "{{ fileSize('x') }}",
        "{{ fileURI('x') }}",
        "{{ errorLogs() }}",
    ] {
        assert!(r_err(t).contains("is not available here"), "{t}");
    }
}

#[test]
fn current_each_output_follows_the_loop_values_outermost_first() {
    let v = json!({
        "outputs": {"o": {"a": {"x": {"value": "a-x"}, "y": {"value": "a-y"}}, "b": {"x": {"value": "b-x"}}},
                    "flat": {"value": "f"}},
        "parents": [{"taskrun": {"value": "a"}}, {"outputs": {}}],
        "taskrun": {"value": "y"},
    });
    let rd = Renderer::new();
    let c = ctx(&v);
    assert_eq!(
        rd.render("{{ currentEachOutput(outputs.o).value }}", &c)
            .unwrap(),
        "a-y"
    );
    // the template names neither `parents` nor `taskrun`: they are still given to the function
    assert_eq!(
        rd.render_value(
            &json!({"k": "{{ currentEachOutput(outputs.o).value }}"}),
            &c
        )
        .unwrap(),
        json!({"k": "a-y"})
    );
    let v = json!({"outputs": {"flat": {"value": "f"}}, "taskrun": {}});
    assert_eq!(
        rd.render("{{ currentEachOutput(outputs.flat).value }}", &ctx(&v))
            .unwrap(),
        "f"
    );
    let v = json!({"outputs": {"o": {"a": {}}}, "taskrun": {"value": "zz"}});
    let e = rd
        .render("{{ currentEachOutput(outputs.o) }}", &ctx(&v))
        .unwrap_err();
    assert!(
        e.message.contains("no entry for the loop value `zz`"),
        "{e}"
    );
}

struct TestHost;

impl ExprHost for TestHost {
    fn secret(&self, key: &str) -> Result<String, String> {
        match key {
            "my_secret" => Ok(r#"{"secretKey": "s3cr3t"}"#.into()),
            "PLAIN" => Ok("p".into()),
            _ => Err(format!("no secret {key}")),
        }
    }
    fn kv(&self, namespace: Option<&str>, key: &str) -> Result<Option<Json>, String> {
        Ok(match (namespace, key) {
            (None, "K") => Some(json!({"a": 1})),
            (Some("other"), "K") => Some(json!("o")),
            _ => None,
        })
    }
    fn read(&self, uri: &str) -> Result<String, String> {
        Ok(format!("content of {uri}"))
    }
    fn file_size(&self, _uri: &str) -> Result<u64, String> {
        Ok(12)
    }
}

#[test]
fn host_functions_reach_the_host() {
    let v = vars();
    let host = TestHost;
    let c = Context {
        host: Some(&host),
        ..ctx(&v)
    };
    let rd = Renderer::new();
    assert_eq!(
        rd.render("{{ json(secret('my_secret')).secretKey }}", &c)
            .unwrap(),
        "s3cr3t"
    );
    assert_eq!(
        rd.render("{{ secret('PLAIN') }}-{{ uuid() | length }}", &c)
            .unwrap(),
        "p-36"
    );
    assert!(
        rd.render("{{ secret('NOPE') }}", &c)
            .unwrap_err()
            .message
            .contains("no secret NOPE")
    );
    assert_eq!(
        rd.render("{{ kv('K').a }} {{ kv('K', namespace='other') }}", &c)
            .unwrap(),
        "1 o"
    );
    assert!(
        rd.render("{{ kv('MISSING') }}", &c)
            .unwrap_err()
            .message
            .contains("does not exist")
    );
    assert_eq!(
        rd.render("[{{ kv('MISSING', errorOnMissing=false) }}]", &c)
            .unwrap(),
        "[]"
    );
    assert_eq!(
        rd.render("{{ read('kestra:///f') }} {{ fileSize('x') }}", &c)
            .unwrap(),
        "content of kestra:///f 12"
    );
    assert_eq!(rd.eval("secret('PLAIN')", &c).unwrap(), json!("p"));
    let out = rd
        .render_value(&json!({"k": "{{ secret('PLAIN') }}"}), &c)
        .unwrap();
    assert_eq!(out, json!({"k": "p"}));
}

#[test]
fn renderer_is_send_sync_and_caches() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Renderer>();
    let v = vars();
    let rd = Renderer::new();
    for _ in 0..3 {
        assert_eq!(rd.render("{{ flow.id }}", &ctx(&v)).unwrap(), "hello");
    }
}

#[test]
fn registered_names_match_the_parser() {
    let rd = Renderer::new();
    let env = rd.env().unwrap();
    for f in names::FILTERS {
        let src = format!("{{{{ 1 | {f} }}}}");
        let res = env.render_str(&src, ());
        if let Err(e) = &res {
            assert_ne!(
                e.kind(),
                minijinja::ErrorKind::UnknownFilter,
                "filter {f} is not registered"
            );
        }
    }
    for f in names::FUNCTIONS {
        let src = format!("{{{{ {f}() }}}}");
        if let Err(e) = env.render_str(&src, ()) {
            assert_ne!(
                e.kind(),
                minijinja::ErrorKind::UnknownFunction,
                "function {f} is not registered"
            );
        }
    }
}

/// Expressions of the shapes used by Kestra's own test flows: `check` accepts them all, and
/// with a plausible context they evaluate as Kestra would.
#[test]
fn kestra_flow_expressions() {
    let accepted = [
        "{{ currentEachOutput(outputs['1-1-1_output']).value }}",
        "{{ outputs['1-1-1_output'][parents[1].taskrun.value][parents[0].taskrun.value][taskrun.value].value }}",
        "{{ outputs['1-2-1_return'].s1['a a'].value }}",
        "{%- for log in errorLogs() -%}{{ log.taskId }}: {{ log.message }}{%- endfor -%}",
        "{{ taskrun.value is json }}",
        "{{ parent.taskrun.value | jq('.key') }}",
        "{{ outputs.second.s1.s2.s3.uris['out/stay.txt'] }}",
        "{{ trigger | json }}",
        "{{envs.test1}}",
        "{{ outputs.output_values.values.count == '-5'}}",
        "{{ inputs.failed == 'true' ? ko: taskrun.id }}",
        "{{ render(vars.third) }}",
    ];
    for t in accepted {
        assert!(check(t).is_ok(), "{t}: {:?}", check(t));
    }
    let v = json!({
        "outputs": {"output_values": {"values": {"count": "-5"}}, "only": {"value": "x"},
                    "1-1_return": {"v1": {"value": "r1"}}},
        "taskrun": {"value": "v1", "id": "tr", "attemptsCount": 3},
        "parent": {"taskrun": {"value": "{\"key\": \"k\", \"value\": 1}"}},
        "inputs": {"failed": "false"},
        "labels": {"some": "label", "system": {"correlationId": "c1"}},
        "trigger": {"body": {"hello": "world"}},
        "globals": {"nested": {"int": 1}},
    });
    let rd = Renderer::new();
    let c = ctx(&v);
    let cases = [
        ("{{ outputs.output_values.values.count == '-5'}}", "true"),
        ("{{ outputs['1-1_return'][taskrun.value].value }}", "r1"),
        ("{{ parent.taskrun.value | jq('.key') }}", r#"["k"]"#),
        ("{{ inputs.failed == 'true' ? ko: taskrun.id }}", "tr"),
        ("{{ taskrun.attemptsCount == 3 ? 'ok' : ko}}", "ok"),
        ("{{ labels.system.correlationId }}", "c1"),
        ("{{trigger.body.hello == 'world'}}", "true"),
        ("{{ trigger | json }}", r#"{"body":{"hello":"world"}}"#),
        ("{{globals.nested.int}}", "1"),
        ("{{ parent.taskrun.value is json }}", "true"),
        (
            "{% for entry in json(parent.taskrun.value) %}{{ entry.key }}{% endfor %}",
            "keyvalue",
        ),
    ];
    for (t, want) in cases {
        assert_eq!(
            rd.render(t, &c).unwrap_or_else(|e| panic!("{t}: {e}")),
            want,
            "{t}"
        );
    }
    assert!(rd.render("{{ outputs.notexists == 2 }}", &c).is_err());
}

#[test]
fn check_is_fast_on_many_strings() {
    // not a timed assertion: this only exercises the path `weft validate` takes
    let s = "{{ outputs['task-1'].value | default('x') ~ inputs.name | upper }} and {% if a ?? b %}{{ now() | date('yyyy') }}{% endif %}";
    for _ in 0..5000 {
        assert!(check(s).is_ok());
    }
}

#[test]
fn only_referenced_variables_are_needed() {
    // a variable that is never named stays out of the context, and render() still sees all
    let v = json!({"a": 1, "big": {"x": 2}, "tpl": "{{ big.x }}"});
    let rd = Renderer::new();
    assert_eq!(rd.render("{{ a }}", &ctx(&v)).unwrap(), "1");
    assert_eq!(rd.render("{{ render(tpl) }}", &ctx(&v)).unwrap(), "2");
    assert_eq!(
        rd.render_value(&json!(["{{ a }}", {"{{ big.x }}": 1}]), &ctx(&v))
            .unwrap(),
        json!(["1", {"2": 1}])
    );
    assert_eq!(rd.eval("big.x + a", &ctx(&v)).unwrap(), json!(3));
}

/// A host whose `read()` waits until the test lets it go.
struct Gate(std::sync::Mutex<mpsc::Receiver<()>>);

impl ExprHost for Gate {
    fn read(&self, uri: &str) -> Result<String, String> {
        let gate = self.0.lock().map_err(|e| e.to_string())?;
        gate.recv().map_err(|e| e.to_string())?;
        Ok(format!("read {uri}"))
    }
}

#[test]
fn a_render_waiting_on_the_host_holds_back_no_other_render() {
    let rd = Arc::new(Renderer::new());
    let (open, gate) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    // a render that calls the host, which answers only when told (as a slow storage read)
    let waiting = {
        let rd = rd.clone();
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            let v = vars();
            let host = Gate(std::sync::Mutex::new(gate));
            let c = Context {
                host: Some(&host),
                ..ctx(&v)
            };
            let out = rd.render("{{ read('kestra:///a') }}", &c);
            done_tx.send(("waiting", out)).unwrap();
        })
    };
    // meanwhile, templates never compiled before render on other threads (a new template used
    // to wait for a write lock that the waiting render's read lock held)
    for n in 0..3 {
        let rd = rd.clone();
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            let v = vars();
            let out = rd.render(&format!("{{{{ {n} + 1 }}}}-{{{{ flow.id }}}}"), &ctx(&v));
            done_tx.send(("new", out)).unwrap();
        });
    }
    let limit = std::time::Duration::from_secs(60);
    let mut rendered = Vec::new();
    for _ in 0..3 {
        let (who, out) = done.recv_timeout(limit).expect("a render was held back");
        assert_eq!(who, "new");
        rendered.push(out.unwrap());
    }
    rendered.sort();
    assert_eq!(rendered, ["1-hello", "2-hello", "3-hello"]);
    open.send(()).unwrap();
    let (who, out) = done.recv_timeout(limit).expect("the waiting render ended");
    assert_eq!(
        (who, out.unwrap().as_str()),
        ("waiting", "read kestra:///a")
    );
    waiting.join().unwrap();
}

#[test]
fn the_template_cache_starts_afresh_once_full() {
    let rd = Renderer::new();
    let v = vars();
    for n in 0..MAX_CACHED_TEMPLATES + 10 {
        let t = format!("{{{{ {n} }}}}");
        assert_eq!(rd.render(&t, &ctx(&v)).unwrap(), n.to_string());
        assert!(rd.compiled.load(Ordering::Relaxed) <= MAX_CACHED_TEMPLATES);
    }
    let env = rd.env().unwrap();
    assert!(env.templates().count() <= 10, "{}", env.templates().count());
    // a template compiled once is not compiled again
    let before = rd.compiled.load(Ordering::Relaxed);
    assert_eq!(rd.render("{{ 7 }}", &ctx(&v)).unwrap(), "7");
    assert_eq!(rd.render("{{ 7 }}", &ctx(&v)).unwrap(), "7");
    assert_eq!(rd.compiled.load(Ordering::Relaxed), before + 1);
}
