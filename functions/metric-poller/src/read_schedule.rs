//! When a tick reads a query from CloudWatch again, and what it decides on in between.
//!
//! GetMetricData is billed per metric requested ($0.01 per 1,000), whatever the number of
//! datapoints, and a 60-s metric gets at most one new datapoint a minute: re-reading every
//! query at every 10-s tick pays six reads per datapoint. So a query is read at most twice
//! per period, in half-period slots placed by its publication lag:
//!
//! - a slot starts when the next period is expected to be readable as settled (the rule of
//!   [`crate::reading`]: at the period's end for levels, a period later for sums) plus the
//!   lag observed for this query, so the first tick that can see a settled value reads it;
//! - the other slot, half a period later, refreshes the newer, filling period that a
//!   scale-out may act on early.
//!
//! Between reads a tick decides on the last read's datapoints *as of that read's end*
//! ([`Series::read_end`]), so a filling period is never extrapolated past when it was read.
//!
//! The lag is learned per query from what each read finds. A read at or after the lag
//! that finds the newest settleable period missing raises the lag past it (the next read
//! probes later, but never sooner than a quarter period after the last); the read that
//! then finds it sets the lag midway between the miss and the find; a read before the lag
//! (the half-period one) that already finds it lowers the lag to that. A shorter
//! publication is therefore learned only as far as the half-period read reveals it.

use std::collections::HashMap;

use crate::policy::Query;
use crate::reading::{Aggregation, Datapoint};

/// A lag longer than this is not publication but a metric without data (a load balancer
/// without requests publishes nothing): the slots stop moving.
const MAX_LAG_SECONDS: i64 = 900;

/// A query's datapoints as last read, and the end of the read that fetched them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub points: Vec<Datapoint>,
    /// Unix seconds: the `end` of the read; later periods were not asked for.
    pub read_end: i64,
}

#[derive(Clone, Debug)]
struct Entry {
    series: Series,
    /// Seconds after a period becomes settleable until CloudWatch is seen to have it.
    lag: i64,
    /// The period found missing at or after the lag, and how long after it became
    /// settleable it was missing.
    missing: Option<(i64, i64)>,
}

/// The last read of every query a poller reads, and when each is due again. It lives as
/// long as the poller (a warm Lambda container): a cold start reads everything once.
#[derive(Debug, Default)]
pub struct ReadCache {
    entries: HashMap<Query, Entry>,
}

/// The period of `query` and how long after its end a period settles.
fn period_and_settle(query: &Query) -> (i64, i64) {
    let period = i64::from(query.period_seconds().max(1));
    let settle = match Aggregation::of(query) {
        Aggregation::Cumulative => period,
        Aggregation::Level => 0,
    };
    (period, settle)
}

/// The half-period slot `time` falls in, for a query whose slots start `lag` after a
/// period boundary.
fn slot(time: i64, period: i64, lag: i64) -> i64 {
    let half = (period / 2).max(1);
    (time - lag).div_euclid(half)
}

impl ReadCache {
    /// Whether `query` must be read for a tick whose read would end at `end`: never read,
    /// or a new slot has begun since the last read, at least a quarter period ago.
    pub fn is_due(&self, query: &Query, end: i64) -> bool {
        self.entries.get(query).is_none_or(|entry| {
            let (period, _) = period_and_settle(query);
            let last = entry.series.read_end;
            slot(end, period, entry.lag) > slot(last, period, entry.lag) && end - last >= period / 4
        })
    }

    /// The last read of `query`.
    pub fn series(&self, query: &Query) -> Option<&Series> {
        self.entries.get(query).map(|entry| &entry.series)
    }

    /// Forgets the queries no policy asks for any more.
    pub fn retain(&mut self, mut wanted: impl FnMut(&Query) -> bool) {
        self.entries.retain(|query, _| wanted(query));
    }

    /// Records a read of `query` ending at `read_end` that returned `points`, and learns
    /// the query's lag from it.
    pub fn record(&mut self, query: &Query, points: Vec<Datapoint>, read_end: i64) {
        let (period, settle) = period_and_settle(query);
        let settleable_at = |start: i64| start + period + settle;
        let newest_settled =
            points.iter().map(|p| p.time).filter(|&start| settleable_at(start) <= read_end).max();
        let previous = self.entries.remove(query);
        let previous_newest = previous.as_ref().and_then(|entry| {
            entry
                .series
                .points
                .iter()
                .map(|p| p.time)
                .filter(|&s| settleable_at(s) <= entry.series.read_end)
                .max()
        });
        let (mut lag, mut missing) = previous.map_or((0, None), |entry| (entry.lag, entry.missing));

        if let Some(newest) = newest_settled {
            let age = read_end - settleable_at(newest);
            if previous_newest.is_none_or(|seen| newest > seen) {
                lag = match missing {
                    // Missing at or after the lag, present now: it appeared in between.
                    Some((period_start, missing_for)) if period_start == newest => (missing_for + age) / 2,
                    _ => lag.min(age),
                };
                missing = None;
            }
            let next = newest + period;
            let missing_for = read_end - settleable_at(next);
            if missing_for >= lag {
                // The next period should be readable by now and is not.
                lag = missing_for + 1;
                missing = Some((next, missing_for));
            }
        }
        let lag = lag.clamp(0, MAX_LAG_SECONDS);
        self.entries.insert(query.clone(), Entry { series: Series { points, read_end }, lag, missing });
    }

