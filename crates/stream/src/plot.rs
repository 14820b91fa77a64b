//! The latency timeline: each file's latency against its injection time,
//! with the events marked, for one run or several on one figure, and
//! several such figures as panels of one image.
//!
//! Time on the x axis is seconds since the series' own first injection (or
//! first event), so that runs made at different moments line up. Every
//! file is a dot; a line joins the worst latency of each micro-batch; each
//! event is a vertical dashed line coloured by its kind. With several
//! series on one figure, each series' events have their own dash pattern
//! and a triangle in the series' colour at the top, so that one can tell
//! whose crash is whose. A negative latency (a clock that went back) is
//! drawn below zero, not hidden; [`negative_latencies`] counts them so that
//! callers can warn. The text is drawn with DejaVu Sans, bundled in the
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

/// One figure of [`panels`]: a caption and its series.
#[derive(Debug, Clone)]
pub struct Panel<'a> {
    /// Caption above the chart.
    pub title: String,
    /// The runs drawn on it.
    pub series: Vec<Series<'a>>,
}

/// Size and look of the figure.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    /// Width in pixels (of each panel, with [`panels`]).
    pub width: u32,
    /// Height in pixels (of each panel, with [`panels`]).
    pub height: u32,
    /// Caption above the chart (with [`panels`], above them all; empty:
    /// none).
    pub title: String,
    /// Logarithmic latency axis (useful when spikes dwarf normal latency).
    pub log_y: bool,
    /// With [`panels`], how many side by side.
    pub columns: u32,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            width: 1200,
            height: 600,
            title: "latency of each file against its injection time".into(),
            log_y: false,
            columns: 2,
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
                .map(|r| (secs(r.injected_at), r.latency_ms as f64))
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

/// How many files of `series` have a negative latency (committed before
/// they were injected: a clock that went back). They are drawn below zero
/// on a linear axis, and at 1 ms on a logarithmic one.
pub fn negative_latencies(series: &[Series]) -> usize {
    series
        .iter()
        .flat_map(|s| s.records)
        .filter(|r| r.latency_ms < 0)
        .count()
}

/// Draws `series` into the PNG file `path`, `opts.width` by `opts.height`.
pub fn timeline(path: &Path, series: &[Series], opts: &PlotOptions) -> Result<(), StreamError> {
    let panel = Panel {
        title: opts.title.clone(),
        series: series.to_vec(),
    };
    render(path, &[panel], (1, 1), "", opts)
}

/// Draws each panel as its own chart, `opts.columns` side by side, into
/// the PNG file `path`; each panel is `opts.width` by `opts.height`, and
/// `opts.title` (if not empty) goes above them all.
pub fn panels(path: &Path, panels: &[Panel], opts: &PlotOptions) -> Result<(), StreamError> {
    let cols = opts.columns.clamp(1, panels.len().max(1) as u32);
    let rows = (panels.len().max(1) as u32).div_ceil(cols);
    render(path, panels, (rows, cols), &opts.title, opts)
}

const HEADING: u32 = 40;

fn render(
    path: &Path,
    panels: &[Panel],
    (rows, cols): (u32, u32),
    heading: &str,
    opts: &PlotOptions,
) -> Result<(), StreamError> {
    register_font();
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
    let extra = if heading.is_empty() { 0 } else { HEADING };
    let size = (opts.width * cols, opts.height * rows + extra);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let area = if heading.is_empty() {
        root.clone()
    } else {
        root.titled(heading, (FAMILY, 26))
            .map_err(|e| err(e.to_string()))?
    };
    let areas = area.split_evenly((rows as usize, cols as usize));
    for (panel, area) in panels.iter().zip(&areas) {
        draw_panel(area, panel, opts.log_y).map_err(err)?;
    }
    root.present().map_err(|e| err(e.to_string()))
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    log_y: bool,
) -> Result<(), String> {
    let prepared = prepare(&panel.series);
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
    let (y_min, y_max) = y_bounds(&prepared);
    if log_y {
        // Latencies of 0 ms or less cannot be drawn on a log axis: at 1 ms.
        let points: Vec<Prepared> = prepared
            .into_iter()
            .map(|mut s| {
                s.points.iter_mut().for_each(|p| p.1 = p.1.max(1.0));
                s
            })
            .collect();
        draw(
            area,
            &points,
            x_max,
            (1.0..y_max * 1.5).log_scale(),
            &panel.title,
        )
    } else {
        draw(area, &prepared, x_max, y_min..y_max, &panel.title)
    }
}

/// The latency axis of a linear panel: from 0 (or below, to show negative
/// latencies rather than clip them) to a little above the largest.
fn y_bounds(series: &[Prepared]) -> (f64, f64) {
    let latencies = || series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    (
        latencies().fold(0.0f64, f64::min) * 1.08,
        latencies().fold(10.0f64, f64::max) * 1.08,
    )
}

/// Dash and gap lengths of the event lines of the i-th series.
const DASHES: [(u32, u32); 4] = [(6, 4), (2, 3), (12, 4), (8, 3)];

