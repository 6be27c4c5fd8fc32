//! `logs summarize --plot`: requests per minute by status class (stacked bars) above the
//! latency percentiles per minute, a panel per latency metric; SVG or PNG by extension.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::summary::{Metrics, Percentiles, STATUS_CLASSES, iso8601};

type Error = Box<dyn std::error::Error + Send + Sync>;

const WIDTH: u32 = 1200;
const COUNT_PANEL: u32 = 380;
const LATENCY_PANEL: u32 = 300;
/// The legend's column, right of each panel (never over the data).
const LEGEND_WIDTH: u32 = 150;
/// What fits across the chart at the title's size.
const TITLE_CHARS: usize = 90;
/// Above this many minutes, points are too dense for markers.
const MARKERS_UP_TO: usize = 90;

/// How a legend entry is drawn: a bar's colour or a line's.
#[derive(Clone, Copy)]
enum Key {
    Bar,
    Line,
}

/// Draws a legend down the column `area`, level with the plot below its caption.
fn legend<B: DrawingBackend>(
    area: &DrawingArea<B, Shift>,
    entries: &[(&str, RGBColor, Key)],
) -> Result<(), Error>
where
    B::ErrorType: 'static,
{
    let failed = |e: DrawingAreaErrorKind<B::ErrorType>| -> Error { e.to_string().into() };
    for (i, (label, color, key)) in entries.iter().enumerate() {
        let y = 50 + 24 * i as i32;
        match key {
            Key::Bar => area.draw(&Rectangle::new([(8, y - 7), (24, y + 7)], color.filled())),
            Key::Line => area.draw(&PathElement::new([(4, y), (28, y)], color.stroke_width(3))),
        }
        .map_err(failed)?;
        area.draw(&Text::new(label.to_string(), (36, y - 6), ("sans-serif", 16).into_font()))
            .map_err(failed)?;
    }
    Ok(())
}

/// `text`, its middle cut out to fit in `chars` (long log names differ at both ends).
fn fit(text: &str, chars: usize) -> String {
    let count = text.chars().count();
    if count <= chars {
        return text.to_owned();
    }
    let keep = (chars - 1) / 2;
    let head: String = text.chars().take(keep).collect();
    let tail: String = text.chars().skip(count - keep).collect();
    format!("{head}…{tail}")
}

/// Axis numbers with as many decimals as the axis' top needs.
fn tick(top: f64) -> impl Fn(&f64) -> String {
    let decimals = if top >= 10.0 {
        0
    } else if top >= 1.0 {
        1
    } else {
        2
    };
    move |v| format!("{v:.decimals$}")
}

/// A percentile's line.
struct Line {
    label: &'static str,
    color: RGBColor,
    width: u32,
    pick: fn(&Percentiles) -> f64,
}

/// One part of a minute's bar.
struct Segment {
    label: String,
    color: RGBColor,
    per_minute: BTreeMap<i64, f64>,
}

/// A chart file, by its extension.
pub enum Output<'a> {
    Svg(&'a Path),
    Png(&'a Path),
}

impl<'a> Output<'a> {
    /// Checked before the logs are read, so a wrong name fails at once.
    pub fn new(path: &'a Path) -> Result<Self, Error> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("svg") => Ok(Output::Svg(path)),
            Some("png") => Ok(Output::Png(path)),
            _ => Err("the plot file must end in .svg or .png".into()),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Output::Svg(path) | Output::Png(path) => path,
        }
    }
}

pub fn plot(metrics: &Metrics, title: &str, out: &Output<'_>) -> Result<(), Error> {
    let (first, last) = metrics.minutes().ok_or("no records to plot")?;
    crate::plot::register_a_font()?;
    let size = (WIDTH, COUNT_PANEL + LATENCY_PANEL * metrics.latency_metrics().len() as u32 + 40);
    let chart = Chart { metrics, first, minutes: (last - first) / 60 + 1, title };
    match out {
        Output::Svg(path) => chart.draw(SVGBackend::new(path, size).into_drawing_area()),
        Output::Png(path) => chart.draw(BitMapBackend::new(path, size).into_drawing_area()),
    }
}

struct Chart<'a> {
    metrics: &'a Metrics,
    first: i64,
    minutes: i64,
    title: &'a str,
}

