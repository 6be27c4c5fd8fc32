//! Forecasts: a metric's trend a few minutes ahead, and a daily or weekly profile of its
//! demand. Both only ever ask for more capacity (the engine never scales in on a forecast).

use serde::{Deserialize, Serialize};

use crate::MetricQuery;
use crate::policy::{MetricPolicy, MetricRule, Query};
use crate::reading::Datapoint;

/// A trend is fitted to the settled datapoints of the last `max(5 periods, 5 minutes)`,
/// and needs at least 3: over a shorter span, high-resolution noise reads as a trend.
const TREND_PERIODS: i64 = 5;
const TREND_MIN_SPAN_SECONDS: i64 = 300;
const TREND_MIN_POINTS: usize = 3;
/// A fit explaining less of the points' variance than this is noise, not a trend.
const TREND_MIN_R2: f64 = 0.8;

/// The metric at `at`, from a least-squares line through the newest settled datapoints
/// (their periods' midpoints). `None` without enough points, or when the line does not
/// explain them (noise must not move capacity) or does not rise.
pub fn trend(recent: &[Datapoint], period: i64, at: i64) -> Option<f64> {
    let newest = recent.last()?.time;
    let span = (TREND_PERIODS * period).max(TREND_MIN_SPAN_SECONDS);
    let points: Vec<&Datapoint> = recent.iter().filter(|p| newest - p.time < span).collect();
    if points.len() < TREND_MIN_POINTS {
        return None;
    }
    let n = points.len() as f64;
    let xs: Vec<f64> = points.iter().map(|p| (p.time + period / 2) as f64).collect();
    let mean_x = xs.iter().sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.value).sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, p) in xs.iter().zip(&points) {
        sxy += (x - mean_x) * (p.value - mean_y);
        sxx += (x - mean_x).powi(2);
        syy += (p.value - mean_y).powi(2);
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r2 = sxy * sxy / (sxx * syy);
    if slope <= 0.0 || r2 < TREND_MIN_R2 {
        return None;
    }
    Some(mean_y + slope * (at as f64 - mean_x))
}

/// A forecast is never more than this many times the newest demand: a steep line is not
/// extrapolated into an absurd fleet.
pub const TREND_MAX_GROWTH: f64 = 2.0;

/// The demand behind a metric's datapoints: for an `average` target the metric times the
/// instances in service during the period (`in_service(t)`, as the group reported it),
/// otherwise the metric itself (already a total). Points without a known capacity are
/// left out.
pub fn demand_series(
    metric: &MetricPolicy,
    points: &[Datapoint],
    period: i64,
    in_service: impl Fn(i64) -> Option<i32>,
) -> Vec<Datapoint> {
    match metric.rule {
        MetricRule::Target(crate::policy::Target::Average(_)) => points
            .iter()
            .filter_map(|p| {
                let n = in_service(p.time + period / 2)?;
                Some(Datapoint { time: p.time, value: p.value * f64::from(n) })
            })
            .collect(),
        _ => points.to_vec(),
    }
}

/// The demand at `at` from the trend of `demand` (see [`trend`]), at most
/// [`TREND_MAX_GROWTH`] times the newest.
pub fn demand_trend(demand: &[Datapoint], period: i64, at: i64) -> Option<f64> {
    let newest = demand.last()?.value;
    trend(demand, period, at).map(|f| f.min(newest * TREND_MAX_GROWTH))
}

/// The query a metric's seasonal profile is built from, and what its values are divided
/// by to give demand per metric period: the metric's `Sum` at 5 minutes over the
/// `5 min / period` datapoints it adds up (one sample per instance per period, as EC2's
/// and the load balancers' metrics publish). `None` for expressions (their period is
/// inside the expression) and step scaling.
pub fn history_query(metric: &MetricPolicy) -> Option<(Query, f64)> {
    let (Query::Metric(query), MetricRule::Target(_)) = (&metric.query, &metric.rule) else { return None };
    let period = i64::from(query.period_seconds.max(1));
    let cumulative =
        matches!(metric.rule, MetricRule::Target(crate::policy::Target::Average(_))) || query.stat == "Sum";
    if !cumulative {
        return Some((
            Query::Metric(MetricQuery { period_seconds: PROFILE_SLOT_SECONDS as i32, ..query.clone() }),
            1.0,
        ));
    }
    let history =
        MetricQuery { stat: "Sum".into(), period_seconds: PROFILE_SLOT_SECONDS as i32, ..query.clone() };
    Some((Query::Metric(history), (PROFILE_SLOT_SECONDS as f64 / period as f64).max(1.0)))
}

/// The resolution of the profile and of the history it is built from.
pub const PROFILE_SLOT_SECONDS: i64 = 300;
const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;

