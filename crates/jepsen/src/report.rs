//! What a run found ([`RunReport`]) and its reports: `report.json`, and in
//! Markdown one run's and the matrix's table. The runner fills it in;
//! nothing here runs anything.

use crate::check::windows::Window;
use crate::check::{Anomaly, Check, Validity};
use crate::cluster::Exit;
use crate::history::{self, Outcome};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::path::Path;

/// Operation counts by outcome.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// All operations.
    pub ops: usize,
    /// Took effect.
    pub ok: usize,
    /// Certainly did not.
    pub fail: usize,
    /// May have.
    pub unknown: usize,
}

impl Counts {
    /// Counts of `ops`.
    pub fn of(ops: &[history::Op]) -> Self {
        let mut c = Counts::default();
        for o in ops {
            c.ops += 1;
            match o.outcome {
                Outcome::Ok => c.ok += 1,
                Outcome::Fail => c.fail += 1,
                Outcome::Unknown => c.unknown += 1,
            }
        }
        c
    }
}

/// What a run found.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RunReport {
    /// Cluster size.
    pub nodes: usize,
    /// Nemesis name.
    pub nemesis: String,
    /// Workload name.
    pub workload: String,
    /// Seed.
    pub seed: u64,
    /// Client time, seconds.
    pub duration_s: f64,
    /// All operations.
    pub counts: Counts,
    /// Writes only (write, add, append).
    pub write_counts: Counts,
    /// Every checker's verdict.
    pub checks: Vec<Check>,
    /// Faults and the unavailability after each.
    pub windows: Vec<Window>,
    /// Nodes that stopped on their own.
    pub exits: Vec<Exit>,
    /// Panics found in the nodes' logs.
    pub panics: Vec<String>,
    /// Overall verdict.
    pub validity: Validity,
}

impl RunReport {
    /// Every anomaly of every checker.
    pub fn anomalies(&self) -> impl Iterator<Item = &Anomaly> {
        self.checks.iter().flat_map(|c| c.anomalies.iter())
    }

    /// The anomaly kinds found, sorted, without repeats.
    pub fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self.anomalies().map(|a| a.kind.clone()).collect();
        k.sort();
        k.dedup();
        k
    }
}

/// Writes `report.json` and `report.md`.
pub fn write(dir: &Path, report: &RunReport) -> Result<()> {
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    std::fs::write(dir.join("report.md"), run_markdown(report))?;
    Ok(())
}

fn verdict(v: Validity) -> &'static str {
    match v {
        Validity::Valid => "valid",
        Validity::Invalid => "**INVALID**",
        Validity::Unknown => "unknown",
    }
}

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}"))
        .unwrap_or_else(|| "never".into())
}

/// Median and maximum, over the faults, of the longest time without an ok.
fn window_stats(r: &RunReport) -> String {
    let mut w: Vec<f64> = r.windows.iter().filter_map(|w| w.longest_gap_ms).collect();
    if w.is_empty() {
        return "–".into();
    }
    w.sort_by(f64::total_cmp);
    format!("{:.0} / {:.0}", w[w.len() / 2], w[w.len() - 1])
}

