//! Least privilege on Redis: the ACL user of each of wclab's roles.
//!
//! One password that opens everything would let a worker FLUSHALL the
//! master or FUNCTION DELETE the library. Redis 7's ACLs give each process
//! a user that may run only what its role needs, on the job's keys only:
//!
//! | role | may run |
//! |---|---|
//! | `worker` | FCALL of the worker's functions (claim, renew, commit, dead, release, speculate); the job's description and progress (HGETALL, XLEN); waiting for a task (XREAD) |
//! | `submitter` | FCALL wclab_submit and wclab_fold (folding the commits' tallies into the counts); the description (HSET), deleting a job (DEL), progress and results (HGETALL, HGET, XLEN, XPENDING, XRANGE, ZRANGE, ZCARD), TIME, INFO |
//! | `observer` | reads only, on read-only keys: progress and results, TIME, INFO |
//!
//! and every role FUNCTION LIST (to see that the library is loaded). The
//! administrator (Redis's `default` user) loads the library and creates
//! these users; nothing else of wclab needs it.
//!
//! A function's own commands are checked against the *caller's* ACL in
//! Redis 7 (a worker's `FCALL wclab_commit` runs XACK and ZINCRBY as the
//! worker), so each role also holds, on `wclab:*` keys, the commands its
//! functions run ([`Role::commands`] lists them apart). That lets a worker
//! run those commands directly too: the ACL keeps a stolen worker password
//! away from the rest of the server (other keys, CONFIG, FLUSHALL, the
//! library, scripts), not from the job it works on. docs/security.md has the
//! whole threat model.
//!
//! `FCALL` is granted per function (`+fcall|wclab_claim`: Redis 7.0 matches
//! a command's first argument), so a worker cannot submit and a submitter
//! cannot commit.

use crate::{CoordError, Store};

/// A role: what one kind of wclab process may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// `wclab worker`: claims, counts, commits.
    Worker,
    /// `wclab submit`, and the driver of `run` and `stream`: submits a job,
    /// waits for it, reads its results.
    Submitter,
    /// `wclab top`, dashboards: reads.
    Observer,
}

/// The functions a worker calls.
const WORKER_FUNCTIONS: &[&str] = &[
    "wclab_claim",
    "wclab_renew",
    "wclab_commit",
    "wclab_dead",
    "wclab_release",
    "wclab_speculate",
];

/// What a worker sends itself, besides FCALL: the job's description and
/// progress.
/// XREAD: an idle worker blocks on the tasks stream until a task is
/// appended ([`crate::wake`]); a read, it hands nothing out.
const WORKER_DIRECT: &[&str] = &["hgetall", "xlen", "xread"];

/// What the worker's functions run (lua/wclab.lua, with `now_ms` empty or
/// given): checked against the worker's own ACL.
const WORKER_INSIDE: &[&str] = &[
    "hexists",
    "hget",
    "hincrby",
    "hmget",
    "hset",
    "time",
    "type",
    "unlink",
    "xack",
    "xadd",
    "xautoclaim",
    "xclaim",
    "xinfo|stream",
    "xpending",
    "xrange",
    "xreadgroup",
    "xrevrange",
    "zadd",
    "zcard",
    "zrange",
    "zrangebyscore",
    "zrem",
];

/// What a submitter sends itself: the description, deleting a job
/// (`submit --fresh`), progress, results, the server's clock and work.
const SUBMITTER_DIRECT: &[&str] = &[
    "hset", "hgetall", "hget", "del", "xlen", "xpending", "xrange", "zrange", "zcard", "time",
    "info",
];

/// What wclab_submit and wclab_fold run.
const SUBMITTER_INSIDE: &[&str] = &[
    "exists",
    "hget",
    "hincrby",
    "hmget",
    "hset",
    "rename",
    "time",
    "type",
    "unlink",
    "xadd",
    "xdel",
    "xgroup|create",
    "xinfo|stream",
    "xrange",
    "zadd",
    "zcard",
    "zincrby",
];

