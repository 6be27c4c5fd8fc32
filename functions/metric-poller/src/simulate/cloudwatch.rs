//! CloudWatch as the poller sees it: samples aggregated into periods, each period
//! readable only after a publication lag (drawn per period from a seeded range), the
//! newest period either hidden until it is whole or visible while it fills.

use std::collections::BTreeMap;

use crate::reading::Datapoint;

/// How a metric's datapoints reach the reader.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Publication {
    /// Seconds after a period ends (or, with `partial`, after a sample is taken) until it
    /// can be read: drawn per period, uniformly in this range.
    pub lag: (i64, i64),
    /// The period being filled is readable with the samples published so far (as custom
    /// metrics are); otherwise a period appears whole, `lag` after it ends.
    pub partial: bool,
    pub seed: u64,
}

/// One sample: a period's datapoint aggregates the samples in it.
#[derive(Clone, Copy, Debug)]
struct Sample {
    time: i64,
    /// What `Average` (and other level statistics) see.
    level: f64,
    /// What `Sum` adds up, per whole period (weighted by `weight`).
    sum: f64,
    /// Instances reporting: `SampleCount` per whole period.
    count: f64,
    /// The share of one metric period this sample stands for.
    weight: f64,
    visible_at: i64,
}

/// The statistic a query asks for, as the simulator can compute it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    Average,
    Sum,
    SampleCount,
}

impl Statistic {
    /// Maximum, minimum and percentiles of identical instances equal their average.
    pub fn of(stat: &str) -> Self {
        match stat {
            "Sum" => Self::Sum,
            "SampleCount" => Self::SampleCount,
            _ => Self::Average,
        }
    }
}

/// One simulated metric.
#[derive(Clone, Debug)]
pub struct SimMetric {
    /// The metric's own period (its samples' unit of weight).
    period: i64,
    publication: Publication,
    samples: Vec<Sample>,
}

/// SplitMix64: a seeded, reproducible draw without a dependency.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A draw in `[lo, hi]` from `key`.
pub fn draw(seed: u64, key: u64, (lo, hi): (i64, i64)) -> i64 {
    if hi <= lo {
        return lo;
    }
    lo + (mix(seed ^ mix(key)) % (hi - lo + 1) as u64) as i64
}

impl SimMetric {
    pub fn new(period: i64, publication: Publication) -> Self {
        Self { period: period.max(1), publication, samples: Vec::new() }
    }

    /// Records the samples of `[time, time + seconds)`: `level` as averages see it, `sum`
    /// per whole period, from `count` instances. History (negative times) is readable at once.
    pub fn record(&mut self, time: i64, seconds: i64, level: f64, sum: f64, count: f64) {
        let period_start = time.div_euclid(self.period) * self.period;
        let lag = draw(self.publication.seed, period_start as u64, self.publication.lag);
        let visible_at = if time < 0 {
            i64::MIN
        } else if self.publication.partial {
            time + seconds + lag
        } else {
            period_start + self.period + lag
        };
        let weight = seconds as f64 / self.period as f64;
        self.samples.push(Sample { time, level, sum, count, weight, visible_at });
    }

    /// The datapoints GetMetricData would return at `now` for periods starting in
    /// `[start, end)`, at `period` (a multiple of the metric's own) and `statistic`.
    pub fn datapoints(
        &self,
        statistic: Statistic,
        period: i64,
        start: i64,
        end: i64,
        now: i64,
    ) -> Vec<Datapoint> {
        let period = period.max(self.period);
        let first = self.samples.partition_point(|s| s.time < start);
        let mut buckets: BTreeMap<i64, (f64, f64, f64, f64)> = BTreeMap::new();
        for s in self.samples[first..].iter().take_while(|s| s.time < end) {
            if s.visible_at > now {
                continue;
            }
            let bucket = buckets.entry(s.time.div_euclid(period) * period).or_default();
            bucket.0 += s.level * s.weight;
            bucket.1 += s.sum * s.weight;
            bucket.2 += s.count * s.weight;
            bucket.3 += s.weight;
        }
        buckets
            .into_iter()
            .filter(|(time, b)| b.3 > 0.0 && *time >= start.div_euclid(period) * period)
            .map(|(time, (level, sum, count, weight))| Datapoint {
                time,
                value: match statistic {
                    Statistic::Average => level / weight,
                    Statistic::Sum => sum,
                    Statistic::SampleCount => count,
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_appears_whole_after_its_lag_or_partially_while_it_fills() {
        let publication = Publication { lag: (60, 60), partial: false, seed: 1 };
        let mut m = SimMetric::new(60, publication);
        for t in (0..120).step_by(10) {
            m.record(t, 10, 50.0, 50.0 * 4.0, 4.0);
        }
        assert!(m.datapoints(Statistic::Average, 60, 0, 200, 119).is_empty());
        let at_120 = m.datapoints(Statistic::Sum, 60, 0, 200, 120);
        assert_eq!(at_120.len(), 1, "one period, after its lag");
        assert_eq!(at_120[0].time, 0);
        assert!((at_120[0].value - 200.0).abs() < 1e-9, "{at_120:?}");
        let five_minutes = m.datapoints(Statistic::Average, 300, 0, 200, 1000);
        assert_eq!(five_minutes.len(), 1);
        assert!((five_minutes[0].value - 50.0).abs() < 1e-9);

        let mut m = SimMetric::new(60, Publication { partial: true, ..publication });
        for t in (0..120).step_by(10) {
            m.record(t, 10, 50.0, 200.0, 4.0);
        }
        // At 150 s the samples up to 80 s are readable: the second period is half full.
        let points = m.datapoints(Statistic::Sum, 60, 0, 200, 150);
        assert_eq!(points.len(), 2);
        assert!((points[1].value - 100.0).abs() < 1e-9, "{points:?}");
    }

    #[test]
    fn draws_are_reproducible_and_in_range() {
        let a: Vec<i64> = (0..50).map(|k| draw(7, k, (60, 90))).collect();
        let b: Vec<i64> = (0..50).map(|k| draw(7, k, (60, 90))).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|l| (60..=90).contains(l)));
        assert!(a.iter().any(|&l| l != a[0]));
    }
}
