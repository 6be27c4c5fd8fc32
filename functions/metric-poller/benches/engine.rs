//! Engine throughput: one tick's decisions for 1,000 groups with two metrics each and a
//! full history (a 300 s down window of 10 s ticks: 30 recommendations, plus scale events).

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metric_poller::engine::{History, Observation, Recommendation, ScaleEvent, decide};
use metric_poller::policy::{PolicyFormat, parse_policy_text};

const GROUPS: usize = 1000;

fn bench_decide(c: &mut Criterion) {
    let policy = parse_policy_text(
        r#"{"groups": [{"name": "web", "metrics": [
            {"id": "cpu", "query": {"namespace": "AWS/EC2", "metric_name": "CPUUtilization"}, "target": {"average": 50}},
            {"id": "rps", "query": {"namespace": "App", "metric_name": "Requests", "stat": "Sum"}, "target": {"per_instance": 1000}}
        ]}]}"#,
        PolicyFormat::Json,
    )
    .unwrap()
    .groups
    .remove(0);
    let now = 100_000;
    let groups: Vec<(Observation, History)> = (0..GROUPS)
        .map(|i| {
            let current = 2 + (i % 50) as i32;
            let observation = Observation {
                current,
                warming: (i % 3) as i32,
                group_min: 1,
                group_max: 200,
                metrics: BTreeMap::from([
                    ("cpu".to_owned(), Some(20.0 + (i % 70) as f64)),
                    ("rps".to_owned(), Some(500.0 * f64::from(current) + (i * 37 % 900) as f64)),
                ]),
                signals: BTreeMap::new(),
            };
            let history = History {
                recommendations: (1..=30)
                    .map(|k| Recommendation { time: now - 10 * k, capacity: current + (k % 5) as i32 - 2 })
                    .collect(),
                scale_events: vec![
                    ScaleEvent { time: now - 5, change: 1 },
                    ScaleEvent { time: now - 12, change: -1 },
                ],
                consecutive_failures: 0,
                missing_since: None,
                external_changes: Vec::new(),
            };
            (observation, history)
        })
        .collect();

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(GROUPS as u64));
    group.bench_function("decide_1000_groups_2_metrics_full_history", |b| {
        b.iter(|| {
            for (observation, history) in &groups {
                black_box(decide(&policy, black_box(observation), black_box(history), now));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);