/// One run, for `report.md`.
pub fn run_markdown(r: &RunReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {} nodes, {} workload, {} nemesis (seed {})\n",
        r.nodes, r.workload, r.nemesis, r.seed
    );
    let _ = writeln!(s, "Verdict: {}\n", verdict(r.validity));
    let _ = writeln!(
        s,
        "Operations: {} ({} ok, {} fail, {} unknown); writes: {} ({} ok, {} fail, {} unknown); {:.0} s of clients.\n",
        r.counts.ops,
        r.counts.ok,
        r.counts.fail,
        r.counts.unknown,
        r.write_counts.ops,
        r.write_counts.ok,
        r.write_counts.fail,
        r.write_counts.unknown,
        r.duration_s
    );
    let _ = writeln!(s, "## Checks\n");
    for c in &r.checks {
        let _ = writeln!(s, "* {}: {}", c.checker, verdict(c.validity));
        for n in &c.notes {
            let _ = writeln!(s, "  * note: {n}");
        }
    }
    let _ = writeln!(s);
    if r.anomalies().next().is_some() {
        let _ = writeln!(s, "## Anomalies\n");
        for a in r.anomalies().take(50) {
            let _ = writeln!(s, "* **{}**: {}", a.kind, a.message);
            for op in a.ops.iter().take(12) {
                let _ = writeln!(s, "  * `{op}`");
            }
        }
        let n = r.anomalies().count();
        if n > 50 {
            let _ = writeln!(s, "* ... and {} more (report.json)", n - 50);
        }
        let _ = writeln!(s);
    }
    if !r.windows.is_empty() {
        let _ = writeln!(s, "## Faults and unavailability\n");
        if r.workload == "wordcount" {
            let _ = writeln!(s, "(The word-count workload has no per-operation clients: no unavailability is measured.)\n");
        }
        let _ = writeln!(
            s,
            "| at ms | fault | nodes | held ms | to first ok op, ms | to first ok write, ms | longest time without an ok, ms |\n|---:|---|---|---:|---:|---:|---:|"
        );
        for w in &r.windows {
            let _ = writeln!(
                s,
                "| {:.0} | {} | {:?} | {} | {} | {} | {} |",
                w.start_ms,
                w.fault,
                w.nodes,
                ms(w.held_ms),
                ms(w.to_first_ok_ms),
                ms(w.to_first_ok_write_ms),
                ms(w.longest_gap_ms)
            );
        }
        let _ = writeln!(s);
    }
    if !r.exits.is_empty() || !r.panics.is_empty() {
        let _ = writeln!(s, "## Nodes that stopped on their own\n");
        for e in &r.exits {
            let _ = writeln!(s, "* node {}: {}", e.node, e.status);
        }
        for p in r.panics.iter().take(20) {
            let _ = writeln!(s, "* panic: {p}");
        }
    }
    s
}

/// The matrix: one row per run, then every anomaly.
pub fn matrix_markdown(runs: &[(String, Result<RunReport, String>)], header: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# wclab Jepsen-style matrix\n\n{header}\n");
    let ok: Vec<&RunReport> = runs.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
    let total = |f: fn(&RunReport) -> usize| ok.iter().map(|r| f(r)).sum::<usize>();
    let _ =
        writeln!(
        s,
        "{} runs ({} invalid, {} unknown, {} errors); {} operations: {} ok, {} fail, {} unknown.\n",
        runs.len(),
        ok.iter().filter(|r| r.validity == Validity::Invalid).count(),
        ok.iter().filter(|r| r.validity == Validity::Unknown).count(),
        runs.iter().filter(|(_, r)| r.is_err()).count(),
        total(|r| r.counts.ops),
        total(|r| r.counts.ok),
        total(|r| r.counts.fail),
        total(|r| r.counts.unknown),
    );
    let _ = writeln!(
        s,
        "| run | verdict | ops | ok | fail | unknown | faults | longest time without an ok after a fault, ms (median / max) | anomalies | nodes stopped / panics |\n|---|---|---:|---:|---:|---:|---:|---:|---|---|"
    );
    for (name, r) in runs {
        match r {
            Ok(r) => {
                let _ = writeln!(
                    s,
                    "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |",
                    verdict(r.validity),
                    r.counts.ops,
                    r.counts.ok,
                    r.counts.fail,
                    r.counts.unknown,
                    r.windows.len(),
                    window_stats(r),
                    r.kinds().join(", "),
                    r.exits.len(),
                    r.panics.len()
                );
            }
            Err(e) => {
                let _ = writeln!(
                    s,
                    "| {name} | error | | | | | | | {} | |",
                    e.replace('|', "/")
                );
            }
        }
    }
    let _ = writeln!(s, "\n## Anomalies, run by run\n");
    for (name, r) in runs {
        let Ok(r) = r else { continue };
        for c in r.checks.iter().filter(|c| c.validity != Validity::Valid) {
            let _ = writeln!(s, "### {name}: {} {}\n", c.checker, verdict(c.validity));
            for n in &c.notes {
                let _ = writeln!(s, "* note: {n}");
            }
            for a in c.anomalies.iter().take(10) {
                let _ = writeln!(s, "* **{}**: {}", a.kind, a.message);
                for op in a.ops.iter().take(6) {
                    let _ = writeln!(s, "  * `{op}`");
                }
            }
            if c.anomalies.len() > 10 {
                let _ = writeln!(
                    s,
                    "* ... {} anomalies in all ({name}/report.json)",
                    c.anomalies.len()
                );
            }
            let _ = writeln!(s);
        }
    }
    s
}
