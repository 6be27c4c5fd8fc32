//! Which datapoint of a CloudWatch series a tick may act on, and how.
//!
//! CloudWatch's newest period is usually incomplete: the current minute is still filling,
//! and a period that just ended may still receive late samples (a `Sum` of requests is
//! provisional for about a period after it ends). Acting on it as if complete reads a
//! tenth of a minute's requests as a tenth of the load and scales in. So, per query:
//!
//! - the **value** a tick decides on is the newest *settled* period: ended at or before the
//!   read's end time, and, for `Sum`/`SampleCount` (which grow as late samples arrive),
//!   ended at least one period before it;
//! - newer periods (the current one, or one still settling) give an **estimate** that may
//!   only scale out: a `Sum`/`SampleCount` scaled up by the fraction of the period elapsed,
//!   other statistics as they are;
//! - a settled period that ended more than [`STALE_PERIODS`] periods before the end time
//!   is stale: the query has no value.
//!
//! The poller and the simulator both read through [`read`].

use serde::{Deserialize, Serialize};

use crate::policy::Query;

/// A settled period older than this many periods (after its end) is stale.
pub const STALE_PERIODS: i64 = 3;
/// A partial `Sum` covering less of its period than this is too noisy to extrapolate.
const MIN_ELAPSED_FRACTION: f64 = 0.25;

/// One CloudWatch datapoint: the start of its period and the statistic's value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Datapoint {
    pub time: i64,
    pub value: f64,
}

/// How a statistic grows while its period fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    /// `Sum` and `SampleCount`: proportional to the samples seen so far.
    Cumulative,
    /// Averages, extremes, percentiles, and expressions (whose shape is unknown).
    Level,
}

impl Aggregation {
    pub fn of(query: &Query) -> Self {
        match query {
            Query::Metric(m) if m.stat == "Sum" || m.stat == "SampleCount" => Self::Cumulative,
            _ => Self::Level,
        }
    }
}

/// What a tick reads of one query.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Reading {
    /// The newest settled period's value: the only one a scale-in may follow.
    pub value: Option<f64>,
    /// Its period's start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_start: Option<i64>,
    /// An estimate from a newer, possibly incomplete period: for scaling out only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_out_estimate: Option<f64>,
    /// Settled datapoints within the lookback, oldest first (a trend's input).
    #[serde(skip)]
    pub recent: Vec<Datapoint>,
    /// Which period was used, in words.
    pub note: String,
}