/// What an observer reads.
const OBSERVER_DIRECT: &[&str] = &[
    "hgetall",
    "hget",
    "xlen",
    "xpending",
    "xrange",
    "xrevrange",
    "zrange",
    "zcard",
    "zscore",
    "time",
    "info",
];

/// Every role may ask whether the library is loaded.
const EVERY_ROLE: &[&str] = &["function|list"];

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Worker, Role::Submitter, Role::Observer];

    /// The role's name, also the name of its Redis user.
    pub fn name(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Submitter => "submitter",
            Role::Observer => "observer",
        }
    }

    /// The role named `name`.
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The functions it may FCALL.
    pub fn functions(self) -> &'static [&'static str] {
        match self {
            Role::Worker => WORKER_FUNCTIONS,
            Role::Submitter => &["wclab_submit", "wclab_fold"],
            Role::Observer => &[],
        }
    }

    /// The commands it sends itself (besides FCALL), and those its
    /// functions run, lower case (`command|subcommand` for one subcommand).
    pub fn commands(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Role::Worker => (WORKER_DIRECT, WORKER_INSIDE),
            Role::Submitter => (SUBMITTER_DIRECT, SUBMITTER_INSIDE),
            Role::Observer => (OBSERVER_DIRECT, &[]),
        }
    }

    /// Every command it may run, sorted, without repeats (FCALL as
    /// `fcall|<function>`).
    pub fn allowed(self) -> Vec<String> {
        let (direct, inside) = self.commands();
        let mut all: Vec<String> = (self.functions().iter())
            .map(|f| format!("fcall|{f}"))
            .chain(
                direct
                    .iter()
                    .chain(inside)
                    .chain(EVERY_ROLE)
                    .map(|c| c.to_string()),
            )
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Its ACL rules, after the user's name, `reset`, `on` and password:
    /// keys, no channels, nothing but [`Role::allowed`].
    pub fn rules(self, scope: &KeyScope) -> Vec<String> {
        let keys = match self {
            // Reads only, whatever the command.
            Role::Observer => format!("%R~{}", scope.pattern()),
            Role::Worker | Role::Submitter => format!("~{}", scope.pattern()),
        };
        let mut rules = vec![keys, "resetchannels".to_owned(), "-@all".to_owned()];
        rules.extend(self.allowed().into_iter().map(|c| format!("+{c}")));
        rules
    }
}

/// Which jobs' keys a user may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyScope {
    /// Every job's (`wclab:*`): one set of users for a whole server.
    AllJobs,
    /// One job's (`wclab:{J}:*`): users for one job on a shared server.
    Job(String),
}

impl KeyScope {
    /// The ACL key pattern (a glob, with the job name's glob characters
    /// escaped).
    pub fn pattern(&self) -> String {
        match self {
            KeyScope::AllJobs => "wclab:*".to_owned(),
            KeyScope::Job(job) => {
                let mut escaped = String::new();
                for c in job.chars() {
                    if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                        escaped.push('\\');
                    }
                    escaped.push(c);
                }
                format!("wclab:{{{escaped}}}:*")
            }
        }
    }
}

/// A user of a role, with its password.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Its role.
    pub role: Role,
    /// Its name (the role's, unless several jobs each have their own).
    pub name: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "User({} as {})", self.name, self.role.name())
    }
}

impl User {
    /// A user named after its role, with a random password (256 bits).
    pub fn random(role: Role) -> User {
        use rand::Rng;
        let mut rng = rand::rng();
        User {
            role,
            name: role.name().to_owned(),
            password: (0..64)
                .map(|_| format!("{:x}", rng.random_range(0..16u8)))
                .collect(),
        }
    }