    /// The lag learned for `query`, in seconds.
    #[cfg(test)]
    fn lag(&self, query: &Query) -> Option<i64> {
        self.entries.get(query).map(|entry| entry.lag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::MetricQuery;

    fn query(stat: &str, period: i32) -> Query {
        Query::Metric(MetricQuery {
            namespace: "N".into(),
            metric_name: "M".into(),
            dimensions: Default::default(),
            stat: stat.into(),
            period_seconds: period,
        })
    }

    /// CloudWatch as the cache sees it: a period of `period` seconds starting at `start`
    /// becomes readable `publication` seconds after it ends (whole, for a vended metric).
    fn published(period: i64, publication: i64, end: i64) -> Vec<Datapoint> {
        (0..)
            .map(|i| i * period)
            .take_while(|&start| start + period + publication <= end)
            .map(|time| Datapoint { time, value: 1.0 })
            .collect()
    }

    /// Ticks every `tick` seconds from `from` to `to`, reading when due; the read times.
    fn run(
        cache: &mut ReadCache,
        query: &Query,
        period: i64,
        publication: i64,
        tick: i64,
        (from, to): (i64, i64),
    ) -> Vec<i64> {
        let mut reads = Vec::new();
        for end in (from..to).step_by(tick as usize) {
            if cache.is_due(query, end) {
                cache.record(query, published(period, publication, end), end);
                reads.push(end);
            }
        }
        reads
    }

    #[test]
    fn a_60s_metric_ticked_every_10s_is_read_twice_a_period() {
        let q = query("Average", 60);
        let mut cache = ReadCache::default();
        let reads = run(&mut cache, &q, 60, 0, 10, (0, 3600));
        // 360 ticks; the first read, then two per minute.
        assert!(reads.len() <= 2 * 60 + 1, "{} reads", reads.len());
        assert!(reads.len() >= 2 * 60 - 1, "{} reads", reads.len());
    }

    #[test]
    fn a_10s_metric_ticked_every_10s_is_read_at_every_tick() {
        let q = query("Average", 10);
        let mut cache = ReadCache::default();
        assert_eq!(run(&mut cache, &q, 10, 0, 10, (0, 600)).len(), 60);
    }

    #[test]
    fn a_vended_metric_is_read_at_the_first_tick_after_its_learned_lag() {
        // Each minute appears 45 s after it ends; ticks every 10 s.
        let q = query("Average", 60);
        let mut cache = ReadCache::default();
        run(&mut cache, &q, 60, 45, 10, (0, 1200));
        let lag = cache.lag(&q).expect("read");
        assert!((45..=50).contains(&lag), "learned lag {lag}");
        // Once learned, every new minute is read by the first tick after it appears.
        let reads = run(&mut cache, &q, 60, 45, 10, (1200, 2400));
        for minute in (1200..2400 - 60 - 50).step_by(60) {
            let readable = minute + 60 + 45;
            let first_read = reads.iter().find(|&&r| r >= readable).expect("read");
            assert!(
                *first_read < readable + 10,
                "minute {minute} read at {first_read}, readable at {readable}"
            );
        }
        assert!(reads.len() <= 2 * 20 + 1, "{} reads in 20 minutes", reads.len());
    }

    #[test]
    fn a_sum_settles_a_period_later_and_a_shorter_lag_is_learned_too() {
        let q = query("Sum", 60);
        let mut cache = ReadCache::default();
        run(&mut cache, &q, 60, 90, 10, (0, 1200));
        // Sums settle 60 s after the period ends: 90 s of publication is 30 s of lag.
        let slow = cache.lag(&q).expect("read");
        assert!((30..=40).contains(&slow), "learned lag {slow}");
        // Publication speeds up to 60 s (no lag): the half-period read sees it earlier.
        run(&mut cache, &q, 60, 60, 10, (1200, 2400));
        let fast = cache.lag(&q).expect("read");
        assert!(fast < slow && fast <= 10, "learned lag {fast} (was {slow})");
    }

    #[test]
    fn a_metric_without_data_is_still_read_twice_a_period() {
        let q = query("Sum", 60);
        let mut cache = ReadCache::default();
        let mut reads = 0;
        for end in (0..3600).step_by(10) {
            if cache.is_due(&q, end) {
                cache.record(&q, Vec::new(), end);
                reads += 1;
            }
        }
        assert!(reads <= 2 * 60 + 1, "{reads}");
    }

    #[test]
    fn the_series_keeps_the_end_of_the_read_that_fetched_it() {
        let q = query("Average", 60);
        let mut cache = ReadCache::default();
        cache.record(&q, vec![Datapoint { time: 0, value: 5.0 }], 70);
        assert!(!cache.is_due(&q, 80));
        assert_eq!(cache.series(&q).map(|s| s.read_end), Some(70));
        cache.retain(|_| false);
        assert!(cache.is_due(&q, 80), "a forgotten query is read again");
    }
}
