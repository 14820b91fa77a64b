//! The latency timeline: each file's latency against its injection time,
//! with the events marked, for one run or several on one figure.
//!
//! Time on the x axis is seconds since the series' own first injection (or
//! first event), so that runs made at different moments line up. Every
//! file is a dot; a line joins the worst latency of each micro-batch; each
//! event is a vertical dashed line coloured by its kind. The text is drawn with DejaVu Sans, bundled in the
//! crate and registered with plotters' `ab_glyph` renderer: no system font
//! (fontconfig, freetype) is needed.

use crate::{Event, EventKind, LatencyRecord, StreamError};
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::Once;

/// DejaVu Sans, see `assets/DejaVuSans-LICENSE.txt`.
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// One run on the figure.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    /// Legend text, e.g. "20 files/s".
    pub label: String,
    /// Its files.
    pub records: &'a [LatencyRecord],
    /// Its events.
    pub events: &'a [Event],
}

/// Size and look of the figure.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Caption above the chart.
    pub title: String,
    /// Logarithmic latency axis (useful when spikes dwarf normal latency).
    pub log_y: bool,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            width: 1200,
            height: 600,
            title: "latency of each file against its injection time".into(),
            log_y: false,
        }
    }
}

const SERIES_COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
];

fn event_colour(kind: EventKind) -> RGBColor {
    match kind {
        EventKind::Crash => RGBColor(214, 39, 40),
        EventKind::StraggleStart => RGBColor(255, 127, 14),
        EventKind::StraggleEnd => RGBColor(44, 160, 44),
    }
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            // The bytes are compiled in: this cannot fail at run time.
            panic!("the bundled DejaVu Sans font is not a valid font");
        }
    });
}

/// A series, in seconds and milliseconds relative to its start.
struct Prepared {
    label: String,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
    events: Vec<(f64, EventKind)>,
}

fn prepare(series: &[Series]) -> Vec<Prepared> {
    series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let t0 = s
                .records
                .iter()
                .map(|r| r.injected_at)
                .chain(s.events.iter().map(|e| e.at))
                .min()
                .unwrap_or(0);
            let secs = |ms: u64| ms.saturating_sub(t0) as f64 / 1000.0;
            let mut points: Vec<(f64, f64)> = s
                .records
                .iter()
                .map(|r| (secs(r.injected_at), r.latency_ms.max(0) as f64))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Prepared {
                label: s.label.clone(),
                colour: SERIES_COLOURS[i % SERIES_COLOURS.len()],
                points,
                events: s.events.iter().map(|e| (secs(e.at), e.kind)).collect(),
            }
        })
        .collect()
}

/// The worst latency of each micro-batch (the files injected by one call
/// share their injection time), in time order: the line joining the dots.
fn batch_maxima(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for &(t, l) in points {
        match out.last_mut() {
            Some(last) if last.0 == t => last.1 = last.1.max(l),
            _ => out.push((t, l)),
        }
    }
    out
}

/// Draws `series` into the PNG file `path`.
pub fn timeline(path: &Path, series: &[Series], opts: &PlotOptions) -> Result<(), StreamError> {
    register_font();
    let prepared = prepare(series);
    let x_max = prepared
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .map(|p| p.0)
                .chain(s.events.iter().map(|e| e.0))
        })
        .fold(1.0f64, f64::max)
        * 1.02;
    let y_max = prepared
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(10.0f64, f64::max)
        * 1.08;
    let err = |message: String| StreamError::Plot {
        path: path.to_owned(),
        message,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StreamError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    let root = BitMapBackend::new(path, (opts.width, opts.height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    if opts.log_y {
        // Latencies of 0 ms are drawn at 1 ms.
        let points: Vec<Prepared> = prepared
            .into_iter()
            .map(|mut s| {
                s.points.iter_mut().for_each(|p| p.1 = p.1.max(1.0));
                s
            })
            .collect();
        draw(&root, &points, x_max, (1.0..y_max * 1.5).log_scale(), opts)
    } else {
        draw(&root, &prepared, x_max, 0.0..y_max, opts)
    }
    .map_err(err)?;
    root.present().map_err(|e| err(e.to_string()))
}

fn draw<DB, Y>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    series: &[Prepared],
    x_max: f64,
    y: Y,
    opts: &PlotOptions,
) -> Result<(), String>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut chart = ChartBuilder::on(root)
        .caption(&opts.title, (FAMILY, 22))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, y)
        .map_err(e)?;
    let (y_lo, y_hi) = {
        let r = chart.y_range();
        (r.start, r.end)
    };
    chart
        .configure_mesh()
        .x_desc("injection time (s)")
        .y_desc("latency, injection to commit (ms)")
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(e)?;

    let mut kinds_seen = Vec::new();
    for s in series {
        for &(at, kind) in &s.events {
            let colour = event_colour(kind);
            let drawn = chart
                .draw_series(DashedLineSeries::new(
                    [(at, y_lo), (at, y_hi)],
                    6,
                    4,
                    colour.stroke_width(2),
                ))
                .map_err(e)?;
            if !kinds_seen.contains(&kind) {
                kinds_seen.push(kind);
                drawn.label(kind.label()).legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            }
        }
    }
    for s in series {
        let colour = s.colour;
        chart
            .draw_series(LineSeries::new(
                batch_maxima(&s.points),
                colour.mix(0.5).stroke_width(1),
            ))
            .map_err(e)?;
        chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 2, colour.filled())))
            .map_err(e)?
            .label(format!("{} ({} files)", s.label, s.points.len()))
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FAMILY, 14))
        .draw()
        .map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_size(path: &Path) -> (u32, u32) {
        let b = std::fs::read(path).unwrap();
        assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&b[12..16], b"IHDR");
        let be = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap());
        (be(16), be(20))
    }

    #[test]
    fn a_timeline_is_a_png_of_the_requested_size() {
        let d = tempfile::tempdir().unwrap();
        let recs: Vec<_> = (0..50)
            .map(|i| LatencyRecord::new("f", 1000 + i * 100, 1020 + i * 100 + (i % 7) * 3, "w", 1))
            .collect();
        let events = [Event {
            at: 3000,
            kind: EventKind::Crash,
            detail: "pid 7".into(),
        }];
        let s = [
            Series {
                label: "10 files/s".into(),
                records: &recs,
                events: &events,
            },
            Series {
                label: "empty".into(),
                records: &[],
                events: &[],
            },
        ];
        let p = d.path().join("sub/t.png");
        timeline(&p, &s, &PlotOptions::default()).unwrap();
        assert_eq!(png_size(&p), (1200, 600));
        let p = d.path().join("log.png");
        let opts = PlotOptions {
            width: 640,
            height: 480,
            log_y: true,
            ..PlotOptions::default()
        };
        timeline(&p, &s, &opts).unwrap();
        assert_eq!(png_size(&p), (640, 480));
    }
}
