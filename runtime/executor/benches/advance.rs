//! Micro-benchmark of `advance`: ForEach over 1,000 and 10,000 values with a Return inside
//! (sequential `concurrencyLimit: 1` and unlimited), worker results simulated, one advance per
//! result; and 40 sequential tasks. Prints figures; asserts nothing about time.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value as Json};
use weft_executor::{Effect, Event, Executor, RunTask, State, WorkerResult};
use weft_flow::Registry;
use weft_flow::expr::Renderer;

struct Figures {
    /// Mean time of one advance over the first and the last tenth of the worker results.
    first_tenth: Duration,
    last_tenth: Duration,
    task_runs: usize,
    elapsed: Duration,
    json_bytes: usize,
    state: State,
}

fn run(src: &str) -> Figures {
    let flow = weft_flow::parse_flow(src, &Registry::core()).unwrap().flow;
    let ex = Executor::new(&flow, &Registry::core(), Arc::new(Renderer::new())).unwrap();
    let mut now: DateTime<Utc> = DateTime::parse_from_rfc3339("2024-06-01T10:00:00Z")
        .unwrap()
        .to_utc();
    let mut exec = ex.create_execution(1, now);
    let mut pending: VecDeque<RunTask> = VecDeque::new();
    let absorb = |effects: Vec<Effect>, pending: &mut VecDeque<RunTask>| {
        for e in effects {
            if let Effect::RunTask(t) = e {
                pending.push_back(*t);
            }
        }
    };
    let start = Instant::now();
    absorb(
        ex.advance(&mut exec, vec![Event::Start { running: 0 }], now),
        &mut pending,
    );
    let mut laps: Vec<Duration> = Vec::new();
    while let Some(t) = pending.pop_front() {
        let lap = Instant::now();
        now += TimeDelta::milliseconds(1);
        let mut outputs = Map::new();
        outputs.insert("value".into(), t.context["taskrun"]["value"].clone());
        let r = WorkerResult {
            task_run_id: t.task_run_id,
            attempt: t.attempt,
            state: State::Success,
            outputs,
            metrics: Vec::new(),
            log_file: None,
            working_directory_outputs: Default::default(),
        };
        absorb(
            ex.advance(&mut exec, vec![Event::WorkerResult(r)], now),
            &mut pending,
        );
        laps.push(lap.elapsed());
    }
    let elapsed = start.elapsed();
    let tenth = (laps.len() / 10).max(1);
    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / u32::try_from(v.len().max(1)).unwrap();
    let first_tenth = mean(&laps[..tenth.min(laps.len())]);
    let last_tenth = mean(&laps[laps.len().saturating_sub(tenth)..]);
    let json_bytes = serde_json::to_vec(&exec).unwrap().len();
    Figures {
        first_tenth,
        last_tenth,
        task_runs: exec.task_run_list.len(),
        elapsed,
        json_bytes,
        state: exec.state.current,
    }
}

fn foreach(n: usize, limit: u32) -> String {
    let values: Vec<Json> = (0..n).map(|i| Json::String(format!("v{i}"))).collect();
    format!(
        r#"id: bench
namespace: weft.bench
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    concurrencyLimit: {limit}
    values: {}
    tasks:
      - id: ret
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ taskrun.value }}}}"
"#,
        Json::Array(values)
    )
}

fn sequential(n: usize) -> String {
    let mut s = String::from("id: bench\nnamespace: weft.bench\ntasks:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - id: t{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{{{ outputs }}}}\"\n"
        ));
    }
    s
}

fn main() {
    println!("executor advance benchmark (one advance per worker result, simulated worker)");
    println!(
        "{:<34} {:>9} {:>10} {:>12} {:>12} {:>11} {:>16}",
        "case", "taskRuns", "total ms", "runs/s", "us/taskRun", "json KiB", "us/adv 1st/last"
    );
    let mut per_run = Vec::new();
    for limit in [1u32, 0] {
        for n in [1_000usize, 10_000] {
            let f = run(&foreach(n, limit));
            assert_eq!(f.state, State::Success);
            let us = f.elapsed.as_secs_f64() * 1e6 / f.task_runs as f64;
            per_run.push((limit, n, us));
            println!(
                "{:<34} {:>9} {:>10.1} {:>12.0} {:>12.1} {:>11.1} {:>7.1}/{:<7.1}",
                format!("ForEach {n} concurrencyLimit {limit}"),
                f.task_runs,
                f.elapsed.as_secs_f64() * 1e3,
                f.task_runs as f64 / f.elapsed.as_secs_f64(),
                us,
                f.json_bytes as f64 / 1024.0,
                f.first_tenth.as_secs_f64() * 1e6,
                f.last_tenth.as_secs_f64() * 1e6
            );
        }
    }
    for limit in [1u32, 0] {
        let at = |n| {
            per_run
                .iter()
                .find(|(l, m, _)| *l == limit && *m == n)
                .map_or(0.0, |x| x.2)
        };
        println!(
            "ForEach concurrencyLimit {limit}: time per task run at 10k / at 1k = {:.2}x",
            at(10_000) / at(1_000)
        );
    }
    // 40 sequential tasks whose expressions read every output
    let reps = 20;
    let mut total = Duration::ZERO;
    let mut runs = 0;
    for _ in 0..reps {
        let f = run(&sequential(40));
        assert_eq!(f.state, State::Success);
        total += f.elapsed;
        runs += f.task_runs;
    }
    println!(
        "40 sequential tasks: {:.1} us orchestration overhead per task ({} runs, {:.2} ms per execution)",
        total.as_secs_f64() * 1e6 / runs as f64,
        reps,
        total.as_secs_f64() * 1e3 / f64::from(reps)
    );
}
