//! Charts of a simulation: the metrics as read, the demand and each metric's target or
//! threshold (top) against each run's capacity, its changes with their reasons, and the
//! engine's forecast (bottom) over time, as SVG or PNG by the output file's extension.

use std::path::Path;

use metric_poller::policy::{GroupPolicy, MetricRule, Target};
use metric_poller::simulate::{Controller, Run};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

type Error = Box<dyn std::error::Error + Send + Sync>;

const SIZE: (u32, u32) = (1200, 700);

/// Text needs a TrueType font to be measured and drawn: `AUTOSCALER_FONT`, or a common one.
pub fn register_a_font() -> Result<(), Error> {
    const CANDIDATES: &[&str] = &[
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/System/Library/Fonts/Supplemental/Arial.ttf",
        "/Library/Fonts/Arial.ttf",
        "C:\\Windows\\Fonts\\arial.ttf",
    ];
    let chosen = std::env::var("AUTOSCALER_FONT").ok();
    let path = chosen
        .as_deref()
        .into_iter()
        .chain(CANDIDATES.iter().copied())
        .find(|p| Path::new(p).exists())
        .ok_or("plotting needs a TrueType font: set AUTOSCALER_FONT=/path/to/font.ttf")?;
    // plotters keeps registered fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(std::fs::read(path)?.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{path}: not a usable TrueType font"))?;
    Ok(())
}

pub fn plot(runs: &[Run], group: &GroupPolicy, title: &str, out: &Path) -> Result<(), Error> {
    plot_with_recorded(runs, &[], group, title, out)
}

