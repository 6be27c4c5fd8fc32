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
//!   scale-out may act on early. A query whose last few reads had no such period (a
//!   vended metric appears whole, after its period) has no use for it: it is read once a
//!   period.
//!
//! Between reads a tick decides on the last read's datapoints *as of that read's end*
//! ([`Series::read_end`]), so a filling period is never extrapolated past when it was read.
//!
//! The lag is learned per query from what each read finds. A read at or after the lag
//! that finds the newest settleable period missing raises the lag past it (the next read
//! probes later, but never sooner than a quarter period after the last); the read that
//! then finds it sets the lag midway between the miss and the find; a read that finds it
//! at once lowers the lag to that read's age, less a drift of a thirtieth of the period,
//! so that the slots creep earlier until a read misses: a shorter publication is learned,
//! at the price of an occasional probe. Misses in a row (a metric with gaps: a quiet load
//! balancer publishes no request count) space the probes out to one a period.
//!
//! A read whose answer did not include the query (a per-query error) is not recorded:
//! the query stays due, and the tick treats it as failed.

use std::collections::HashMap;

use crate::policy::Query;
use crate::reading::{Aggregation, Datapoint};

/// A lag longer than this is not publication but a metric without data (a load balancer
/// without requests publishes nothing): the slots stop moving.
const MAX_LAG_SECONDS: i64 = 900;
/// Reads in a row without a filling or settling period after which a query drops its
/// half-period read (three periods' worth).
const READS_BEFORE_ONCE_A_PERIOD: u32 = 6;

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
    /// Reads in a row that had no period newer than their newest settled one (filling, or
    /// still settling): what the half-period read refreshes.
    reads_without_unsettled: u32,
    /// Reads in a row that found the next period missing at or after the lag.
    misses: u32,
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

/// The slot `time` falls in, for a query whose slots start `lag` after a period boundary
/// and last `length`.
fn slot(time: i64, length: i64, lag: i64) -> i64 {
    (time - lag).div_euclid(length.max(1))
}

