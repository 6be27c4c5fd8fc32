//! `autoscaler logs summarize` for people: what the logs say, read back from the datums the
//! log processor would publish (so the text, the chart and `--json` cannot disagree).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format as DateFormat;
use log_processor::Summary;
use shared::metrics::DatumValue;

/// Dimensions that break a first-level total down: the processor counts a record under its
/// first dimension (or none) and again under each of these, so totals leave them out.
const BREAKDOWNS: [&str; 3] = ["TargetGroup", "Route", "VerifyStatus"];

/// A count metric, what it counts, and the metrics of its failures (the first present).
pub struct Counted {
    pub metric: &'static str,
    pub noun: &'static str,
    pub failures: &'static [(&'static str, &'static str)],
}

pub const COUNTED: [Counted; 3] = [
    Counted {
        metric: "RequestCount",
        noun: "requests",
        failures: &[("HTTPCode_5XX_Count", "5XX"), ("ErrorCount", "errors")],
    },
    Counted {
        metric: "ConnectionCount",
        noun: "connections",
        failures: &[("TLSHandshakeFailureCount", "TLS failures")],
    },
    Counted { metric: "FlowCount", noun: "flows", failures: &[("RejectedFlowCount", "rejected")] },
];

/// The status classes' metrics, in order.
pub const STATUS_CLASSES: [(&str, &str); 4] = [
    ("HTTPCode_2XX_Count", "2XX"),
    ("HTTPCode_3XX_Count", "3XX"),
    ("HTTPCode_4XX_Count", "4XX"),
    ("HTTPCode_5XX_Count", "5XX"),
];

/// Rows per table of top dimensions.
const TOP: usize = 5;

type Dimensions = BTreeMap<String, String>;
/// One dimension set's metrics, by name.
type SetMetrics = BTreeMap<String, Series>;

/// One metric under one dimension set, per minute (Unix seconds).
#[derive(Debug, Default)]
pub struct Series {
    /// Single-value datums.
    pub counts: BTreeMap<i64, f64>,
    /// Distribution datums' (value, count) pairs; a histogram published as several datums
    /// is one list again.
    pub samples: BTreeMap<i64, Vec<(f64, f64)>>,
}

impl Series {
    pub fn total(&self) -> f64 {
        self.counts.values().sum()
    }
}

/// The datums regrouped by dimension set and metric.
#[derive(Debug, Default)]
pub struct Metrics {
    series: BTreeMap<Dimensions, SetMetrics>,
}

impl Metrics {
    pub fn new(summary: &Summary) -> Self {
        let mut metrics = Metrics::default();
        for datum in &summary.metrics {
            let series = metrics
                .series
                .entry(datum.dimensions.clone())
                .or_default()
                .entry(datum.name.clone())
                .or_default();
            match &datum.value {
                DatumValue::Single { value } => *series.counts.entry(datum.timestamp).or_default() += value,
                DatumValue::Distribution { values, counts } => series
                    .samples
                    .entry(datum.timestamp)
                    .or_default()
                    .extend(values.iter().copied().zip(counts.iter().copied())),
            }
        }
        metrics
    }

    fn first_level(&self) -> impl Iterator<Item = (&Dimensions, &SetMetrics)> {
        self.series.iter().filter(|(dims, _)| !dims.keys().any(|k| BREAKDOWNS.contains(&k.as_str())))
    }

    /// The metric over the first-level dimension sets, per minute.
    pub fn per_minute(&self, metric: &str) -> BTreeMap<i64, f64> {
        let mut total = BTreeMap::new();
        for series in self.first_level().filter_map(|(_, m)| m.get(metric)) {
            for (minute, value) in &series.counts {
                *total.entry(*minute).or_default() += value;
            }
        }
        total
    }

    pub fn total(&self, metric: &str) -> Option<f64> {
        let per_minute = self.per_minute(metric);
        (!per_minute.is_empty()).then(|| per_minute.values().sum())
    }

    /// A distribution metric's samples over the first-level dimension sets, per minute.
    pub fn samples_per_minute(&self, metric: &str) -> BTreeMap<i64, Vec<(f64, f64)>> {
        let mut all: BTreeMap<i64, Vec<(f64, f64)>> = BTreeMap::new();
        for series in self.first_level().filter_map(|(_, m)| m.get(metric)) {
            for (minute, pairs) in &series.samples {
                all.entry(*minute).or_default().extend(pairs);
            }
        }
        all
    }

