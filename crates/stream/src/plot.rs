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
    /// The latency axis: linear, logarithmic, or chosen per panel.
    pub y_scale: YScale,
    /// With [`panels`], how many side by side.
    pub columns: u32,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            width: 1200,
            height: 600,
            title: "latency of each file against its injection time".into(),
            y_scale: YScale::Auto,
            columns: 2,
        }
    }
}

/// How the latency axis is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YScale {
    /// Logarithmic when the worst latency of a panel is more than
    /// [`LOG_WHEN`] times its median: a 5 s file after a crash and the
    /// 50 ms ones around it are then both readable, where a linear axis
    /// squashed every normal file into the bottom tenth.
    #[default]
    Auto,
    /// Linear from 0.
    Linear,
    /// Logarithmic.
    Log,
}

/// Worst over median latency above which [`YScale::Auto`] goes
/// logarithmic.
pub const LOG_WHEN: f64 = 8.0;

/// With several series on one figure, how far apart (in seconds of the x
/// axis) their dots are drawn. Files are injected in micro-batches at the
/// same instants in every run, so runs drawn at their true times lie on top
/// of each other; side by side they can be told apart. The x label says so.
const SIDE_BY_SIDE_S: f64 = 0.12;

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

pub(crate) fn register_font() {
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
    let root = crate::glyphs::Glyphs::new(BitMapBackend::new(path, size), FONT).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let area = if heading.is_empty() {
        root.clone()
    } else {
        root.titled(heading, (FAMILY, 26))
            .map_err(|e| err(e.to_string()))?
    };
    let areas = area.split_evenly((rows as usize, cols as usize));
    for (panel, area) in panels.iter().zip(&areas) {
        draw_panel(area, panel, opts.y_scale).map_err(err)?;
    }
    root.present().map_err(|e| err(e.to_string()))
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    y_scale: YScale,
) -> Result<(), String> {
    let mut prepared = prepare(&panel.series);
    let x_max = prepared
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .map(|p| p.0)
                .chain(s.events.iter().map(|e| e.0))
        })
        .fold(1.0f64, f64::max)
        * 1.02
        + SIDE_BY_SIDE_S;
    let log = match y_scale {
        YScale::Log => true,
        YScale::Linear => false,
        YScale::Auto => spiky(&prepared),
    };
    let n = prepared.len();
    if n > 1 {
        for (i, s) in prepared.iter_mut().enumerate() {
            let shift = (i as f64 - (n - 1) as f64 / 2.0) * SIDE_BY_SIDE_S;
            s.points
                .iter_mut()
                .for_each(|p| p.0 = (p.0 + shift).max(0.0));
        }
    }
    let legend = legend_entries(&prepared);
    let (chart_area, legend_area) = {
        let rows = legend_rows(area, &legend);
        let height = area.dim_in_pixel().1 as i32;
        area.split_vertically(height - LEGEND_ROW * rows as i32 - 6)
    };
    let axes = Axes {
        title: &panel.title,
        x_max,
        side_by_side: n > 1,
        log,
    };
    let (y_min, y_max) = y_bounds(&prepared);
    if log {
        // Latencies of 0 ms or less cannot be drawn on a log axis: at 1 ms.
        for s in &mut prepared {
            s.points.iter_mut().for_each(|p| p.1 = p.1.max(1.0));
        }
        let low = prepared
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(f64::INFINITY, f64::min)
            .clamp(1.0, 10.0);
        draw(
            &chart_area,
            &prepared,
            &axes,
            (low * 0.7..y_max * 2.5).log_scale(),
        )?;
    } else {
        // Headroom above the worst file for the events' triangles.
        draw(&chart_area, &prepared, &axes, y_min..y_max * 1.12)?;
    }
    draw_legend(&legend_area, &legend)
}

/// Whether the worst latency dwarfs the median (see [`YScale::Auto`]).
fn spiky(series: &[Prepared]) -> bool {
    let mut all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .collect();
    if all.is_empty() {
        return false;
    }
    all.sort_by(f64::total_cmp);
    let median = all[all.len() / 2].max(1.0);
    all[all.len() - 1] > LOG_WHEN * median
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

/// Nearest two event lines may be, in pixels: a line is 2 px wide.
const EVENT_SPACING_PX: f64 = 4.0;

/// Where each series' event lines are drawn: at their time, except that a
/// line that would fall on (or within [`EVENT_SPACING_PX`] of) the line
/// drawn before it moves right until both show. Events often coincide: a
/// crash waits for its worker to hold a task, so it fires as the next
/// micro-batch is handed out, which is when a straggling window may end; a
/// red crash line drawn over the green release hid the release (lab 3's
/// test saw no release mark). `px` is one pixel in seconds.
fn spread_events(series: &[Prepared], px: f64) -> Vec<Vec<f64>> {
    let mut lines: Vec<(f64, usize, usize)> = series
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.events.iter().enumerate().map(move |(j, e)| (e.0, i, j)))
        .collect();
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut placed: Vec<Vec<f64>> = series.iter().map(|s| vec![0.0; s.events.len()]).collect();
    let mut last = f64::NEG_INFINITY;
    for (at, i, j) in lines {
        let x = at.max(last + EVENT_SPACING_PX * px);
        placed[i][j] = x;
        last = x;
    }
    placed
}

