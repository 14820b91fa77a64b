//! The word-count job itself: a `wclab run` against the cluster under the
//! nemesis must finish with every word counted exactly as the independent
//! oracle (`wclab-testkit`) counts it, and one completion record per task
//! in the job's `done` stream (a task committed twice, or not at all, is
//! an anomaly even if the counts happen to agree).

use super::{Anomaly, Check};
use std::collections::{BTreeMap, HashMap};
use wclab_testkit::oracle::WordMap;

/// What one job left behind.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// The job's name.
    pub job: String,
    /// Did `wclab run` exit 0? (With its stderr's tail when not.)
    pub finished: Result<(), String>,
    /// The counts it printed (`--output`); `None` if there was no output.
    pub counts: Option<WordMap>,
    /// The task IDs of the job's `done` stream, in stream order; `None`
    /// if the stream could not be read.
    pub done: Option<Vec<String>>,
    /// How many tasks the job had.
    pub tasks: usize,
}

/// Checks each job against `expected` (the oracle's counts of its input).
pub fn check(jobs: &[JobResult], expected: &WordMap) -> Check {
    let mut anomalies = Vec::new();
    let mut undecided = Vec::new();
    for j in jobs {
        if let Err(e) = &j.finished {
            anomalies.push(Anomaly::new(
                "job-failed",
                format!("job {}: wclab run did not finish: {e}", j.job),
                vec![],
            ));
            continue;
        }
        match &j.counts {
            None => undecided.push(format!("job {}: no output to compare", j.job)),
            Some(got) => {
                let diffs = differences(got, expected);
                if !diffs.is_empty() {
                    anomalies.push(Anomaly::new(
                        "wrong-count",
                        format!(
                            "job {}: {} words differ from the oracle, e.g. {}",
                            j.job,
                            diffs.len(),
                            diffs[..diffs.len().min(5)].join("; ")
                        ),
                        vec![],
                    ));
                }
            }
        }
        match &j.done {
            None => undecided.push(format!("job {}: its done stream could not be read", j.job)),
            Some(done) => {
                let mut per: BTreeMap<&str, usize> = BTreeMap::new();
                for t in done {
                    *per.entry(t).or_default() += 1;
                }
                let twice: Vec<&str> = per
                    .iter()
                    .filter(|(_, &n)| n > 1)
                    .map(|(t, _)| *t)
                    .collect();
                if !twice.is_empty() {
                    anomalies.push(Anomaly::new(
                        "duplicate",
                        format!(
                            "job {}: {} task(s) have more than one completion record, e.g. {:?}",
                            j.job,
                            twice.len(),
                            &twice[..twice.len().min(5)]
                        ),
                        vec![],
                    ));
                }
                if per.len() != j.tasks {
                    anomalies.push(Anomaly::new(
                        "lost-write",
                        format!(
                            "job {}: {} distinct tasks recorded done, of {}",
                            j.job,
                            per.len(),
                            j.tasks
                        ),
                        vec![],
                    ));
                }
            }
        }
    }
    if jobs.is_empty() {
        undecided.push("no job ran".into());
    }
    Check::new("wordcount-exact", anomalies, undecided)
}

/// Words whose counts differ, as text, sorted.
fn differences(got: &WordMap, want: &WordMap) -> Vec<String> {
    let mut out = Vec::new();
    let words: HashMap<&Vec<u8>, ()> = got.keys().chain(want.keys()).map(|w| (w, ())).collect();
    for w in words.keys() {
        let (g, e) = (
            got.get(*w).copied().unwrap_or(0),
            want.get(*w).copied().unwrap_or(0),
        );
        if g != e {
            out.push(format!(
                "{:?}: {g} instead of {e}",
                String::from_utf8_lossy(w)
            ));
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Validity;

    fn map(pairs: &[(&str, u64)]) -> WordMap {
        pairs
            .iter()
            .map(|(w, n)| (w.as_bytes().to_vec(), *n))
            .collect()
    }

    fn job(counts: WordMap, done: &[&str], tasks: usize) -> JobResult {
        JobResult {
            job: "j".into(),
            finished: Ok(()),
            counts: Some(counts),
            done: Some(done.iter().map(|s| s.to_string()).collect()),
            tasks,
        }
    }

    #[test]
    fn an_exact_job_with_one_record_per_task_passes() {
        let want = map(&[("a", 2), ("b", 1)]);
        let c = check(&[job(want.clone(), &["t1", "t2"], 2)], &want);
        assert_eq!(c.validity, Validity::Valid);
    }

    #[test]
    fn a_count_off_by_one_a_task_done_twice_or_missing_are_refused() {
        let want = map(&[("a", 2), ("b", 1)]);
        let c = check(&[job(map(&[("a", 3), ("b", 1)]), &["t1", "t2"], 2)], &want);
        assert_eq!(c.kinds(), vec!["wrong-count"]);
        let c = check(&[job(map(&[("a", 2)]), &["t1", "t2"], 2)], &want);
        assert_eq!(c.kinds(), vec!["wrong-count"]);
        let c = check(&[job(want.clone(), &["t1", "t2", "t1"], 2)], &want);
        assert_eq!(c.kinds(), vec!["duplicate"]);
        let c = check(&[job(want.clone(), &["t1"], 2)], &want);
        assert_eq!(c.kinds(), vec!["lost-write"]);
        let mut failed = job(want.clone(), &["t1", "t2"], 2);
        failed.finished = Err("exit status 1".into());
        assert_eq!(check(&[failed], &want).kinds(), vec!["job-failed"]);
        assert_eq!(check(&[], &want).validity, Validity::Unknown);
    }
}