    /// The arguments of `ACL SETUSER` (after the command): the user
    /// replaced whole (`reset`), so that applying again also removes an old
    /// password.
    pub fn setuser_args(&self, scope: &KeyScope) -> Vec<String> {
        let mut args = vec![
            self.name.clone(),
            "reset".to_owned(),
            "on".to_owned(),
            format!(">{}", self.password),
        ];
        args.extend(self.role.rules(scope));
        args
    }
}

/// Creates (or replaces) `users` on the server of `store`, which must be
/// an administrator's (ACL SETUSER; the library was loaded on connect).
pub async fn apply(store: &mut Store, users: &[User], scope: &KeyScope) -> Result<(), CoordError> {
    for user in users {
        let mut cmd = redis::cmd("ACL");
        cmd.arg("SETUSER").arg(user.setuser_args(scope));
        store
            .call::<()>("create an ACL user (ACL SETUSER)", &cmd)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_library_runs_no_command_that_no_role_may_run() {
        // Every `redis.call('X'` and `pcall(redis.call, 'X'` of the library.
        let lua = crate::FUNCTION_LIBRARY;
        let mut used = std::collections::BTreeSet::new();
        for marker in ["redis.call('", "redis.call, '", "redis.pcall('"] {
            for (at, _) in lua.match_indices(marker) {
                let rest = &lua[at + marker.len()..];
                let name = &rest[..rest.find('\'').unwrap()];
                used.insert(name.to_ascii_lowercase());
            }
        }
        assert!(used.len() > 20, "the scan found {used:?}");
        let inside: Vec<&str> = (Role::ALL.iter())
            .flat_map(|r| r.commands().1.iter().copied())
            .collect();
        for cmd in &used {
            assert!(
                inside
                    .iter()
                    .any(|c| c == cmd || c.starts_with(&format!("{cmd}|"))),
                "lua/wclab.lua runs {cmd}, which no role's functions may run (src/acl.rs)"
            );
        }
        for c in &inside {
            let bare = c.split('|').next().unwrap();
            assert!(
                used.contains(bare),
                "{c} is granted but lua/wclab.lua never runs it"
            );
        }
    }

    #[test]
    fn each_role_may_call_only_its_functions() {
        let fcalls = |r: Role| -> Vec<String> {
            (r.allowed().into_iter())
                .filter(|c| c.starts_with("fcall"))
                .collect()
        };
        assert_eq!(
            fcalls(Role::Submitter),
            ["fcall|wclab_fold", "fcall|wclab_submit"]
        );
        assert!(fcalls(Role::Observer).is_empty());
        assert_eq!(fcalls(Role::Worker).len(), 6);
        assert!(!fcalls(Role::Worker).contains(&"fcall|wclab_submit".to_owned()));
        for r in Role::ALL {
            assert!(
                !r.allowed().iter().any(|c| c == "fcall"),
                "{r:?}: FCALL of any function"
            );
            assert_eq!(Role::from_name(r.name()), Some(r));
        }
    }

    #[test]
    fn a_job_scope_escapes_glob_characters() {
        assert_eq!(KeyScope::AllJobs.pattern(), "wclab:*");
        assert_eq!(KeyScope::Job("j1".into()).pattern(), "wclab:{j1}:*");
        assert_eq!(
            KeyScope::Job("a*b?[c]\\".into()).pattern(),
            "wclab:{a\\*b\\?\\[c\\]\\\\}:*"
        );
        let rules = Role::Observer.rules(&KeyScope::AllJobs);
        assert_eq!(rules[..3], ["%R~wclab:*", "resetchannels", "-@all"]);
    }

    #[test]
    fn a_user_is_replaced_whole_and_its_password_never_printed() {
        let u = User::random(Role::Worker);
        assert_eq!(u.password.len(), 64);
        assert_ne!(u.password, User::random(Role::Worker).password);
        let args = u.setuser_args(&KeyScope::AllJobs);
        assert_eq!(args[..3], ["worker", "reset", "on"]);
        assert_eq!(args[3], format!(">{}", u.password));
        assert!(!format!("{u:?}").contains(&u.password));
    }
}