impl Chart<'_> {
    /// The minute's bar segments: status classes where the log has them, else the count
    /// and its failures.
    fn segments(&self) -> Vec<Segment> {
        let metrics = self.metrics;
        let requests = metrics.per_minute("RequestCount");
        if metrics.total(STATUS_CLASSES[0].0).is_some() {
            let colors =
                [RGBColor(46, 139, 87), RGBColor(70, 130, 180), RGBColor(255, 165, 0), RGBColor(220, 20, 60)];
            let mut segments: Vec<Segment> = STATUS_CLASSES
                .iter()
                .zip(colors)
                .map(|((metric, class), color)| Segment {
                    label: (*class).to_owned(),
                    color,
                    per_minute: metrics.per_minute(metric),
                })
                .collect();
            // Requests with no class (CloudFront's 000, a TCP listener's `-`) fill the bar.
            let unclassified: BTreeMap<i64, f64> = requests
                .iter()
                .map(|(t, n)| (*t, n - segments.iter().filter_map(|s| s.per_minute.get(t)).sum::<f64>()))
                .filter(|(_, n)| *n > 0.0)
                .collect();
            if !unclassified.is_empty() {
                segments.push(Segment {
                    label: "no class".into(),
                    color: RGBColor(150, 150, 150),
                    per_minute: unclassified,
                });
            }
            return segments;
        }
        let Some(counted) = metrics.counted().into_iter().next() else { return Vec::new() };
        let total = metrics.per_minute(counted.metric);
        let failed = counted.failures.iter().find_map(|(metric, label)| {
            metrics.total(metric)?;
            Some((label, metrics.per_minute(metric)))
        });
        let Some((label, failed)) = failed else {
            return vec![Segment {
                label: counted.noun.into(),
                color: RGBColor(70, 130, 180),
                per_minute: total,
            }];
        };
        let ok = total.iter().map(|(t, n)| (*t, n - failed.get(t).copied().unwrap_or(0.0))).collect();
        vec![
            Segment { label: "ok".into(), color: RGBColor(70, 130, 180), per_minute: ok },
            Segment { label: (*label).to_owned(), color: RGBColor(220, 20, 60), per_minute: failed },
        ]
    }

    /// `HH:MM` of a position on the time axis (minutes from the first), `MM-DD HH:MM` when
    /// the logs span days.
    fn time_label(&self, x: &f64) -> String {
        let time = iso8601(self.first + (x * 60.0).round() as i64);
        if iso8601(self.first)[..10] == iso8601(self.first + (self.minutes - 1) * 60)[..10] {
            time[11..16].to_owned()
        } else {
            time[5..16].replace('T', " ")
        }
    }

    fn x_labels(&self) -> usize {
        (self.minutes as usize + 1).min(13)
    }

    fn draw<B: DrawingBackend>(&self, root: DrawingArea<B, Shift>) -> Result<(), Error>
    where
        B::ErrorType: 'static,
    {
        let failed = |e: DrawingAreaErrorKind<B::ErrorType>| -> Error { e.to_string().into() };
        root.fill(&WHITE).map_err(failed)?;
        let root = root.titled(&fit(self.title, TITLE_CHARS), ("sans-serif", 22)).map_err(failed)?;
        let (top, rest) = root.split_vertically(COUNT_PANEL);
        let (top, top_legend) = top.split_horizontally(WIDTH - LEGEND_WIDTH);
        let x_desc = format!("UTC, {}", &iso8601(self.first)[..10]);
        let x_range = 0.0..self.minutes as f64;

        let segments = self.segments();
        let stacked_max = (0..self.minutes)
            .map(|m| segments.iter().filter_map(|s| s.per_minute.get(&(self.first + m * 60))).sum::<f64>())
            .fold(1.0f64, f64::max);
        let noun = self.metrics.counted().first().map_or("records", |c| c.noun);
        let mut chart = ChartBuilder::on(&top)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .caption(format!("{noun} per minute"), ("sans-serif", 18))
            .build_cartesian_2d(x_range.clone(), 0.0..stacked_max * 1.1)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 15))
            .x_labels(self.x_labels())
            .x_label_formatter(&|x| self.time_label(x))
            // Whole numbers: a count has no halves.
            .y_labels(((stacked_max * 1.1) as usize + 1).clamp(2, 10))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .x_desc(x_desc.as_str())
            .y_desc(noun)
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(failed)?;
        // A bar's stack starts on top of the segments before it.
        let mut base = vec![0.0; self.minutes as usize];
        for segment in &segments {
            let color = segment.color;
            let bars: Vec<Rectangle<(f64, f64)>> = (0..self.minutes as usize)
                .filter_map(|m| {
                    let n = segment.per_minute.get(&(self.first + m as i64 * 60)).copied().unwrap_or(0.0);
                    let bottom = base[m];
                    base[m] += n;
                    (n > 0.0).then(|| {
                        Rectangle::new(
                            [(m as f64 + 0.08, bottom), (m as f64 + 0.92, bottom + n)],
                            color.filled(),
                        )
                    })
                })
                .collect();
            chart.draw_series(bars).map_err(failed)?;
        }
        // Top of the stack first, as the bars read.
        let keys: Vec<(&str, RGBColor, Key)> =
            segments.iter().rev().map(|s| (s.label.as_str(), s.color, Key::Bar)).collect();
        legend(&top_legend, &keys)?;

        let latencies = self.metrics.latency_metrics();
        let panels = rest.split_evenly((latencies.len().max(1), 1));
        for (name, panel) in latencies.iter().zip(&panels) {
            let (area, panel_legend) = panel.split_horizontally(WIDTH - LEGEND_WIDTH);
            let per_minute: Vec<(f64, Percentiles)> = self
                .metrics
                .samples_per_minute(name)
                .into_iter()
                .filter_map(|(t, pairs)| {
                    Some((((t - self.first) / 60) as f64 + 0.5, Percentiles::of(pairs)?))
                })
                .collect();
            let highest = per_minute.iter().map(|(_, p)| p.p99).fold(0.0f64, f64::max);
            // Milliseconds below a second: `40`, not `0.04`.
            let (scale, unit) = if highest < 1.0 { (1000.0, "ms") } else { (1.0, "s") };
            let mut chart = ChartBuilder::on(&area)
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .caption(format!("{name} percentiles per minute"), ("sans-serif", 18))
                .build_cartesian_2d(x_range.clone(), 0.0..(highest * scale * 1.1).max(f64::MIN_POSITIVE))
                .map_err(failed)?;
            chart
                .configure_mesh()
                .label_style(("sans-serif", 15))
                .axis_desc_style(("sans-serif", 15))
                .x_labels(self.x_labels())
                .x_label_formatter(&|x| self.time_label(x))
                .y_label_formatter(&tick(highest * scale))
                .x_desc(x_desc.as_str())
                .y_desc(unit)
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(failed)?;
            // Each line narrower than the one under it: where percentiles coincide (few
            // samples), all stay visible.
            let lines = [
                Line { label: "p99", color: RGBColor(220, 20, 60), width: 6, pick: |p| p.p99 },
                Line { label: "p90", color: RGBColor(255, 140, 0), width: 4, pick: |p| p.p90 },
                Line { label: "p50", color: RGBColor(70, 130, 180), width: 2, pick: |p| p.p50 },
            ];
            for &Line { color, width, pick, .. } in &lines {
                // A minute without samples breaks the line.
                let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
                let mut previous = f64::NEG_INFINITY;
                for (x, p) in &per_minute {
                    if *x - previous > 1.5 || runs.is_empty() {
                        runs.push(Vec::new());
                    }
                    runs.last_mut().expect("a run").push((*x, pick(p) * scale));
                    previous = *x;
                }
                for run in runs {
                    if per_minute.len() <= MARKERS_UP_TO {
                        chart
                            .draw_series(
                                run.iter().map(|point| Circle::new(*point, width + 1, color.filled())),
                            )
                            .map_err(failed)?;
                    }
                    chart.draw_series(LineSeries::new(run, color.stroke_width(width))).map_err(failed)?;
                }
            }
            let keys: Vec<(&str, RGBColor, Key)> =
                lines.iter().map(|l| (l.label, l.color, Key::Line)).collect();
            legend(&panel_legend, &keys)?;
        }
        root.present().map_err(failed)?;
        Ok(())
    }
}
