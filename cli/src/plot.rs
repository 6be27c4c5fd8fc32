//! Charts of a simulation: the metrics (top) against capacity (bottom) over time, as SVG
//! or PNG by the output file's extension.

use std::path::Path;

use metric_poller::simulate::Tick;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

type Error = Box<dyn std::error::Error + Send + Sync>;

const SIZE: (u32, u32) = (1200, 700);

/// Text needs a TrueType font to be measured and drawn: `AUTOSCALER_FONT`, or a common one.
fn register_a_font() -> Result<(), Error> {
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

pub fn plot(ticks: &[Tick], title: &str, out: &Path) -> Result<(), Error> {
    register_a_font()?;
    match out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("svg") => draw(SVGBackend::new(out, SIZE).into_drawing_area(), ticks, title),
        Some("png") => draw(BitMapBackend::new(out, SIZE).into_drawing_area(), ticks, title),
        _ => Err(format!("{}: the plot file must end in .svg or .png", out.display()).into()),
    }
}

fn draw<B: DrawingBackend>(root: DrawingArea<B, Shift>, ticks: &[Tick], title: &str) -> Result<(), Error>
where
    B::ErrorType: 'static,
{
    let failed = |e: DrawingAreaErrorKind<B::ErrorType>| -> Error { e.to_string().into() };
    root.fill(&WHITE).map_err(failed)?;
    let root = root.titled(title, ("sans-serif", 24)).map_err(failed)?;
    let (top, bottom) = root.split_vertically(SIZE.1 * 55 / 100);
    let t_end = ticks.last().map_or(1, |t| t.time.max(1));
    let t_start = ticks.first().map_or(0, |t| t.time);

    let ids: Vec<&String> = ticks.first().map(|t| t.metrics.keys().collect()).unwrap_or_default();
    let metric_max =
        ticks.iter().flat_map(|t| t.metrics.values().flatten().copied()).fold(0.0f64, f64::max).max(1.0);
    let mut chart = ChartBuilder::on(&top)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(t_start..t_end, 0.0..metric_max * 1.1)
        .map_err(failed)?;
    chart.configure_mesh().y_desc("metric").x_desc("seconds").draw().map_err(failed)?;
    for (i, id) in ids.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        // Gaps (missing data) break the line into segments.
        let mut segment: Vec<(i64, f64)> = Vec::new();
        let mut segments = Vec::new();
        for t in ticks {
            match t.metrics.get(*id).copied().flatten() {
                Some(v) => segment.push((t.time, v)),
                None => segments.push(std::mem::take(&mut segment)),
            }
        }
        segments.push(segment);
        let mut labelled = false;
        for points in segments.into_iter().filter(|s| !s.is_empty()) {
            let series = chart.draw_series(LineSeries::new(points, color.stroke_width(2))).map_err(failed)?;
            if !labelled {
                series
                    .label(id.as_str())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
                labelled = true;
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(failed)?;

    let capacity_max = ticks.iter().map(|t| t.desired.max(t.current)).max().unwrap_or(1).max(1);
    let mut chart = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(t_start..t_end, 0..capacity_max + 1)
        .map_err(failed)?;
    chart.configure_mesh().y_desc("instances").x_desc("seconds").draw().map_err(failed)?;
    // Capacity holds between ticks: draw it as steps.
    let mut steps = Vec::with_capacity(ticks.len() * 2);
    for (i, t) in ticks.iter().enumerate() {
        steps.push((t.time, t.desired));
        if let Some(next) = ticks.get(i + 1) {
            steps.push((next.time, t.desired));
        }
    }
    chart
        .draw_series(LineSeries::new(steps, BLUE.stroke_width(2)))
        .map_err(failed)?
        .label("desired capacity")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(ticks.iter().map(|t| (t.time, t.in_service)), GREEN.stroke_width(1)))
        .map_err(failed)?
        .label("in service")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], GREEN));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(failed)?;
    root.present().map_err(failed)?;
    Ok(())
}