fn draw<DB, Y>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    series: &[Prepared],
    x_max: f64,
    y: Y,
    title: &str,
) -> Result<(), String>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 22))
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

    let several = series.len() > 1;
    let mut kinds_seen = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let (dash, gap) = DASHES[i % DASHES.len()];
        for &(at, kind) in &s.events {
            let colour = event_colour(kind);
            let drawn = chart
                .draw_series(DashedLineSeries::new(
                    [(at, y_lo), (at, y_hi)],
                    dash,
                    gap,
                    colour.stroke_width(2),
                ))
                .map_err(e)?;
            if !kinds_seen.contains(&kind) {
                kinds_seen.push(kind);
                drawn.label(kind.label()).legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            }
            if several {
                // Whose event: a triangle of the series' colour on top,
                // one row per series so that simultaneous events show both.
                let mark = EmptyElement::at((at, y_hi))
                    + TriangleMarker::new((0, 8 + 14 * (i % 8) as i32), 7, s.colour.filled());
                chart.draw_series([mark]).map_err(e)?;
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
        let marks = if several && !s.events.is_empty() {
            " (▲ its events)"
        } else {
            ""
        };
        chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 2, colour.filled())))
            .map_err(e)?
            .label(format!("{} ({} files){marks}", s.label, s.points.len()))
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

    /// Decodes a whole PNG: (width, height, RGB pixels).
    fn decode(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
        let d = png::Decoder::new(std::fs::File::open(path).unwrap());
        let mut r = d.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let px = buf[..info.buffer_size()]
            .chunks(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect();
        (info.width, info.height, px)
    }

    fn count(px: &[[u8; 3]], c: RGBColor) -> usize {
        px.iter().filter(|p| **p == [c.0, c.1, c.2]).count()
    }

    fn crash(at: u64) -> Event {
        Event {
            at,
            kind: EventKind::Crash,
            detail: "pid 7".into(),
        }
    }

    #[test]
    fn a_timeline_is_a_png_of_the_requested_size_with_its_events_drawn() {
        let d = tempfile::tempdir().unwrap();
        let recs: Vec<_> = (0..50)
            .map(|i| LatencyRecord::new("f", 1000 + i * 100, 1020 + i * 100 + (i % 7) * 3, "w", 1))
            .collect();
        let events = [crash(3000)];
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
        let (w, h, px) = decode(&p);
        assert_eq!((w, h), (1200, 600));
        // A dashed line across the chart, not only the legend's 20 px.
        assert!(count(&px, event_colour(EventKind::Crash)) > 300);
        assert_eq!(count(&px, event_colour(EventKind::StraggleStart)), 0);
        let p = d.path().join("log.png");
        let opts = PlotOptions {
            width: 640,
            height: 480,
            log_y: true,
            ..PlotOptions::default()
        };
        timeline(&p, &s, &opts).unwrap();
        assert_eq!(decode(&p).0, 640);
    }

    #[test]
    fn panels_are_laid_out_in_columns_under_one_title() {
        let d = tempfile::tempdir().unwrap();
        let recs: Vec<_> = (0..20)
            .map(|i| LatencyRecord::new("f", i * 100, i * 100 + 15, "w", 1))
            .collect();
        let one = |t: &str| Panel {
            title: t.into(),
            series: vec![Series {
                label: "x".into(),
                records: &recs,
                events: &[],
            }],
        };
        let p = d.path().join("grid.png");
        let opts = PlotOptions {
            width: 300,
            height: 200,
            title: "all".into(),
            ..PlotOptions::default()
        };
        panels(&p, &[one("a"), one("b"), one("c")], &opts).unwrap();
        let (w, h, _) = decode(&p);
        assert_eq!((w, h), (600, 2 * 200 + HEADING));
    }

    #[test]
    fn negative_latencies_are_counted_and_below_the_axis_not_clipped() {
        let recs = [
            LatencyRecord::new("a", 1000, 1010, "w", 1),
            LatencyRecord::new("b", 1000, 950, "w", 1),
        ];
        let s = [Series {
            label: "x".into(),
            records: &recs,
            events: &[],
        }];
        assert_eq!(negative_latencies(&s), 1);
        let (lo, hi) = y_bounds(&prepare(&s));
        assert!(lo <= -50.0 && hi >= 10.0, "{lo}..{hi}");
        assert_eq!(prepare(&s)[0].points[1].1, -50.0);
    }

    #[test]
    fn with_several_series_each_events_carry_its_colour() {
        let d = tempfile::tempdir().unwrap();
        let recs: Vec<_> = (0..20)
            .map(|i| LatencyRecord::new("f", i * 100, i * 100 + 15, "w", 1))
            .collect();
        let (e1, e2) = ([crash(500)], [crash(1500)]);
        let s = [
            Series {
                label: "one".into(),
                records: &[],
                events: &e1,
            },
            Series {
                label: "two".into(),
                records: &recs,
                events: &e2,
            },
        ];
        let p = d.path().join("two.png");
        timeline(&p, &s, &PlotOptions::default()).unwrap();
        let (_, _, px) = decode(&p);
        // The first series has no files: its colour shows only in its
        // legend dot and in the triangle over its crash.
        let legend_only = {
            let p = d.path().join("one.png");
            let s = [
                Series {
                    events: &[],
                    ..s[0].clone()
                },
                s[1].clone(),
            ];
            timeline(&p, &s, &PlotOptions::default()).unwrap();
            count(&decode(&p).2, SERIES_COLOURS[0])
        };
        assert!(count(&px, SERIES_COLOURS[0]) > legend_only + 10);
    }
}