impl ReadCache {
    /// Whether `query` must be read for a tick whose read would end at `end`: never read,
    /// or a new slot has begun since the last read, at least a quarter period ago (half a
    /// period, then a period, after misses in a row), or the clock went back.
    pub fn is_due(&self, query: &Query, end: i64) -> bool {
        self.entries.get(query).is_none_or(|entry| {
            let (period, _) = period_and_settle(query);
            let length =
                if entry.reads_without_unsettled < READS_BEFORE_ONCE_A_PERIOD { period / 2 } else { period };
            let spacing = (period / 4) << entry.misses.saturating_sub(1).min(2);
            let last = entry.series.read_end;
            end < last
                || (slot(end, length, entry.lag) > slot(last, length, entry.lag) && end - last >= spacing)
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
        let (mut lag, mut missing, mut misses, reads_without_unsettled) = previous
            .map_or((0, None, 0, 0), |entry| {
                (entry.lag, entry.missing, entry.misses, entry.reads_without_unsettled)
            });

        if let Some(newest) = newest_settled {
            let age = read_end - settleable_at(newest);
            if previous_newest.is_none_or(|seen| newest > seen) {
                lag = match missing {
                    // Missing at or after the lag, present now: it appeared in between.
                    Some((period_start, missing_for)) if period_start == newest => (missing_for + age) / 2,
                    _ => lag.min(age) - (period / 30).max(1),
                };
                missing = None;
                misses = 0;
            }
            let next = newest + period;
            let missing_for = read_end - settleable_at(next);
            if missing_for >= lag {
                // The next period should be readable by now and is not.
                lag = missing_for + 1;
                missing = Some((next, missing_for));
                misses += 1;
            }
        }
        let lag = lag.clamp(0, MAX_LAG_SECONDS);
        let reads_without_unsettled = if points.iter().any(|p| settleable_at(p.time) > read_end) {
            0
        } else {
            reads_without_unsettled.saturating_add(1)
        };
        self.entries.insert(
            query.clone(),
            Entry { series: Series { points, read_end }, lag, missing, reads_without_unsettled, misses },
        );
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
    /// becomes readable `publication` seconds after it ends, whole, as a vended metric
    /// does; with no publication lag, the filling period is readable too, as a custom
    /// metric's is.
    fn published(period: i64, publication: i64, end: i64) -> Vec<Datapoint> {
        filling_after(period, publication, None, end)
    }

    /// As [`published`], and the filling period too once `first_flush` seconds of it have
    /// passed (an agent flushing its samples a while into each period).
    fn filling_after(period: i64, publication: i64, first_flush: Option<i64>, end: i64) -> Vec<Datapoint> {
        (0..)
            .map(|i| i * period)
            .take_while(|&start| {
                start + period + publication <= end || first_flush.is_some_and(|f| start + f <= end)
            })
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
    fn a_60s_metric_with_a_filling_minute_ticked_every_10s_is_read_twice_a_period() {
        // Samples flushed 5 s and 20 s into each minute, as an agent does: the read at the
        // minute's start finds none of the new minute, the half-period one does.
        for flush in [5, 20] {
            let q = query("Average", 60);
            let mut cache = ReadCache::default();
            let mut reads = 0;
            for end in (0..3600).step_by(10) {
                if cache.is_due(&q, end) {
                    cache.record(&q, filling_after(60, 0, Some(flush), end), end);
                    reads += 1;
                }
            }
            // 360 ticks; the first read, then two per minute.
            assert!((2 * 60 - 1..=2 * 60 + 1).contains(&reads), "flush at {flush} s: {reads} reads");
        }
    }

    #[test]
    fn a_vended_60s_metric_is_read_about_once_a_period() {
        let q = query("Average", 60);
        let mut cache = ReadCache::default();
        run(&mut cache, &q, 60, 45, 10, (0, 1200));
        let reads = run(&mut cache, &q, 60, 45, 10, (1200, 4800));
        assert!(reads.len() <= 75, "{} reads in 60 minutes", reads.len());
        assert!(reads.len() >= 59, "{} reads in 60 minutes", reads.len());
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
        assert!((35..=50).contains(&lag), "learned lag {lag}");
        // Once learned, a new minute is read by the first tick after it appears, or, when
        // the drift has moved the slot too early, by the probe a quarter period later.
        let reads = run(&mut cache, &q, 60, 45, 10, (1200, 2400));
        // The minutes readable at least 20 s before the run ends.
        let delays: Vec<i64> = (1200..2400 - 60 - 45 - 20)
            .step_by(60)
            .map(|minute| {
                let readable = minute + 60 + 45;
                reads.iter().find(|&&r| r >= readable).expect("read") - readable
            })
            .collect();
        assert!(delays.iter().all(|&d| d <= 20), "{delays:?}");
        let prompt = delays.iter().filter(|&&d| d < 10).count();
        assert!(prompt * 4 >= delays.len() * 3, "{delays:?}");
        assert!(reads.len() <= 25, "{} reads in 20 minutes", reads.len());
    }

    #[test]
    fn a_sum_settles_a_period_later_and_a_shorter_lag_is_learned_too() {
        let q = query("Sum", 60);
        let mut cache = ReadCache::default();
        run(&mut cache, &q, 60, 90, 10, (0, 1200));
        // Sums settle 60 s after the period ends: 90 s of publication is 30 s of lag.
        let slow = cache.lag(&q).expect("read");
        assert!((20..=40).contains(&slow), "learned lag {slow}");
        // Publication speeds up to 60 s (no lag): the half-period read sees it earlier.
        run(&mut cache, &q, 60, 60, 10, (1200, 2400));
        let fast = cache.lag(&q).expect("read");
        assert!(fast < slow && fast <= 10, "learned lag {fast} (was {slow})");
    }

    #[test]
    fn a_metric_without_data_is_read_once_a_period() {
        let q = query("Sum", 60);
        let mut cache = ReadCache::default();
        let mut reads = 0;
        for end in (0..3600).step_by(10) {
            if cache.is_due(&q, end) {
                cache.record(&q, Vec::new(), end);
                reads += 1;
            }
        }
        assert!((60..=64).contains(&reads), "{reads}");
    }

    #[test]
    fn a_metric_with_gaps_is_probed_at_most_once_a_period_while_the_gap_lasts() {
        // A Sum published 30 s after it settles, with no data between minutes 10 and 25.
        let q = query("Sum", 60);
        let mut cache = ReadCache::default();
        let gap = |p: &Datapoint| !(600..1500).contains(&p.time);
        let mut reads_in_gap = 0;
        for end in (0..1500).step_by(10) {
            if cache.is_due(&q, end) {
                let points = published(60, 90, end).into_iter().filter(gap).collect();
                cache.record(&q, points, end);
                if end >= 700 + 120 {
                    reads_in_gap += 1;
                }
            }
        }
        // 11 minutes of gap after its first misses: probes back off to one a minute.
        assert!(reads_in_gap <= 14, "{reads_in_gap} reads");
    }

    #[test]
    fn a_clock_that_went_back_reads_again() {
        let q = query("Average", 60);
        let mut cache = ReadCache::default();
        cache.record(&q, published(60, 0, 600), 600);
        assert!(!cache.is_due(&q, 605));
        assert!(cache.is_due(&q, 590));
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
