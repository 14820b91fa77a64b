//! `wclab plot`: redraw latency timelines from latency.csv files.

use super::Outcome;
use crate::cli::PlotArgs;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use wclab_stream::plot::{self, Panel, PlotOptions, Series};
use wclab_stream::record;

/// One input: its records, events and legend.
struct Loaded {
    label: String,
    records: Vec<wclab_stream::LatencyRecord>,
    events: Vec<wclab_stream::Event>,
}

pub fn plot(args: PlotArgs) -> Result<Outcome> {
    if args.label.len() > args.inputs.len() {
        anyhow::bail!(
            "{} --label given for {} input(s); give at most one per input",
            args.label.len(),
            args.inputs.len()
        );
    }
    let panels = args.panels as usize;
    let per_panel = args.inputs.len() / panels;
    if per_panel == 0 || per_panel * panels != args.inputs.len() {
        anyhow::bail!(
            "{} input(s) cannot be split evenly into {panels} panels; give a multiple of {panels}",
            args.inputs.len()
        );
    }
    if args.panel_title.len() > panels {
        anyhow::bail!(
            "{} --panel-title given for {panels} panel(s)",
            args.panel_title.len()
        );
    }
    let loaded = args
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| load(input, args.label.get(i)))
        .collect::<Result<Vec<_>>>()?;
    let series: Vec<Series> = loaded
        .iter()
        .map(|l| Series {
            label: l.label.clone(),
            records: &l.records,
            events: &l.events,
        })
        .collect();
    let negative = plot::negative_latencies(&series);
    if negative > 0 {
        eprintln!(
            "warning: {negative} file(s) have a negative latency (committed before injected: \
             a clock went back?); they are drawn below zero{}",
            if args.log {
                " (at 1 ms on the log axis)"
            } else {
                ""
            }
        );
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&args.inputs[0]));
    let mut opts = PlotOptions {
        width: args.width,
        height: args.height,
        title: args
            .title
            .clone()
            .unwrap_or_else(|| PlotOptions::default().title),
        y_scale: if args.log {
            wclab_stream::plot::YScale::Log
        } else if args.linear {
            wclab_stream::plot::YScale::Linear
        } else {
            wclab_stream::plot::YScale::Auto
        },
        columns: args.columns,
    };
    if panels == 1 {
        plot::timeline(&out, &series, &opts)?;
    } else {
        let figs: Vec<Panel> = series
            .chunks(per_panel)
            .enumerate()
            .map(|(i, s)| Panel {
                title: args.panel_title.get(i).cloned().unwrap_or_default(),
                series: s.to_vec(),
            })
            .collect();
        if args.title.is_none() {
            opts.title.clear();
        }
        plot::panels(&out, &figs, &opts)?;
    }
    eprintln!("wrote {}", out.display());
    Ok(Outcome::Success)
}

/// `plot.png` in the directory of the first input's latency.csv (never
/// timeline.png: that is `wclab stream`'s own).
fn default_out(first: &Path) -> PathBuf {
    let dir = if first.is_dir() {
        first
    } else {
        first.parent().unwrap_or(Path::new("."))
    };
    dir.join("plot.png")
}

fn load(input: &Path, label: Option<&String>) -> Result<Loaded> {
    let csv: PathBuf = if input.is_dir() {
        input.join("latency.csv")
    } else {
        input.to_owned()
    };
    let records = record::read_latency_csv(&csv)?;
    let dir = csv.parent().unwrap_or(Path::new("."));
    let events_csv = dir.join("events.csv");
    let events = if events_csv.exists() {
        record::read_events_csv(&events_csv)?
    } else {
        Vec::new()
    };
    let label = match label {
        Some(l) => l.clone(),
        None => label_from_summary(&dir.join("summary.json"))?.unwrap_or_else(|| {
            dir.canonicalize()
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| csv.display().to_string())
        }),
    };
    Ok(Loaded {
        label,
        records,
        events,
    })
}

/// The `settings.label` of a summary.json written by `wclab stream`, if any.
fn label_from_summary(path: &Path) -> Result<Option<String>> {
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a summary.json written by wclab", path.display()))?;
    Ok(v["settings"]["label"].as_str().map(str::to_owned))
}