/// What a panel's axes show.
struct Axes<'a> {
    title: &'a str,
    x_max: f64,
    /// Several series drawn side by side (see [`SIDE_BY_SIDE_S`]).
    side_by_side: bool,
    log: bool,
}

fn draw<DB, Y>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    series: &[Prepared],
    axes: &Axes,
    y: Y,
) -> Result<(), String>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut chart = ChartBuilder::on(root)
        .caption(axes.title, (FAMILY, 22))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..axes.x_max, y)
        .map_err(e)?;
    let (y_lo, y_hi) = {
        let r = chart.y_range();
        (r.start, r.end)
    };
    let x_desc = if axes.side_by_side {
        format!(
            "injection time (s); the runs' dots {:.2} s apart, side by side",
            SIDE_BY_SIDE_S
        )
    } else {
        "injection time (s)".to_string()
    };
    let y_desc = if axes.log {
        "latency, injection to commit (ms, log scale)"
    } else {
        "latency, injection to commit (ms)"
    };
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(e)?;

    let several = series.len() > 1;
    let placed = spread_events(
        series,
        axes.x_max / chart.plotting_area().dim_in_pixel().0 as f64,
    );
    for (i, s) in series.iter().enumerate() {
        let (dash, gap) = DASHES[i % DASHES.len()];
        for (&(_, kind), &at) in s.events.iter().zip(&placed[i]) {
            chart
                .draw_series(DashedLineSeries::new(
                    [(at, y_lo), (at, y_hi)],
                    dash,
                    gap,
                    event_colour(kind).stroke_width(2),
                ))
                .map_err(e)?;
            if several {
                // Whose event: a triangle of the series' colour, inside
                // the frame, one row per series so that simultaneous
                // events show both.
                let mark = EmptyElement::at((at, y_hi))
                    + TriangleMarker::new((0, 12 + 15 * (i % 8) as i32), 7, s.colour.filled());
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
        chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 2, colour.filled())))
            .map_err(e)?;
    }
    if series.iter().all(|s| s.points.is_empty()) {
        // Blank axes say nothing: say that nothing was committed.
        let plot = chart.plotting_area();
        let (w, h) = plot.dim_in_pixel();
        let style = TextStyle::from((FAMILY, 22).into_font())
            .color(&NOTE_COLOUR)
            .pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Center,
            ));
        plot.strip_coord_spec()
            .draw_text(NO_FILES, &style, (w as i32 / 2, h as i32 / 2))
            .map_err(e)?;
    }
    Ok(())
}

/// The colour of [`NO_FILES`]: not a grey, which antialiased black text
/// is made of.
const NOTE_COLOUR: RGBColor = RGBColor(150, 60, 40);

/// Written on a panel whose runs committed nothing.
pub const NO_FILES: &str = "no file committed in this run";

/// One entry of a panel's legend.
enum Mark {
    /// An event kind: a line of its colour.
    Event(EventKind),
    /// A series: a dot of its colour.
    Series(RGBColor),
}

fn legend_entries(series: &[Prepared]) -> Vec<(Mark, String)> {
    let mut out = Vec::new();
    let mut kinds: Vec<EventKind> = Vec::new();
    for s in series {
        for &(_, kind) in &s.events {
            if !kinds.contains(&kind) {
                kinds.push(kind);
                out.push((Mark::Event(kind), kind.label().to_string()));
            }
        }
    }
    let several = series.len() > 1;
    for s in series {
        let marks = if several && !s.events.is_empty() {
            " (▲ its events)"
        } else {
            ""
        };
        let text = format!("{} ({} files){marks}", s.label, s.points.len());
        out.push((Mark::Series(s.colour), text));
    }
    out
}

/// Height of one row of the legend, in pixels.
const LEGEND_ROW: i32 = 22;
/// Left edge of the legend: under the plot, past the y axis's labels.
const LEGEND_LEFT: i32 = 82;
const LEGEND_FONT: u32 = 14;

