//! Benchmark: parse and validate a generated flow of 5,000 tasks (nested flowables, expressions,
//! retries), as `weft validate` does. Prints the median and the spread of 15 runs.
//!
//! `cargo bench -p weft-flow --bench validate`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use weft_flow::Registry;

/// A flow of `n` tasks: groups of 10 tasks in Sequential/Parallel/ForEach parents.
fn generate(n: usize) -> String {
    let mut s = String::from(
        "id: big\nnamespace: weft.bench\ninputs:\n  - id: name\n    type: STRING\n    defaults: world\ntasks:\n",
    );
    let parents = [
        "io.kestra.plugin.core.flow.Sequential",
        "io.kestra.plugin.core.flow.Parallel",
        "io.kestra.plugin.core.flow.ForEach",
    ];
    let mut count = 0;
    let mut group = 0;
    while count < n {
        let parent = parents[group % parents.len()];
        writeln!(s, "  - id: group-{group}\n    type: {parent}").unwrap();
        if parent.ends_with("ForEach") {
            s.push_str("    values: [\"a\", \"b\", \"c\"]\n    concurrencyLimit: 2\n");
        }
        s.push_str("    tasks:\n");
        count += 1;
        for i in 0..9 {
            if count >= n {
                break;
            }
            if i % 2 == 0 {
                writeln!(
                    s,
                    "      - id: log-{group}-{i}\n        type: io.kestra.plugin.core.log.Log\n        message: \"Hello {{{{ inputs.name | upper }}}} from {{{{ taskrun.value ?? 'none' }}}}\"\n        timeout: PT5M"
                )
                .unwrap();
            } else {
                writeln!(
                    s,
                    "      - id: ret-{group}-{i}\n        type: io.kestra.plugin.core.debug.Return\n        format: \"{{{{ outputs['log-{group}-{}'] is defined ? 'yes' : 'no' }}}}\"\n        retry:\n          type: exponential\n          interval: PT1S\n          maxInterval: PT1M\n          maxAttempt: 3",
                    i - 1
                )
                .unwrap();
            }
            count += 1;
        }
        group += 1;
    }
    s
}

fn main() {
    let n = 5_000;
    let source = generate(n);
    let registry = Registry::core();
    let check = || {
        let parsed =
            weft_flow::parse_flow(&source, &registry).expect("the generated flow is valid");
        assert_eq!(parsed.tasks.len(), n);
    };
    check();
    let mut times: Vec<Duration> = (0..15)
        .map(|_| {
            let t = Instant::now();
            check();
            t.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "validate {n}-task flow ({} KiB): median {:.1} ms, min {:.1} ms, max {:.1} ms (15 runs)",
        source.len() / 1024,
        times[7].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[14].as_secs_f64() * 1e3
    );
}