    /// The distribution metrics (latencies), by name.
    pub fn latency_metrics(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .first_level()
            .flat_map(|(_, m)| m.iter().filter(|(_, s)| !s.samples.is_empty()).map(|(n, _)| n.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The first and last minutes with data.
    pub fn minutes(&self) -> Option<(i64, i64)> {
        let all = self.series.values().flat_map(|m| m.values()).flat_map(|s| {
            let first = s.counts.keys().chain(s.samples.keys()).min().copied();
            let last = s.counts.keys().chain(s.samples.keys()).max().copied();
            first.into_iter().chain(last)
        });
        all.fold(None, |range, t| match range {
            None => Some((t, t)),
            Some((a, b)) => Some((a.min(t), b.max(t))),
        })
    }

    /// The request-like counts present, in [`COUNTED`] order.
    pub fn counted(&self) -> Vec<&'static Counted> {
        COUNTED.iter().filter(|c| self.total(c.metric).is_some()).collect()
    }

    /// The HTTP requests (of dimension sets with status classes) and each class's count.
    fn status_mix(&self) -> Option<(f64, [f64; 4])> {
        let http = self.first_level().filter(|(_, m)| m.contains_key(STATUS_CLASSES[0].0));
        let mut requests = 0.0;
        let mut classes = [0.0; 4];
        let mut any = false;
        for (_, metrics) in http {
            any = true;
            requests += metrics.get("RequestCount").map_or(0.0, Series::total);
            for (i, (name, _)) in STATUS_CLASSES.iter().enumerate() {
                classes[i] += metrics.get(*name).map_or(0.0, Series::total);
            }
        }
        (any && requests > 0.0).then_some((requests, classes))
    }
}

/// p50, p90, p99 and the largest of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Percentiles {
    pub samples: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of samples given as (value, count) pairs in any order, as a
    /// histogram or a distribution datum gives them: each result is a bucket's value, so it
    /// is within the histogram's relative error (1 %) of the exact percentile of the samples
    /// recorded. `None` without samples.
    pub fn of(pairs: impl IntoIterator<Item = (f64, f64)>) -> Option<Self> {
        let mut pairs: Vec<(f64, f64)> = pairs.into_iter().filter(|(_, count)| *count > 0.0).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let samples: f64 = pairs.iter().map(|(_, count)| count).sum();
        let at = |percent: f64| {
            // Multiplied before dividing: counts are whole numbers, so 90 % of 10 is exactly 9.
            let rank = (percent * samples / 100.0).ceil().max(1.0);
            let mut seen = 0.0;
            pairs.iter().find(|(_, count)| {
                seen += count;
                seen >= rank
            })
        };
        let max = pairs.last()?.0;
        let value = |percent| at(percent).map_or(max, |(value, _)| *value);
        Some(Percentiles { samples, p50: value(50.0), p90: value(90.0), p99: value(99.0), max })
    }
}

/// `2026-11-30T12:00:00Z`.
pub fn iso8601(seconds: i64) -> String {
    DateTime::from_secs(seconds).fmt(DateFormat::DateTime).unwrap_or_else(|_| seconds.to_string())
}

/// A duration in seconds, to three significant figures: `40.2 ms`, `1.25 s`.
pub fn seconds(value: f64) -> String {
    if value == 0.0 {
        "0 ms".to_owned()
    } else if value < 1.0 {
        significant(value * 1000.0, "ms")
    } else {
        significant(value, "s")
    }
}

fn significant(value: f64, unit: &str) -> String {
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else if value >= 1.0 {
        2
    } else {
        3
    };
    format!("{value:.decimals$} {unit}")
}

/// Bytes in SI units, to three significant figures: `7.47 kB`.
fn bytes(value: f64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut scaled = value;
    let mut unit = 0;
    while scaled >= 1000.0 && unit < UNITS.len() - 1 {
        scaled /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{value} B") } else { significant(scaled, UNITS[unit]) }
}

fn percent(part: f64, whole: f64) -> String {
    format!("{:.1} %", if whole > 0.0 { 100.0 * part / whole } else { 0.0 })
}

/// `name: count` pairs, or nothing.
fn reasons(reasons: &BTreeMap<&str, u64>) -> String {
    if reasons.is_empty() {
        return String::new();
    }
    let list: Vec<String> = reasons.iter().map(|(why, n)| format!("{why}: {n}")).collect();
    format!(" ({})", list.join(", "))
}

/// The summary as text, each line ending in a newline; `width` is the terminal's, for the
/// per-minute row; `now` (Unix seconds) judges which datums CloudWatch would refuse today.
pub fn render(summary: &Summary, width: usize, now: i64) -> String {
    let metrics = Metrics::new(summary);
    let mut out = String::new();
    let format = match (summary.format, summary.records) {
        (Some(format), _) => format.name(),
        (None, 0) => "none detected",
        (None, _) => "mixed (files of different formats)",
    };
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{:<12}{format}", "format");
    let range = metrics.minutes();
    match range {
        Some((first, last)) => {
            let minutes = (last - first) / 60 + 1;
            let _ = writeln!(
                out,
                "{:<12}{} to {} ({minutes} min)",
                "time (UTC)",
                iso8601(first),
                iso8601(last + 60)
            );
        }
        None => {
            let _ = writeln!(out, "{:<12}none: no records", "time (UTC)");
        }
    }
    // An analysis totals every record whatever its age; publishing skips what CloudWatch
    // would refuse now (older than two weeks, over two hours ahead).
    let outside = shared::metrics::outside_window(&summary.metrics, now);
    if outside > 0 {
        let _ = writeln!(
            out,
            "{:<12}{outside} of {} datums fall outside CloudWatch's window now (14 days back, 2 h ahead): \
             `logs process` and the Lambda would skip them",
            "publishing",
            summary.metrics.len()
        );
    }
    let _ = writeln!(
        out,
        "{:<12}{}, malformed {}{}, skipped {}{}",
        "records",
        summary.records,
        summary.malformed,
        reasons(&summary.malformed_reasons),
        summary.skipped,
        reasons(&summary.skipped_reasons)
    );
    if summary.capped > 0 {
        let _ = writeln!(out, "{:<12}{}{}", "capped", summary.capped, reasons(&summary.capped_reasons));
    }
    let Some((first, last)) = range else { return out };
    let minutes = (last - first) / 60 + 1;
    let counted = metrics.counted();
    for c in &counted {
        let total = metrics.total(c.metric).unwrap_or_default();
        let failures = c
            .failures
            .iter()
            .filter(|(metric, _)| *metric != "HTTPCode_5XX_Count")
            .find_map(|(metric, label)| Some((label, metrics.total(metric)?)))
            .map_or(String::new(), |(label, n)| format!(" ({label} {n}, {})", percent(n, total)));
        let _ = writeln!(out, "{:<12}{total}{failures}", c.noun);
    }
    let volume: Vec<String> = [("BytesReceived", "received "), ("BytesSent", "sent "), ("Bytes", "flows ")]
        .iter()
        .filter_map(|(metric, label)| Some(format!("{label}{}", bytes(metrics.total(metric)?))))
        .collect();
    if !volume.is_empty() {
        let _ = writeln!(out, "{:<12}{}", "bytes", volume.join(", "));
    }
    if let Some(packets) = metrics.total("Packets") {
        let _ = writeln!(out, "{:<12}{packets}", "packets");
    }
    if let Some((requests, classes)) = metrics.status_mix() {
        let mut mix: Vec<String> = STATUS_CLASSES
            .iter()
            .zip(classes)
            .map(|((_, class), n)| format!("{class} {}", percent(n, requests)))
            .collect();
        let unclassified = requests - classes.iter().sum::<f64>();
        if unclassified > 0.0 {
            mix.push(format!("no class {}", percent(unclassified, requests)));
        }
        let _ = writeln!(out, "{:<12}{}", "status", mix.join(", "));
    }

    let latencies: Vec<(&str, Percentiles)> = metrics
        .latency_metrics()
        .into_iter()
        .filter_map(|name| {
            Some((name, Percentiles::of(metrics.samples_per_minute(name).into_values().flatten())?))
        })
        .collect();
    if !latencies.is_empty() {
        let name_width = latencies.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(7);
        let _ = writeln!(
            out,
            "\n{:<name_width$}  {:>8}  {:>9}  {:>9}  {:>9}  {:>9}",
            "latency", "samples", "p50", "p90", "p99", "max"
        );
        for (name, p) in &latencies {
            let _ = writeln!(
                out,
                "{name:<name_width$}  {:>8}  {:>9}  {:>9}  {:>9}  {:>9}",
                p.samples,
                seconds(p.p50),
                seconds(p.p90),
                seconds(p.p99),
                seconds(p.max)
            );
        }
    }

    for c in &counted {
        out.push('\n');
        out.push_str(&rate_row(c.noun, &metrics.per_minute(c.metric), first, minutes, width));
    }
    for table in top_tables(&metrics) {
        out.push('\n');
        out.push_str(&table);
    }
    out
}

const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A title line and a sparkline of the count per minute from `first`, in at most `width`
/// columns (several minutes to a mark, their mean, when there are more minutes); a minute
/// without any is a blank.
fn rate_row(noun: &str, per_minute: &BTreeMap<i64, f64>, first: i64, minutes: i64, width: usize) -> String {
    let columns = width.saturating_sub(2).max(10) as i64;
    let per_mark = (minutes + columns - 1) / columns;
    let marks: Vec<f64> = (0..(minutes + per_mark - 1) / per_mark)
        .map(|mark| {
            let start = first + mark * per_mark * 60;
            let end = (start + per_mark * 60).min(first + minutes * 60);
            per_minute.range(start..end).map(|(_, n)| n).sum::<f64>() / ((end - start) / 60) as f64
        })
        .collect();
    let (peak_minute, peak) =
        per_minute.iter().fold((first, 0.0), |best, (t, n)| if *n > best.1 { (*t, *n) } else { best });
    let mean = per_minute.values().sum::<f64>() / minutes as f64;
    let top = marks.iter().copied().fold(0.0, f64::max);
    let line: String = marks
        .iter()
        .map(|&n| if n == 0.0 { ' ' } else { LEVELS[((n / top * 8.0).ceil() as usize).clamp(1, 8) - 1] })
        .collect();
    let scale =
        if per_mark == 1 { "a mark a minute".to_owned() } else { format!("a mark per {per_mark} minutes") };
    // The time of day alone when the logs are all of one day.
    let peak_at = iso8601(peak_minute);
    let one_day = iso8601(first)[..10] == iso8601(first + (minutes - 1) * 60)[..10];
    let peak_at = if one_day { &peak_at[11..16] } else { &peak_at[..] };
    format!("{noun} per minute: peak {peak} at {peak_at}, mean {mean:.1}; {scale}\n  {line}\n")
}

/// The plural of a dimension, for a table's title.
fn plural(dimension: &str) -> &str {
    match dimension {
        "LoadBalancer" | "LoadBalancerName" => "load balancers",
        "TargetGroup" => "target groups",
        "Route" => "routes",
        "DistributionId" => "distributions",
        "BucketName" => "buckets",
        "EventSource" => "event sources",
        "InterfaceId" => "interfaces",
        other => other,
    }
}

/// One dimension set's totals.
struct Row {
    label: String,
    count: f64,
    failures: Option<f64>,
}

impl Row {
    fn rate(&self) -> f64 {
        self.failures.unwrap_or(0.0) / self.count.max(1.0)
    }
}

/// Per kind of dimension set (load balancers, target groups, routes...): the top ones by
/// count, and, when there are more than fit, the top ones by failure rate.
fn top_tables(metrics: &Metrics) -> Vec<String> {
    let mut kinds: BTreeMap<Vec<&str>, Vec<(&Dimensions, &SetMetrics)>> = BTreeMap::new();
    for (dims, series) in metrics.series.iter().filter(|(dims, _)| !dims.is_empty()) {
        kinds.entry(dims.keys().map(String::as_str).collect()).or_default().push((dims, series));
    }
    let mut tables = Vec::new();
    for (keys, sets) in kinds {
        let Some(counted) = COUNTED.iter().find(|c| sets.iter().any(|(_, m)| m.contains_key(c.metric)))
        else {
            continue;
        };
        let failure =
            counted.failures.iter().find(|(metric, _)| sets.iter().any(|(_, m)| m.contains_key(*metric)));
        let whole = metrics.total(counted.metric).unwrap_or_default();
        // Under one parent (one load balancer), a target group or route is named alone.
        let one_parent =
            keys.len() > 1 && sets.iter().all(|(d, _)| d.values().next() == sets[0].0.values().next());
        let mut rows: Vec<Row> = sets
            .iter()
            .map(|(dims, series)| Row {
                label: dims.values().skip(usize::from(one_parent)).cloned().collect::<Vec<_>>().join(" "),
                count: series.get(counted.metric).map_or(0.0, Series::total),
                failures: failure.map(|(metric, _)| series.get(*metric).map_or(0.0, Series::total)),
            })
            .collect();
        rows.sort_by(|a, b| b.count.total_cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
        let kind = plural(keys.last().expect("non-empty dimensions"));
        let title = match sets[0].0.values().next() {
            Some(parent) if one_parent => format!("{kind} of {parent}"),
            _ => kind.to_owned(),
        };
        let mut table = String::new();
        let fitting = rows.len().min(TOP);
        let heading = if rows.len() > TOP {
            format!("{title}, top {TOP} of {} by {}", rows.len(), counted.noun)
        } else {
            title.clone()
        };
        table.push_str(&render_rows(&heading, &rows[..fitting], counted.noun, failure, whole));
        if let Some((_, label)) = failure
            && rows.len() > TOP
        {
            rows.retain(|r| r.failures.unwrap_or(0.0) > 0.0);
            rows.sort_by(|a, b| b.rate().total_cmp(&a.rate()).then_with(|| b.count.total_cmp(&a.count)));
            rows.truncate(TOP);
            if !rows.is_empty() {
                let heading = format!("{title}, top {} by {label} rate", rows.len());
                table.push('\n');
                table.push_str(&render_rows(&heading, &rows, counted.noun, failure, whole));
            }
        }
        tables.push(table);
    }
    tables
}

fn render_rows(
    heading: &str,
    rows: &[Row],
    noun: &str,
    failure: Option<&(&str, &str)>,
    whole: f64,
) -> String {
    let width = rows.iter().map(|r| r.label.len() + 2).chain([heading.len()]).max().unwrap_or(0);
    let mut out = format!("{heading:<width$}  {noun:>11}  {:>7}", "share");
    let failure_width = failure.map_or(0, |(_, label)| label.len().max(8));
    if let Some((_, label)) = failure {
        let _ = write!(out, "  {label:>failure_width$}  {:>8}", "rate");
    }
    out.push('\n');
    for row in rows {
        let _ = write!(
            out,
            "  {:<w$}  {:>11}  {:>7}",
            row.label,
            row.count,
            percent(row.count, whole),
            w = width - 2
        );
        if let Some(failures) = row.failures {
            let _ = write!(out, "  {failures:>failure_width$}  {:>8}", percent(failures, row.count));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use shared::metrics::{Datum, Histogram, Unit};

    use super::*;

    #[test]
    fn the_summary_says_how_many_datums_cloudwatch_would_refuse_now() {
        let log = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/logs/alb.log"));
        let options =
            log_processor::ReadOptions { key: "alb.log", max_line_bytes: 1 << 20, ..Default::default() };
        let summary = log_processor::summarize(log.as_bytes(), &options).unwrap();
        // An hour after the log: all of it publishable, nothing said.
        let fresh = render(&summary, 80, 1_796_040_000 + 3600);
        assert!(!fresh.contains("publishing"), "{fresh}");
        // A month after: every datum too old, and the summary still totals every record.
        let month_later = render(&summary, 80, 1_796_040_000 + 30 * 86_400);
        let all = summary.metrics.len();
        let line = format!("publishing  {all} of {all} datums fall outside CloudWatch's window now");
        assert!(month_later.contains(&line), "{month_later}");
        assert!(month_later.contains("records     7, malformed 1"), "{month_later}");
    }

    #[test]
    fn percentiles_of_known_latencies_are_within_the_histograms_error() {
        // 1 ms to 100 ms in 1 ms steps: the k-th percentile is k ms.
        let mut histogram = Histogram::default();
        for ms in 1..=100 {
            histogram.record(f64::from(ms) / 1000.0);
        }
        let p = Percentiles::of(histogram.values_and_counts()).unwrap();
        assert_eq!(p.samples, 100.0);
        for (got, exact) in [(p.p50, 0.050), (p.p90, 0.090), (p.p99, 0.099), (p.max, 0.100)] {
            assert!((got - exact).abs() <= exact * Histogram::RELATIVE_ERROR, "{got} vs {exact}");
        }
    }

    #[test]
    fn percentiles_rank_whole_counts_exactly_in_any_order_and_split() {
        // Ten samples 1..=10: p90 is the 9th, not the 10th (90 % of 10 is exactly 9).
        let pairs: Vec<(f64, f64)> = (1..=10).rev().map(|v| (f64::from(v), 1.0)).collect();
        let p = Percentiles::of(pairs).unwrap();
        assert_eq!((p.p50, p.p90, p.p99, p.max), (5.0, 9.0, 10.0, 10.0));
        // One bucket published in two datums counts as one; zeros are samples too.
        let p = Percentiles::of([(0.0, 6.0), (2.0, 1.0), (0.5, 2.0), (2.0, 1.0)]).unwrap();
        assert_eq!((p.samples, p.p50, p.p90, p.p99, p.max), (10.0, 0.0, 2.0, 2.0, 2.0));
    }

    #[test]
    fn percentiles_of_nothing_are_none() {
        assert_eq!(Percentiles::of([]), None);
        assert_eq!(Percentiles::of([(1.0, 0.0)]), None);
    }

    fn datum(name: &str, dimensions: &[(&str, &str)], value: f64) -> Datum {
        Datum {
            name: name.into(),
            unit: Unit::Count,
            dimensions: dimensions.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
            timestamp: 1_796_040_000,
            value: DatumValue::Single { value },
        }
    }

    #[test]
    fn more_dimensions_than_fit_are_ranked_by_count_then_by_failure_rate() {
        // Seven routes: route r<i> has 10 + i requests and i 5XX, but r0 has 5 of 5.
        let mut metrics = vec![datum("RequestCount", &[("LoadBalancer", "lb")], 0.0)];
        for i in 0..7 {
            let route = [("LoadBalancer", "lb"), ("Route", &*format!("r{i}"))];
            let (requests, errors) = if i == 0 { (5.0, 5.0) } else { (10.0 + f64::from(i), f64::from(i)) };
            metrics.push(datum("RequestCount", &route, requests));
            metrics.push(datum("HTTPCode_5XX_Count", &route, errors));
        }
        let tables = top_tables(&Metrics::new(&Summary { metrics, ..Summary::default() }));
        let text = tables.concat();
        let labels = |heading: &str| -> Vec<String> {
            let rows = text.split(heading).nth(1).unwrap_or_else(|| panic!("{heading}: {text}"));
            rows.lines()
                .skip(1)
                .take_while(|l| l.starts_with("  "))
                .map(|l| l.split_whitespace().next().unwrap().to_owned())
                .collect()
        };
        assert_eq!(labels("routes of lb, top 5 of 7 by requests"), ["r6", "r5", "r4", "r3", "r2"]);
        assert_eq!(labels("routes of lb, top 5 by 5XX rate"), ["r0", "r6", "r5", "r4", "r3"]);
    }

    #[test]
    fn durations_and_bytes_read_naturally() {
        assert_eq!(
            [seconds(0.0), seconds(0.0402), seconds(0.000_5), seconds(1.25), seconds(123.4)],
            ["0 ms", "40.2 ms", "0.500 ms", "1.25 s", "123 s"]
        );
        assert_eq!([bytes(500.0), bytes(7468.0), bytes(2.5e9)], ["500 B", "7.47 kB", "2.50 GB"]);
    }

    #[test]
    fn the_rate_row_fits_the_width_and_averages_minutes_per_mark() {
        let start = 1_796_040_000;
        // 100 minutes, one request in each but the last 50, which have 3.
        let per_minute: BTreeMap<i64, f64> =
            (0..100).map(|m| (start + m * 60, if m < 50 { 1.0 } else { 3.0 })).collect();
        let row = rate_row("requests", &per_minute, start, 100, 52);
        let sparkline = row.lines().nth(1).unwrap();
        assert_eq!(sparkline, format!("  {}{}", "▃".repeat(25), "█".repeat(25)));
        assert!(
            row.starts_with("requests per minute: peak 3 at 12:50, mean 2.0; a mark per 2 minutes\n"),
            "{row}"
        );

        // Over midnight, the peak's date too.
        let late = 1_796_079_600; // 2026-11-30T23:00:00Z
        let row = rate_row("requests", &BTreeMap::from([(late + 90 * 60, 7.0)]), late, 120, 80);
        assert!(row.starts_with("requests per minute: peak 7 at 2026-12-01T00:30:00Z,"), "{row}");

        // A minute without requests is a blank.
        let per_minute = BTreeMap::from([(start, 4.0), (start + 120, 2.0)]);
        let row = rate_row("requests", &per_minute, start, 3, 80);
        assert_eq!(row.lines().nth(1).unwrap(), "  █ ▄");
    }
}