/// Reads `points` (any order) of a query with period `period` and `aggregation`, as of `end`.
pub fn read(points: &[Datapoint], period: i64, aggregation: Aggregation, end: i64) -> Reading {
    let period = period.max(1);
    let settle = match aggregation {
        Aggregation::Cumulative => period,
        Aggregation::Level => 0,
    };
    let mut sorted: Vec<Datapoint> =
        points.iter().copied().filter(|p| p.value.is_finite() && p.time <= end).collect();
    sorted.sort_by_key(|p| p.time);
    sorted.dedup_by_key(|p| p.time);

    let settled = |p: &Datapoint| p.time + period + settle <= end;
    let recent: Vec<Datapoint> = sorted.iter().copied().filter(settled).collect();
    let newest = recent.last().copied().filter(|p| end - (p.time + period) <= STALE_PERIODS * period);

    // The newest unsettled period with enough of it elapsed, extrapolated to a whole
    // period if cumulative.
    let estimate = sorted.iter().rev().filter(|p| !settled(p)).find_map(|p| {
        let fraction = ((end - p.time) as f64 / period as f64).min(1.0);
        match aggregation {
            Aggregation::Level => Some((p.value, fraction)),
            Aggregation::Cumulative if fraction >= MIN_ELAPSED_FRACTION => {
                Some((p.value / fraction, fraction))
            }
            Aggregation::Cumulative => None,
        }
    });
    let note = match (newest, estimate) {
        (Some(p), None) => format!("period {} (settled)", p.time),
        (Some(p), Some((e, f))) => {
            format!(
                "period {} (settled); newer period {:.0} % elapsed -> {e:.3} (scale-out only)",
                p.time,
                f * 100.0
            )
        }
        (None, Some((e, f))) => {
            format!("no settled period; newer period {:.0} % elapsed -> {e:.3} (scale-out only)", f * 100.0)
        }
        (None, None) => "no data".into(),
    };
    Reading {
        value: newest.map(|p| p.value),
        period_start: newest.map(|p| p.time),
        scale_out_estimate: estimate.map(|(e, _)| e),
        recent,
        note,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn points(values: &[(i64, f64)]) -> Vec<Datapoint> {
        values.iter().map(|&(time, value)| Datapoint { time, value }).collect()
    }

    #[test]
    fn an_average_uses_the_newest_ended_period_and_the_current_one_only_to_scale_out() {
        let r = read(&points(&[(0, 40.0), (60, 50.0), (120, 90.0)]), 60, Aggregation::Level, 150);
        assert_eq!((r.value, r.period_start, r.scale_out_estimate), (Some(50.0), Some(60), Some(90.0)));
        assert!(r.note.contains("scale-out only"), "{}", r.note);
    }

    #[test]
    fn a_partial_sum_is_scaled_by_the_elapsed_fraction_and_a_just_ended_one_is_not_settled() {
        // 10 s of a minute: 100 requests read as 600 a minute, not 100.
        let r = read(&points(&[(0, 600.0), (60, 600.0), (120, 100.0)]), 60, Aggregation::Cumulative, 130);
        assert_eq!(r.value, Some(600.0));
        assert_eq!(r.period_start, Some(0), "the period ended 10 s ago may still grow");
        assert_eq!(r.scale_out_estimate, Some(600.0));
        // Too little of a period to extrapolate.
        let r = read(&points(&[(0, 600.0), (120, 5.0)]), 60, Aggregation::Cumulative, 125);
        assert_eq!(r.scale_out_estimate, None);
    }

    #[test]
    fn sums_and_counts_settle_other_statistics_and_expressions_do_not() {
        let metric = |stat: &str| {
            Query::Metric(crate::MetricQuery {
                namespace: "N".into(),
                metric_name: "M".into(),
                dimensions: Default::default(),
                stat: stat.into(),
                period_seconds: 60,
            })
        };
        assert_eq!(Aggregation::of(&metric("Sum")), Aggregation::Cumulative);
        assert_eq!(Aggregation::of(&metric("SampleCount")), Aggregation::Cumulative);
        assert_eq!(Aggregation::of(&metric("p99")), Aggregation::Level);
        // Metric math (moto cannot evaluate it): its shape is unknown, so it is read as a level.
        let expression = Query::Expression { expression: "SUM(METRICS())".into(), period_seconds: 60 };
        assert_eq!(Aggregation::of(&expression), Aggregation::Level);
    }

    #[test]
    fn old_data_is_stale() {
        let r = read(&points(&[(0, 50.0)]), 60, Aggregation::Level, 60 + 3 * 60);
        assert_eq!(r.value, Some(50.0));
        let r = read(&points(&[(0, 50.0)]), 60, Aggregation::Level, 60 + 3 * 60 + 1);
        assert_eq!((r.value, r.note.as_str()), (None, "no data"));
    }

    proptest! {
        /// Whatever the series, the value is a settled period's, never a newer one's.
        #[test]
        fn the_value_is_always_a_settled_period(
            values in proptest::collection::vec(0.0f64..1000.0, 0..12),
            end in 0i64..900,
            cumulative in any::<bool>(),
        ) {
            let series: Vec<Datapoint> =
                values.iter().enumerate().map(|(i, &v)| Datapoint { time: i as i64 * 60, value: v }).collect();
            let aggregation = if cumulative { Aggregation::Cumulative } else { Aggregation::Level };
            let r = read(&series, 60, aggregation, end);
            if let Some(start) = r.period_start {
                let settle = if cumulative { 60 } else { 0 };
                prop_assert!(start + 60 + settle <= end);
                prop_assert_eq!(r.value, Some(series[(start / 60) as usize].value));
            }
        }
    }
}