/// A metric's demand by time of day (or of week, given two weeks of history): the mean of
/// each 5-minute slot over the days seen. Built from up to 14 days of 5-minute history,
/// refreshed at most hourly, and kept in the poller's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// 86,400 (daily) or 604,800 (weekly).
    pub cycle_seconds: i64,
    /// One mean per slot of the cycle, to 4 significant digits (the state object that
    /// keeps it is written every tick: 288 slots a day, 2,016 a week); `None` where no
    /// history fell.
    pub slots: Vec<Option<f32>>,
    /// When it was built (the poller refreshes it at most hourly).
    pub built_at: i64,
}

impl Profile {
    /// Without one whole day of history the profile is empty (and predicts nothing until
    /// it is rebuilt an hour later).
    pub fn build(history: &[Datapoint], now: i64) -> Self {
        let span = history.iter().map(|p| now - p.time).max().unwrap_or(0);
        if span < DAY {
            return Self { cycle_seconds: DAY, slots: Vec::new(), built_at: now };
        }
        let cycle = if span >= 2 * WEEK { WEEK } else { DAY };
        let n = (cycle / PROFILE_SLOT_SECONDS) as usize;
        let mut sums = vec![(0.0, 0u32); n];
        for p in history.iter().filter(|p| p.value.is_finite() && p.time < now) {
            let slot = (p.time.rem_euclid(cycle) / PROFILE_SLOT_SECONDS) as usize;
            sums[slot].0 += p.value;
            sums[slot].1 += 1;
        }
        let slots = sums.into_iter().map(|(s, c)| (c > 0).then(|| four_digits(s / f64::from(c)))).collect();
        Self { cycle_seconds: cycle, slots, built_at: now }
    }

    /// The highest expected demand between `from` and `to` (both included).
    pub fn peak(&self, from: i64, to: i64) -> Option<f64> {
        let n = self.slots.len() as i64;
        if n == 0 {
            return None;
        }
        let first = from.div_euclid(PROFILE_SLOT_SECONDS);
        let last = to.div_euclid(PROFILE_SLOT_SECONDS).max(first);
        (first..=last)
            .filter_map(|s| {
                let slot = (s * PROFILE_SLOT_SECONDS).rem_euclid(self.cycle_seconds) / PROFILE_SLOT_SECONDS;
                self.slots[(slot % n) as usize].map(f64::from)
            })
            .reduce(f64::max)
    }

    /// Whether it should be rebuilt at `now`.
    pub fn stale(&self, now: i64) -> bool {
        now - self.built_at >= 3600
    }
}

/// `x` to 4 significant digits, as the `f32` that prints shortest.
fn four_digits(x: f64) -> f32 {
    if x == 0.0 || !x.is_finite() {
        return x as f32;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    ((x * scale).round() / scale) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_slots_keep_four_significant_digits() {
        assert_eq!(four_digits(1234.5678), 1235.0);
        assert_eq!(four_digits(0.012345678), 0.01235);
        assert_eq!(serde_json::to_string(&four_digits(2402.6666)).unwrap(), "2403.0");
    }

    fn series(values: &[f64], period: i64) -> Vec<Datapoint> {
        values.iter().enumerate().map(|(i, &v)| Datapoint { time: i as i64 * period, value: v }).collect()
    }

    #[test]
    fn a_rising_line_is_extrapolated_and_noise_or_a_fall_is_not() {
        let up = series(&[10.0, 20.0, 30.0, 40.0], 60);
        // Midpoints 30..210; at 330 the line gives 60.
        assert_eq!(trend(&up, 60, 330), Some(60.0));
        assert_eq!(trend(&series(&[40.0, 30.0, 20.0, 10.0], 60), 60, 330), None);
        assert_eq!(trend(&series(&[50.0, 10.0, 60.0, 20.0, 55.0], 60), 60, 330), None);
        assert_eq!(trend(&series(&[10.0, 20.0], 60), 60, 330), None, "too few points");
    }

    #[test]
    fn a_daily_profile_from_two_days_predicts_the_peak_ahead() {
        // Two days at 5-minute resolution: 100 except 1000 from 12:00 to 13:00.
        let history: Vec<Datapoint> = (0..2 * DAY / 300)
            .map(|i| {
                let t = i * 300;
                let hour = t.rem_euclid(DAY) / 3600;
                Datapoint { time: t, value: if hour == 12 { 1000.0 } else { 100.0 } }
            })
            .collect();
        let profile = Profile::build(&history, 2 * DAY);
        assert_eq!(profile.cycle_seconds, DAY);
        let today = 2 * DAY;
        assert_eq!(profile.peak(today + 11 * 3600, today + 11 * 3600 + 600), Some(100.0));
        assert_eq!(profile.peak(today + 11 * 3600 + 3300, today + 12 * 3600 + 100), Some(1000.0));
        assert_eq!(Profile::build(&history[..100], 100 * 300).peak(0, DAY), None, "less than a day");
        assert!(!profile.stale(today + 3599) && profile.stale(today + 3600));
    }
}