/// [`plot`], with a group's recorded capacity (`backtest`): (time, desired, in service).
pub fn plot_with_recorded(
    runs: &[Run],
    recorded: &[(i64, i32, i32)],
    group: &GroupPolicy,
    title: &str,
    out: &Path,
) -> Result<(), Error> {
    register_a_font()?;
    match out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("svg") => {
            let mut svg = String::new();
            let area = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            let changes = draw(area, runs, recorded, group, title)?;
            // plotters has no hover text: each change's reason is a `<title>` on an invisible
            // circle over its marker, added to the finished document.
            let hovers: String = changes
                .iter()
                .map(|((x, y), reason)| {
                    format!(
                        r#"<circle cx="{x}" cy="{y}" r="8" fill="transparent"><title>{}</title></circle>"#,
                        escape(reason)
                    )
                })
                .collect();
            let end = svg.rfind("</svg>").ok_or("plotters wrote no </svg>")?;
            svg.insert_str(end, &hovers);
            std::fs::write(out, svg).map_err(|e| format!("{}: {e}", out.display()).into())
        }
        Some("png") => {
            draw(BitMapBackend::new(out, SIZE).into_drawing_area(), runs, recorded, group, title).map(drop)
        }
        _ => Err(format!("{}: the plot file must end in .svg or .png", out.display()).into()),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Each metric's target (or a step-scaling threshold) as a line's label and value.
fn targets(group: &GroupPolicy) -> Vec<(String, f64)> {
    group
        .metrics
        .iter()
        .map(|m| match &m.rule {
            MetricRule::Target(Target::Average(v)) => (format!("target {} = {v} (average)", m.id), *v),
            MetricRule::Target(Target::PerInstance(v)) => (format!("target {} = {v} per instance", m.id), *v),
            MetricRule::StepScaling(s) => (format!("threshold {} = {}", m.id, s.threshold), s.threshold),
        })
        .collect()
}

/// A line broken at gaps into segments of (time, value).
type Segments = Vec<Vec<(i64, f64)>>;

/// Splits a series at gaps (missing data) into segments to draw.
fn segments(points: impl Iterator<Item = (i64, Option<f64>)>) -> Segments {
    let mut segments = vec![Vec::new()];
    for (t, v) in points {
        match v {
            Some(v) if v.is_finite() => segments.last_mut().expect("one").push((t, v)),
            _ => segments.push(Vec::new()),
        }
    }
    segments.retain(|s| !s.is_empty());
    segments
}

/// A capacity change's marker, in pixels, and its reason.
type Change = ((i32, i32), String);

/// Draws the chart; returns where each capacity change's marker is, in pixels, with its reason.
fn draw<B: DrawingBackend>(
    root: DrawingArea<B, Shift>,
    runs: &[Run],
    recorded: &[(i64, i32, i32)],
    group: &GroupPolicy,
    title: &str,
) -> Result<Vec<Change>, Error>
where
    B::ErrorType: 'static,
{
    let failed = |e: DrawingAreaErrorKind<B::ErrorType>| -> Error { e.to_string().into() };
    root.fill(&WHITE).map_err(failed)?;
    let root = root.titled(title, ("sans-serif", 24)).map_err(failed)?;
    let (top, bottom) = root.split_vertically(SIZE.1 * 50 / 100);
    let ticks = runs.iter().flat_map(|r| &r.ticks);
    let t_end = ticks.clone().map(|t| t.time).max().unwrap_or(1).max(1);
    let t_start = ticks.clone().map(|t| t.time).min().unwrap_or(0);

    // Top: what the engine read of each metric, and the demand each run left unserved.
    let engine = runs.iter().find(|r| r.controller == Controller::Engine);
    let ids: Vec<&String> =
        engine.and_then(|r| r.ticks.first()).map(|t| t.metrics.keys().collect()).unwrap_or_default();
    let targets = targets(group);
    let metric_max = ticks
        .clone()
        .flat_map(|t| t.metrics.values().flatten().copied().chain(t.demand.filter(|d| d.is_finite())))
        .chain(targets.iter().map(|(_, v)| *v))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let mut chart = ChartBuilder::on(&top)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(t_start..t_end, 0.0..metric_max * 1.1)
        .map_err(failed)?;
    chart.configure_mesh().y_desc("metric").x_desc("seconds").draw().map_err(failed)?;
    let mut series: Vec<(String, Segments)> = Vec::new();
    if let Some(engine) = engine {
        for id in &ids {
            let read = segments(engine.ticks.iter().map(|t| (t.time, t.metrics.get(*id).copied().flatten())));
            series.push((format!("{id} (as read)"), read));
        }
    }
    for run in runs {
        let demand = segments(run.ticks.iter().map(|t| (t.time, t.demand)));
        series.push((format!("demand utilization, {}", run.controller.name()), demand));
    }
    for (i, (label, segments)) in series.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mut labelled = false;
        for points in segments {
            let drawn = chart.draw_series(LineSeries::new(points, color.stroke_width(2))).map_err(failed)?;
            if !labelled {
                drawn
                    .label(label.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
                labelled = true;
            }
        }
    }
    for (i, (label, value)) in targets.into_iter().enumerate() {
        let color = if i == 0 { BLACK } else { RGBColor(100, 100, 100) };
        chart
            .draw_series(DashedLineSeries::new(
                [(t_start, value), (t_end, value)],
                8,
                5,
                color.stroke_width(2),
            ))
            .map_err(failed)?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(failed)?;

    // Bottom: each run's desired capacity (steps), instances in service, the forecast.
    let capacity_max = ticks
        .clone()
        .map(|t| t.desired.max(t.current).max(t.forecast.unwrap_or(0)))
        .chain(recorded.iter().map(|(_, desired, in_service)| *desired.max(in_service)))
        .max()
        .unwrap_or(1)
        .max(1);
    let mut chart = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(t_start..t_end, 0..capacity_max + 1)
        .map_err(failed)?;
    chart.configure_mesh().y_desc("instances").x_desc("seconds").draw().map_err(failed)?;
    if !recorded.is_empty() {
        let steps = recorded
            .iter()
            .zip(recorded.iter().skip(1).map(|r| r.0).chain([t_end]))
            .flat_map(|(&(time, desired, _), next)| [(time, desired), (next, desired)]);
        chart
            .draw_series(LineSeries::new(steps, BLACK.stroke_width(2)))
            .map_err(failed)?
            .label("desired capacity, actual")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
        let grey = RGBColor(130, 130, 130);
        chart
            .draw_series(LineSeries::new(
                recorded.iter().map(|&(t, _, serving)| (t, serving)),
                grey.stroke_width(1),
            ))
            .map_err(failed)?
            .label("in service, actual")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], grey));
    }
    let mut hovers = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let (desired_color, service_color) = if i == 0 { (BLUE, GREEN) } else { (RED, MAGENTA) };
        let mut steps = Vec::with_capacity(run.ticks.len() * 2);
        for (j, t) in run.ticks.iter().enumerate() {
            steps.push((t.time, t.desired));
            if let Some(next) = run.ticks.get(j + 1) {
                steps.push((next.time, t.desired));
            }
        }
        let name = run.controller.name();
        chart
            .draw_series(LineSeries::new(steps, desired_color.stroke_width(2)))
            .map_err(failed)?
            .label(format!("desired capacity, {name}"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], desired_color));
        chart
            .draw_series(LineSeries::new(
                run.ticks.iter().map(|t| (t.time, t.in_service)),
                service_color.stroke_width(1),
            ))
            .map_err(failed)?
            .label(format!("in service, {name}"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], service_color));
        // A dot where the desired capacity changed, labelled with the change ("+4"): above
        // a scale-out and below a scale-in, away from the step line leading to the dot.
        let changes: Vec<_> = run.ticks.iter().filter(|t| t.desired != t.current).collect();
        chart
            .draw_series(changes.iter().map(|t| {
                EmptyElement::at((t.time, t.desired))
                    + Circle::new((0, 0), 4, desired_color.filled())
                    + Text::new(
                        format!("{:+}", t.desired - t.current),
                        (5, if t.desired > t.current { -20 } else { 6 }),
                        ("sans-serif", 13).into_font().color(&desired_color),
                    )
            }))
            .map_err(failed)?
            .label(format!("capacity change, {name}"))
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, desired_color.filled()));
        hovers.extend(changes.iter().map(|t| (chart.backend_coord(&(t.time, t.desired)), t.reason.clone())));
        let forecast: Vec<(i64, i32)> =
            run.ticks.iter().filter_map(|t| Some((t.time, t.forecast?))).collect();
        if !forecast.is_empty() {
            let color = RGBColor(255, 140, 0);
            chart
                .draw_series(forecast.into_iter().map(|p| Circle::new(p, 2, color.filled())))
                .map_err(failed)?
                .label(format!("forecast, {name}"))
                .legend(move |(x, y)| Circle::new((x + 10, y), 3, color.filled()));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(failed)?;
    root.present().map_err(failed)?;
    Ok(hovers)
}
