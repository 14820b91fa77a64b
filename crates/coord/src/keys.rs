/// The Redis keys of one job. They share the hash tag `{job}` so that a
/// job lives in one slot of a Redis Cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobKeys {
    /// The job's name.
    pub job_name: String,
    /// Stream of tasks, read through the consumer group.
    pub tasks: String,
    /// Sorted set word → count: the folded part of the counts (the job's
    /// counts are these plus the tallies not folded yet).
    pub counts: String,
    /// Stream of the commits' tallies not folded into `counts` yet.
    pub tallies: String,
    /// Stream of completion records (one per committed task).
    pub done: String,
    /// Stream of dead-lettered tasks with their reasons.
    pub dead: String,
    /// Hash with the job's description and running totals.
    pub job: String,
    /// Sorted set task → time of its last claim or renewal, when the
    /// functions are given the time (replicated Redis, lab 4b).
    pub leases: String,
    /// Hash task → its path and byte range as submitted; a stream entry
    /// that is not in it was not written by the submitter and is never read.
    pub submitted: String,
    /// Hash of speculative execution's bookkeeping (lab 3).
    pub spec: String,
    /// Scratch sorted set of `wclab_fold` (empty between calls).
    pub merging: String,
}

impl JobKeys {
    /// Keys of job `name`.
    pub fn new(name: &str) -> Self {
        let k = |suffix: &str| format!("wclab:{{{name}}}:{suffix}");
        JobKeys {
            job_name: name.to_owned(),
            tasks: k("tasks"),
            counts: k("counts"),
            tallies: k("tallies"),
            done: k("done"),
            dead: k("dead"),
            job: k("job"),
            leases: k("leases"),
            submitted: k("submitted"),
            spec: k("spec"),
            merging: k("merging"),
        }
    }

    /// The KEYS of `wclab_commit`, in order.
    pub fn commit_keys(&self) -> [&str; 6] {
        [
            &self.tasks,
            &self.counts,
            &self.tallies,
            &self.done,
            &self.job,
            &self.leases,
        ]
    }

    /// The KEYS of `wclab_fold`, in order.
    pub fn fold_keys(&self) -> [&str; 4] {
        [&self.counts, &self.tallies, &self.job, &self.merging]
    }

    /// The key of a role as docs/protocol.md names it (`tasks`, `counts`,
    /// ...), `None` for an unknown role.
    pub fn role(&self, role: &str) -> Option<&str> {
        Some(match role {
            "tasks" => &self.tasks,
            "counts" => &self.counts,
            "tallies" => &self.tallies,
            "done" => &self.done,
            "dead" => &self.dead,
            "job" => &self.job,
            "leases" => &self.leases,
            "submitted" => &self.submitted,
            "spec" => &self.spec,
            "merging" => &self.merging,
            _ => return None,
        })
    }

    /// Every key of the job, for deleting it.
    pub fn all(&self) -> [&str; 10] {
        [
            &self.tasks,
            &self.counts,
            &self.tallies,
            &self.done,
            &self.dead,
            &self.job,
            &self.leases,
            &self.submitted,
            &self.spec,
            &self.merging,
        ]
    }
}
