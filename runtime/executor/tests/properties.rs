//! Property tests of `advance`: random well-formed flows (Sequential, Parallel, ForEach, If,
//! Switch nested, with runnable leaves, `runIf`, `disabled`, `allowFailure`, `retry`, `errors`,
//! `finally`) answered by a random worker in a random order always terminate; every task run
//! ends terminal; no task run has two attempts running at once; replaying the same events (also
//! with a reload from JSON between every step) gives the same execution.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use common::*;
use proptest::prelude::*;
use serde_json::{Map, Value as Json, json};
use weft_executor::{Event, Execution, State};

#[derive(Debug, Clone)]
enum Node {
    Leaf {
        fail: bool,
        run_if: Option<bool>,
        disabled: bool,
        allow_failure: bool,
        retry: bool,
    },
    Seq(Vec<Node>, Vec<Node>),
    Par(Vec<Node>, u8),
    Each(Vec<Node>, u8, u8),
    If(bool, Vec<Node>, Vec<Node>),
    Switch(u8, Vec<Vec<Node>>, Vec<Node>),
}

fn leaf() -> impl Strategy<Value = Node> {
    (
        any::<bool>(),
        proptest::option::weighted(0.2, any::<bool>()),
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.2),
        proptest::bool::weighted(0.2),
    )
        .prop_map(
            |(fail, run_if, disabled, allow_failure, retry)| Node::Leaf {
                fail: fail && run_if.is_none(),
                run_if,
                disabled,
                allow_failure,
                retry,
            },
        )
}

fn node() -> impl Strategy<Value = Node> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        let list = prop::collection::vec(inner.clone(), 1..4);
        let maybe = prop::collection::vec(inner, 0..2);
        prop_oneof![
            (list.clone(), maybe.clone()).prop_map(|(t, e)| Node::Seq(t, e)),
            (list.clone(), 0u8..3).prop_map(|(t, c)| Node::Par(t, c)),
            (list.clone(), 0u8..4, 0u8..3).prop_map(|(t, n, l)| Node::Each(t, n, l)),
            (any::<bool>(), list.clone(), maybe.clone()).prop_map(|(c, t, e)| Node::If(c, t, e)),
            (0u8..3, prop::collection::vec(list.clone(), 1..3), maybe)
                .prop_map(|(v, c, d)| Node::Switch(v, c, d)),
        ]
    })
}

struct Gen {
    next: usize,
}

impl Gen {
    fn id(&mut self) -> String {
        self.next += 1;
        format!("t{}", self.next)
    }

    fn list(&mut self, nodes: &[Node]) -> Json {
        Json::Array(nodes.iter().map(|n| self.task(n)).collect())
    }

    fn task(&mut self, n: &Node) -> Json {
        let id = self.id();
        match n {
            Node::Leaf {
                fail,
                run_if,
                disabled,
                allow_failure,
                retry,
            } => {
                let mut t = json!({"id": id, "type": "io.kestra.plugin.core.debug.Return", "format": if *fail { "fail" } else { "{{ taskrun.id }}" }});
                if let Some(r) = run_if {
                    t["runIf"] = json!(if *r { "{{ true }}" } else { "false" });
                }
                if *disabled {
                    t["disabled"] = json!(true);
                }
                if *allow_failure {
                    t["allowFailure"] = json!(true);
                }
                if *retry {
                    t["retry"] = json!({"type": "constant", "interval": "PT1S", "maxAttempt": 2});
                }
                t
            }
            Node::Seq(tasks, errors) => {
                let mut t = json!({"id": id, "type": "io.kestra.plugin.core.flow.Sequential", "tasks": self.list(tasks)});
                if !errors.is_empty() {
                    t["errors"] = self.list(errors);
                }
                t
            }
            Node::Par(tasks, c) => {
                json!({"id": id, "type": "io.kestra.plugin.core.flow.Parallel", "concurrent": c, "tasks": self.list(tasks)})
            }
            Node::Each(tasks, n, limit) => {
                let values: Vec<String> = (0..*n).map(|i| format!("v{i}")).collect();
                json!({"id": id, "type": "io.kestra.plugin.core.flow.ForEach", "values": values, "concurrencyLimit": limit, "tasks": self.list(tasks)})
            }
            Node::If(c, then, els) => {
                let mut t = json!({"id": id, "type": "io.kestra.plugin.core.flow.If", "condition": if *c { "{{ 1 == 1 }}" } else { "{{ 1 == 2 }}" }, "then": self.list(then)});
                if !els.is_empty() {
                    t["else"] = self.list(els);
                }
                t
            }
            Node::Switch(v, cases, defaults) => {
                let mut m = Map::new();
                for (i, c) in cases.iter().enumerate() {
                    m.insert(format!("c{i}"), self.list(c));
                }
                let mut t = json!({"id": id, "type": "io.kestra.plugin.core.flow.Switch", "value": format!("c{v}"), "cases": m});
                if !defaults.is_empty() {
                    t["defaults"] = self.list(defaults);
                }
                t
            }
        }
    }
}

