//! The project's own seeded load traces (closed loop: a `load` column every 10 s), for
//! the control benchmark and the simulator's tests. Loads are in units one instance
//! carries 100 of at 100 % utilization: 1,000 needs 20 instances at a 50 % target.

use super::cloudwatch::mix;
use super::trace::{Trace, TraceRow};

const STEP: i64 = 10;
const DAY: i64 = 86_400;

/// Uniform noise in [-1, 1] for row `i`.
fn noise(seed: u64, i: i64) -> f64 {
    (mix(seed ^ mix(i as u64)) % 20_001) as f64 / 10_000.0 - 1.0
}

fn trace(seconds: i64, history: i64, load: impl Fn(i64) -> f64) -> Trace {
    let mut rows = Vec::new();
    // History at 5 minutes (what a seasonal profile reads), then the run at 10 s.
    let mut t = -history;
    while t < 0 {
        rows.push(TraceRow { time: t, values: Vec::new(), load: Some(load(t)) });
        t += 300;
    }
    for t in (0..=seconds).step_by(STEP as usize) {
        rows.push(TraceRow { time: t, values: Vec::new(), load: Some(load(t)) });
    }
    Trace { metric_ids: Vec::new(), rows, has_load: true }
}

/// The benchmark's traces, by name.
pub fn all(seed: u64) -> Vec<(&'static str, Trace)> {
    vec![
        ("step", step(seed)),
        ("ramp", ramp(seed)),
        ("diurnal", diurnal(seed)),
        ("spike", spike(seed)),
        ("flash-crowd", flash_crowd(seed)),
        ("noisy", noisy(seed)),
    ]
}

/// 1,000, then ×3 at 10 min, for an hour.
pub fn step(seed: u64) -> Trace {
    trace(3600, 0, |t| (if t < 600 { 1000.0 } else { 3000.0 }) * (1.0 + 0.02 * noise(seed, t)))
}

/// 1,000, rising ×4 over 30 minutes from 10 min, then holding.
pub fn ramp(seed: u64) -> Trace {
    trace(4200, 0, |t| {
        let x = ((t - 600) as f64 / 1800.0).clamp(0.0, 1.0);
        1000.0 * (1.0 + 3.0 * x) * (1.0 + 0.02 * noise(seed, t))
    })
}

/// A day of a daily curve (400 at night, 2,400 in the afternoon, a steep morning rise),
/// with the two days before it as history.
pub fn diurnal(seed: u64) -> Trace {
    trace(DAY, 2 * DAY, |t| {
        let hour = t.rem_euclid(DAY) as f64 / 3600.0;
        // 0 at 04:00, 1 at 16:00.
        let phase = (0.5 - 0.5 * ((hour - 4.0) / 24.0 * std::f64::consts::TAU).cos()).powf(1.5);
        (400.0 + 2000.0 * phase) * (1.0 + 0.03 * noise(seed, t))
    })
}

/// 1,000, ×5 for two minutes at 15 min.
pub fn spike(seed: u64) -> Trace {
    trace(2400, 0, |t| {
        (if (900..1020).contains(&t) { 5000.0 } else { 1000.0 }) * (1.0 + 0.02 * noise(seed, t))
    })
}

/// 500, ×8 at 10 min, and it stays.
pub fn flash_crowd(seed: u64) -> Trace {
    trace(3600, 0, |t| (if t < 600 { 500.0 } else { 4000.0 }) * (1.0 + 0.02 * noise(seed, t)))
}

/// 1,000 ± 15 % every 10 s.
pub fn noisy(seed: u64) -> Trace {
    trace(3600, 0, |t| 1000.0 * (1.0 + 0.15 * noise(seed, t)))
}