/// The legend laid out left to right and wrapped to the panel's width:
/// each entry's position as (row, x).
fn legend_layout<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(Mark, String)],
) -> Vec<(usize, i32)> {
    let width = area.dim_in_pixel().0 as i32 - 12;
    let font = TextStyle::from((FAMILY, LEGEND_FONT).into_font());
    let (mut row, mut x) = (0, LEGEND_LEFT);
    entries
        .iter()
        .map(|(_, text)| {
            let w = 28
                + area
                    .estimate_text_size(text, &font)
                    .map_or(8 * text.len() as u32, |s| s.0) as i32;
            if x + w > width && x > LEGEND_LEFT {
                row += 1;
                x = LEGEND_LEFT;
            }
            let at = (row, x);
            x += w + 22;
            at
        })
        .collect()
}

fn legend_rows<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(Mark, String)],
) -> usize {
    legend_layout(area, entries).last().map_or(0, |l| l.0 + 1)
}

/// Draws the legend under the chart, outside the data.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(Mark, String)],
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let font = (FAMILY, LEGEND_FONT).into_font();
    for ((mark, text), (row, x)) in entries.iter().zip(legend_layout(area, entries)) {
        let y = row as i32 * LEGEND_ROW + LEGEND_ROW / 2;
        match mark {
            Mark::Event(kind) => area
                .draw(&PathElement::new(
                    [(x, y), (x + 20, y)],
                    event_colour(*kind).stroke_width(2),
                ))
                .map_err(e)?,
            Mark::Series(colour) => area
                .draw(&Circle::new((x + 10, y), 4, colour.filled()))
                .map_err(e)?,
        }
        let style = TextStyle::from(font.clone()).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Left,
            plotters::style::text_anchor::VPos::Center,
        ));
        area.draw_text(text, &style, (x + 28, y)).map_err(e)?;
    }
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
            y_scale: YScale::Log,
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

    #[test]
    fn events_at_the_same_moment_are_all_drawn() {
        let d = tempfile::tempdir().unwrap();
        let recs = steady(30, 40);
        let release = Event {
            at: 2000,
            kind: EventKind::StraggleEnd,
            detail: "pid 8".into(),
        };
        // A crash in the same millisecond as the release, drawn after it.
        let events = [release.clone(), crash(2000)];
        let s = [Series {
            label: "x".into(),
            records: &recs,
            events: &events,
        }];
        let p = d.path().join("same.png");
        timeline(&p, &s, &PlotOptions::default()).unwrap();
        let (_, _, px) = decode(&p);
        let alone = {
            let p = d.path().join("alone.png");
            let events = [release];
            let s = [Series {
                events: &events,
                ..s[0].clone()
            }];
            timeline(&p, &s, &PlotOptions::default()).unwrap();
            count(&decode(&p).2, event_colour(EventKind::StraggleEnd))
        };
        let green = count(&px, event_colour(EventKind::StraggleEnd));
        assert!(alone > 300, "{alone}");
        assert!(
            green * 10 >= alone * 9,
            "the release line is hidden: {green} of {alone} px"
        );
        assert!(count(&px, event_colour(EventKind::Crash)) > 300);
    }

    fn steady(n: u64, latency: u64) -> Vec<LatencyRecord> {
        (0..n)
            .map(|i| LatencyRecord::new("f", 1000 + i * 100, 1000 + i * 100 + latency, "w", 1))
            .collect()
    }

    #[test]
    fn the_axis_goes_logarithmic_only_when_a_spike_dwarfs_the_median() {
        let mut recs = steady(50, 40);
        let s = |r: &[LatencyRecord]| {
            spiky(&prepare(&[Series {
                label: "x".into(),
                records: r,
                events: &[],
            }]))
        };
        assert!(!s(&recs));
        recs.push(LatencyRecord::new("slow", 9000, 14_000, "w", 1));
        assert!(s(&recs), "a 5 s file among 40 ms ones");
        assert!(!s(&[]));
    }

    #[test]
    fn an_empty_run_says_so_and_the_legend_is_under_the_chart() {
        let d = tempfile::tempdir().unwrap();
        let grey = NOTE_COLOUR;
        let empty = [Series {
            label: "x".into(),
            records: &[],
            events: &[],
        }];
        let p = d.path().join("empty.png");
        timeline(&p, &empty, &PlotOptions::default()).unwrap();
        assert!(
            count(&decode(&p).2, grey) > 50,
            "no note on an empty figure"
        );

        let recs = steady(30, 40);
        let full = [Series {
            label: "x".into(),
            records: &recs,
            events: &[],
        }];
        let p = d.path().join("full.png");
        timeline(&p, &full, &PlotOptions::default()).unwrap();
        let (w, h, px) = decode(&p);
        assert_eq!(count(&px, grey), 0);
        // The series' colour in the bottom rows: its legend entry, below
        // the x axis, not over the data.
        let bottom = &px[((h - LEGEND_ROW as u32) * w) as usize..];
        assert!(count(bottom, SERIES_COLOURS[0]) > 10);
    }
}