fn flow_source(tasks: &[Node], errors: &[Node], finally: &[Node]) -> String {
    let mut g = Gen { next: 0 };
    let mut f = json!({"id": "prop", "namespace": "t", "tasks": g.list(tasks)});
    if !errors.is_empty() {
        f["errors"] = g.list(errors);
    }
    if !finally.is_empty() {
        f["finally"] = g.list(finally);
    }
    f.to_string()
}

/// Drives a simulation with a random worker (choices from `picks`) to its end.
fn drive(s: &mut Sim, picks: &[u8]) {
    s.start();
    let mut i = 0usize;
    let mut pick = || {
        let p = picks.get(i % picks.len().max(1)).copied().unwrap_or(0);
        i += 1;
        p
    };
    let mut outstanding: HashSet<String> = HashSet::new();
    for t in &s.pending {
        assert!(
            outstanding.insert(t.task_run_id.clone()),
            "two attempts of one task run at once"
        );
    }
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 20_000, "did not terminate");
        if !s.pending.is_empty() {
            let k = usize::from(pick()) % s.pending.len();
            let t = s.pending.remove(k).unwrap();
            outstanding.remove(&t.task_run_id);
            let fails = t.properties.get("format") == Some(&json!("fail"));
            let state = match pick() % 8 {
                0 => State::Warning,
                1 if !fails => State::Failed,
                _ if fails => State::Failed,
                _ => State::Success,
            };
            let before = s.pending.len();
            s.answer(&t, state, value(json!(t.task_run_id)));
            for t in s.pending.iter().skip(before) {
                assert!(
                    outstanding.insert(t.task_run_id.clone()),
                    "two attempts of one task run at once"
                );
            }
        } else if s.fire_timer() {
            for t in &s.pending {
                outstanding.insert(t.task_run_id.clone());
            }
        } else {
            break;
        }
        check_one_running_attempt(&s.exec);
    }
}

fn check_one_running_attempt(exec: &Execution) {
    for r in &exec.task_run_list {
        let running = r
            .attempts
            .iter()
            .flatten()
            .filter(|a| !a.state.current.is_terminal())
            .count();
        assert!(
            running <= 1,
            "task run {} has {running} attempts running",
            r.task_id
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_flows_terminate_and_replay_identically(
        tasks in prop::collection::vec(node(), 1..4),
        errors in prop::collection::vec(leaf(), 0..2),
        finally in prop::collection::vec(leaf(), 0..2),
        picks in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let src = flow_source(&tasks, &errors, &finally);
        let mut s = Sim::new(&src);
        drive(&mut s, &picks);
        prop_assert!(s.exec.state.current.is_terminal(), "execution ended {}", s.exec.state.current);
        prop_assert_eq!(s.terminated.len(), 1);
        for r in &s.exec.task_run_list {
            prop_assert!(r.state.current.is_terminal(), "{} ended {}", r.task_id, r.state.current);
        }

        // the same events give the same execution
        let mut again = Sim::new(&src);
        for (events, now) in s.record.clone() {
            again.now = now;
            again.apply(events);
        }
        prop_assert_eq!(again.json(), s.json());

        // and so they do when the execution is reloaded from JSON before every advance
        let mut reloaded = Sim::new(&src);
        for (events, now) in s.record.clone() {
            let text = serde_json::to_string(&reloaded.exec).unwrap();
            reloaded.exec = serde_json::from_str(&text).unwrap();
            reloaded.now = now;
            reloaded.apply(events);
        }
        prop_assert_eq!(reloaded.json(), s.json());
    }

    #[test]
    fn kill_at_any_point_ends_everything_killed(
        tasks in prop::collection::vec(node(), 1..4),
        picks in prop::collection::vec(any::<u8>(), 1..32),
        at in 0usize..10,
    ) {
        let src = flow_source(&tasks, &[], &[]);
        let mut s = Sim::new(&src);
        s.start();
        for k in 0..at {
            let Some(t) = s.pending.pop_front() else { break };
            let st = if picks[k % picks.len()] % 5 == 0 { State::Failed } else { State::Success };
            s.answer(&t, st, Map::new());
        }
        let was_terminal = s.exec.state.current.is_terminal();
        s.apply(vec![Event::Kill]);
        if !was_terminal {
            prop_assert_eq!(s.exec.state.current, State::Killed);
        }
        for r in &s.exec.task_run_list {
            prop_assert!(r.state.current.is_terminal());
        }
        check_one_running_attempt(&s.exec);
    }
}
