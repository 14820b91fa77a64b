//! Command-line definitions.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Distributed word count on Redis.
///
/// Stateless worker processes take files from a Redis stream (XREADGROUP),
/// count their words, and commit the counts and the acknowledgement in one
/// atomic Redis Function call. Workers can be killed at any moment; the
/// counts stay exact.
#[derive(Debug, Parser)]
#[command(
    name = "wclab",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Count words in files with N worker processes and print the result.
    ///
    /// Without --redis, starts a private redis-server (free loopback port,
    /// random password, temporary directory) and stops it at the end.
    ///
    /// Exit status: 0 when every file was counted; 1 when the job finished
    /// but some files could not be counted (listed on stderr); 2 for usage
    /// or configuration errors.
    Run(RunArgs),
    /// Run one worker for a job until stopped (SIGTERM or Ctrl-C).
    ///
    /// Usable on any machine that can reach the job's Redis and sees the
    /// input files at the same paths.
    Worker(WorkerArgs),
    /// Enqueue a job's files without starting workers.
    Submit(SubmitArgs),
    /// Print the current top words of a job.
    Top(TopArgs),
    /// Generate a deterministic corpus from bundled public-domain English
    /// (the King James Bible), so that the labs need no download.
    #[command(subcommand)]
    Gen(GenCommand),
    /// Lab 3: inject R files a second into the job's stream and measure each
    /// file's latency, from injection to commit, with crashing and straggling
    /// workers; writes latency.csv, events.csv, summary.json, timeline.png.
    ///
    /// Both timestamps come from the Redis server's clock. Without --redis,
    /// starts a private redis-server, like `run`. Exit status: 0 when every
    /// injected file was committed, 1 otherwise, 2 for errors.
    Stream(StreamArgs),
    /// Lab 3: draw latency timelines from one or several latency.csv files
    /// (written by `wclab stream`) on one figure, e.g. several injection rates.
    Plot(PlotArgs),
    /// Lab 4b: Redis replicated by Raft. Run a node (a sidecar next to its
    /// own redis-server), form a cluster, inspect it, measure it.
    #[command(subcommand)]
    Raft(RaftCommand),
    /// Print, or create on your own Redis, the ACL users of wclab's roles:
    /// worker, submitter, observer (docs/security.md says what each may
    /// run).
    ///
    /// Each gets a fresh random password. Without --apply, prints the users
    /// as ACL SETUSER commands (for redis-cli) or as `user` lines (for
    /// redis.conf or an ACL file), and on stderr the URL each kind of
    /// process should be given. With --apply, creates them on the server of
    /// WCLAB_REDIS_URL (an administrator's URL), loads the function library,
    /// and prints `ROLE URL` lines. `wclab run` and `wclab stream` make
    /// their private Redis this way by themselves.
    Acl(AclArgs),
    /// Make a certificate authority and a server certificate for a Redis
    /// that speaks TLS (`tls-port`): ca.pem for the clients (--tls-ca),
    /// server.pem and server.key for redis-server. The CA's key is not
    /// kept.
    TlsCerts(TlsCertsArgs),
}

/// `wclab gen` corpora.
#[derive(Debug, Subcommand)]
pub enum GenCommand {
    /// Plain-text files (part-0000.txt, ...) of English verses.
    Text {
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Number of files.
        #[arg(long, default_value_t = 16)]
        files: usize,
        /// Approximate size of each file, e.g. 4MiB.
        #[arg(long, default_value = "4MiB", value_parser = parse_size)]
        size: u64,
        /// Seed: the same seed gives byte-identical files on any machine.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Spread the files over nested subdirectories.
        #[arg(long)]
        nested: bool,
        /// Mix in sentences drawn from a Zipf vocabulary of N words (the
        /// text's own, then made-up English-like ones), for benchmarks that
        /// need many distinct words (with punctuated and capitalised forms,
        /// 4-5 per vocabulary word: 18500 gives ~87k on 64 x 4.7 MB).
        #[arg(long, value_name = "N")]
        vocab: Option<usize>,
    },
    /// CSV files of tweets (tweets-0000.csv, ...) with a `text` column that
    /// holds commas, doubled quotes and newlines (RFC 4180 quoting).
    Tweets {
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Number of files.
        #[arg(long, default_value_t = wclab_gen::TweetOptions::DEFAULT_FILES)]
        files: usize,
        /// Rows per file.
        #[arg(long, default_value_t = wclab_gen::TweetOptions::DEFAULT_ROWS)]
        rows: usize,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

impl Command {
    /// The log level used when WCLAB_LOG is not set.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::Worker(_) | Command::Gen(_) => "info",
            // Its crashes are on purpose and reported in its own words.
            Command::Stream(_) => "error",
            _ => "warn",
        }
    }
}

/// Where Redis is.
#[derive(Debug, Args, Clone)]
pub struct RedisArgs {
    /// Redis URL: redis://[user:password@]host:port[/db] (rediss:// for
    /// TLS). Read from WCLAB_REDIS_URL when not given (preferred: the
    /// environment keeps the password out of `ps`).
    #[arg(long, env = crate::REDIS_URL_ENV, hide_env_values = true)]
    pub redis: String,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,
}

/// TLS to Redis, as a client.
#[derive(Debug, Args, Clone, Default)]
pub struct TlsArgs {
    /// Talk to Redis in TLS: a redis:// URL is taken as rediss://. (With
    /// `run` and `stream`, their private Redis speaks TLS only.)
    /// (WCLAB_TLS=1, true, yes or on sets it; 0, false, no, off or empty
    /// does not.)
    #[arg(long, env = crate::TLS_ENV, value_parser = clap::builder::BoolishValueParser::new())]
    pub tls: bool,

    /// The CA certificate (PEM) that signed the server's certificate; the
    /// only one trusted. Without it, the system's roots are. `run --tls`
    /// and `stream --tls` hand theirs to their workers.
    #[arg(long, env = crate::TLS_CA_ENV, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
}

/// The certificates of a private Redis that speaks TLS (`run`, `stream`).
#[derive(Debug, Args, Clone, Default)]
pub struct ServerTlsArgs {
    /// The private Redis's certificate (PEM, valid for 127.0.0.1), instead
    /// of one made at start; with --tls-key and --tls-ca.
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_ca"], conflicts_with = "redis")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// With --redis: the URL given to the workers instead of --redis (say,
    /// redis://worker:PASSWORD@host:port, from `wclab acl --apply`), so
    /// that they hold the worker's credentials only.
    #[arg(long, env = crate::WORKER_REDIS_URL_ENV, hide_env_values = true, requires = "redis")]
    pub worker_redis: Option<String>,
}

/// How the input is read.
#[derive(Debug, Args, Clone)]
pub struct InputArgs {
    /// Files, directories (walked recursively, regular files only) or glob
    /// patterns (quote them: 'data/*.txt'). Several may be given.
    #[arg(long, short, required = true, num_args = 1..)]
    pub input: Vec<String>,

    /// Input format: `text` (every byte is text) or `csv` (count one column).
    #[arg(long, default_value = "text", value_parser = ["text", "csv"])]
    pub format: String,

    /// With --format csv: the header name of the column to count.
    #[arg(long, default_value = "text")]
    pub column: String,

    /// Split text files larger than this into byte-range tasks, so that
    /// several workers share one big file (0: never split). A word that
    /// straddles a boundary belongs to the range it starts in.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub split_size: u64,
}

/// How results are shown.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// How many of the most frequent words to print.
    #[arg(long, short = 'k', default_value_t = 20)]
    pub top: usize,

    /// Write every distinct word with its count to FILE as `word<TAB>count`
    /// lines, by count descending, then by word bytes ascending.
    #[arg(long, short)]
    pub output: Option<PathBuf>,

    /// Print the summary and the top words as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Lease and poison settings shared by workers and the commands that start them.
#[derive(Debug, Args, Clone)]
pub struct LeaseArgs {
    /// A task whose worker has been silent this long is stolen by another;
    /// a live worker renews it every quarter of it. Default: 5s, and 1s for
    /// `stream` (a crashed worker's file is taken over about a second
    /// after the crash).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub lease: Option<Duration>,

    /// A task handed out more often than this is dead-lettered as poison.
    #[arg(long, default_value_t = 5)]
    pub max_deliveries: u32,

    /// Tasks a worker counts before committing them in one merged FCALL
    /// (fewer, larger commits: less work for Redis). A crash redoes at most
    /// this many tasks; counts stay exact. Default: 32 for batch jobs
    /// (growing with the job), 8 for `stream` (a fixed bound, and only
    /// files counted while the previous commit is in flight are merged).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub commit_batch: Option<u32>,
}

impl LeaseArgs {
    /// The lease of batch jobs and of `wclab worker`.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);
    /// The lease of `stream`'s workers.
    pub const STREAM_LEASE: Duration = Duration::from_secs(1);

    /// The lease given, or `default`.
    pub fn lease_or(&self, default: Duration) -> Duration {
        self.lease.unwrap_or(default)
    }

    /// The worker arguments that carry these settings.
    pub fn worker_args(&self, default_lease: Duration, default_batch: u32) -> Vec<String> {
        vec![
            "--lease".into(),
            humantime::format_duration(self.lease_or(default_lease)).to_string(),
            "--max-deliveries".into(),
            self.max_deliveries.to_string(),
            "--commit-batch".into(),
            self.commit_batch.unwrap_or(default_batch).to_string(),
        ]
    }
}

/// `wclab run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub input: InputArgs,

    /// Number of worker processes (default: number of cores).
    #[arg(long, short, value_parser = at_least_one)]
    pub workers: Option<usize>,

    /// Use this Redis instead of starting a private one:
    /// redis://[:password@]host:port[/db].
    #[arg(long, env = crate::REDIS_URL_ENV, hide_env_values = true)]
    pub redis: Option<String>,

    /// Lab 4b: use a Raft-replicated Redis (`wclab raft node`s), given as
    /// HOST:PORT,HOST:PORT,... of its nodes; clients fail over among them.
    #[arg(long, conflicts_with = "redis")]
    pub redis_cluster: Option<String>,

    /// Port for the private Redis (default: a free one).
    #[arg(long, conflicts_with = "redis", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// Job name (default: a fresh name per run).
    #[arg(long)]
    pub job: Option<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub lease: LeaseArgs,

    /// Counting threads per worker (default: cores / workers, at least 1).
    #[arg(long, value_parser = at_least_one)]
    pub threads: Option<usize>,

    /// Lab 2: kill this many workers with SIGKILL while the job runs, each
    /// one while it holds a task, at seeded random points of the job's
    /// progress (they are replaced); the counts must not change. Under
    /// chaos the poison threshold (--max-deliveries) is raised above the
    /// number of faults, so that a healthy task hit by several is not
    /// taken for poison.
    #[arg(long, default_value_t = 0)]
    pub chaos_kills: usize,

    /// Seed of the chaos: which workers die, at which points of the job,
    /// and when Redis dies.
    #[arg(long, default_value_t = 1)]
    pub chaos_seed: u64,

    /// Lab 4a: take a checkpoint (BGSAVE) of Redis this often, e.g. 1s.
    /// Works with the private Redis and with --redis.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub checkpoint_every: Option<Duration>,

    /// Lab 4a: kill the private redis-server (with its BGSAVE child, as a
    /// machine crash would) with SIGKILL this many times at seeded points
    /// of the job: the first before any checkpoint, then alternately
    /// during a BGSAVE and between checkpoints; each time it is restarted
    /// on the same port, with the same password, from its dump.rdb, and
    /// the function library is loaded again.
    #[arg(long, default_value_t = 0, conflicts_with_all = ["redis", "redis_cluster"])]
    pub chaos_redis_kills: usize,

    /// Lab 4a: keep Redis down this long at each kill before restarting
    /// it: workers and the submitter must ride out the outage.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub chaos_redis_downtime: Duration,

    /// Extra redis.conf line for the private Redis (repeatable), e.g.
    /// --redis-config 'appendonly yes' --redis-config 'appendfsync always'.
    #[arg(long, conflicts_with = "redis")]
    pub redis_config: Vec<String>,

    /// Keep the private Redis's directory here instead of a temporary one
    /// (to look at dump.rdb and redis.log afterwards).
    #[arg(long, conflicts_with = "redis")]
    pub redis_dir: Option<PathBuf>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub server_tls: ServerTlsArgs,
}

/// `wclab worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub redis: RedisArgs,

    /// The job to work on.
    #[arg(long, default_value = "wclab")]
    pub job: String,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub lease: LeaseArgs,

    /// Counting threads (default: all cores).
    #[arg(long, value_parser = at_least_one)]
    pub threads: Option<usize>,

    /// Exit when every task of the job is committed or dead-lettered,
    /// instead of waiting for more.
    #[arg(long)]
    pub exit_when_done: bool,

    /// Speculative execution: when idle, count a backup copy of a task that
    /// another worker has held much longer than usual (the first commit
    /// counts, the other is a no-op).
    #[arg(long)]
    pub speculate: bool,

    /// Latency first (streams, set by `wclab stream`): a counted file is
    /// committed at once unless a commit is still in flight; the files
    /// counted meanwhile go together in the next one, --commit-batch at
    /// most (a fixed bound, where batch jobs let it grow).
    #[arg(long)]
    pub stream: bool,
}

/// `wclab submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub redis: RedisArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub input: InputArgs,

    /// The job's name.
    #[arg(long, default_value = "wclab")]
    pub job: String,

    /// Delete an existing job of that name first.
    #[arg(long)]
    pub fresh: bool,

    /// Wait for the job to finish, then print the results like `run`.
    #[arg(long)]
    pub wait: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputArgs,
}

/// `wclab top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub redis: RedisArgs,

    /// The job.
    #[arg(long, default_value = "wclab")]
    pub job: String,

    /// How many words.
    #[arg(short, default_value_t = 20)]
    pub k: usize,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `wclab stream`.
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Files, directories or globs to inject, one task per file, in path
    /// order (e.g. the output of `wclab gen tweets`).
    #[arg(long, short, required = true, num_args = 1..)]
    pub input: Vec<String>,

    /// Files injected per second (one micro-batch each second).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: u64,

    /// Stop injecting after this long, e.g. 30s (default: when the input is
    /// used up).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,

    /// Normal worker processes.
    #[arg(long, short, default_value_t = 2)]
    pub workers: usize,

    /// Extra workers that are killed with SIGKILL at random moments while
    /// files are injected (each is replaced at once). A crash waits (up to
    /// 2 s) for the worker to hold a task, so that it loses one.
    #[arg(long, default_value_t = 0)]
    pub crashing: usize,

    /// Mean time between two crashes of one crashing worker (each interval
    /// is drawn uniformly from half to one and a half times this).
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    pub crash_every: Duration,

    /// Extra workers that straggle: held to --straggler-cpu percent of a CPU
    /// by SIGSTOP/SIGCONT (as cpulimit does) from --straggle-from for
    /// --straggle-for.
    #[arg(long, default_value_t = 0)]
    pub stragglers: usize,

    /// CPU share of a straggler while it straggles, in percent.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub straggler_cpu: u64,

    /// Duty cycle of a straggler: it runs straggler-cpu percent of each
    /// period and is stopped for the rest (shorter than a task, so that each
    /// task is slowed down evenly).
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub straggler_period: Duration,

    /// When the stragglers start straggling (default: a quarter of the
    /// injection time).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub straggle_from: Option<Duration>,

    /// How long they straggle (default: half of the injection time).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub straggle_for: Option<Duration>,

    /// Speculative execution: idle workers count backup copies of tasks held
    /// much longer than usual (see `wclab worker --speculate`).
    #[arg(long)]
    pub speculate: bool,

    /// Where latency.csv, events.csv, summary.json and timeline.png go
    /// (created if missing).
    #[arg(long, default_value = "stream-out")]
    pub out: PathBuf,

    /// Name of this run in plot legends (default: "<rate> files/s").
    #[arg(long)]
    pub label: Option<String>,

    /// Input format: `csv` (count one column) or `text`.
    #[arg(long, default_value = "csv", value_parser = ["text", "csv"])]
    pub format: String,

    /// With --format csv: the header name of the column to count.
    #[arg(long, default_value = "text")]
    pub column: String,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub lease: LeaseArgs,

    /// Counting threads per worker.
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    pub threads: usize,

    /// Seed of the chaos: when the crashing workers die.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Inject each second's files evenly over the second (one every 1/R s)
    /// instead of all at its start (the seed's micro-batches, the
    /// default): the latency then shows the service without the
    /// micro-batch's own queue.
    #[arg(long)]
    pub spread: bool,

    /// After the last injection, wait this long at most for the files in
    /// flight before giving up on them.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,

    /// Use this Redis instead of starting a private one (the job is left in
    /// it): redis://[user:password@]host:port[/db].
    #[arg(long, env = crate::REDIS_URL_ENV, hide_env_values = true)]
    pub redis: Option<String>,

    /// Job name (default: a fresh name per run).
    #[arg(long)]
    pub job: Option<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub server_tls: ServerTlsArgs,
}

/// `wclab acl`.
#[derive(Debug, Args)]
pub struct AclArgs {
    /// Create the users on the server of --redis (WCLAB_REDIS_URL: an
    /// administrator's URL) and load the function library, then print each
    /// role's URL.
    #[arg(long, requires = "redis")]
    pub apply: bool,

    /// The server: an administrator's URL with --apply; without it, only
    /// its host and port are used, in the URLs printed.
    #[arg(long, env = crate::REDIS_URL_ENV, hide_env_values = true)]
    pub redis: Option<String>,

    /// Users for this job's keys only (wclab:{JOB}:*), named ROLE-JOB,
    /// instead of every job's (named after their roles).
    #[arg(long)]
    pub job: Option<String>,

    /// Without --apply: `commands` (ACL SETUSER, for redis-cli) or `conf`
    /// (`user` lines, for redis.conf or an ACL file).
    #[arg(long, value_enum, default_value_t = AclFormat::Commands)]
    pub format: AclFormat,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,
}

/// How `wclab acl` prints the users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AclFormat {
    /// `ACL SETUSER ...`, one per line.
    Commands,
    /// `user ...` lines.
    Conf,
}

/// `wclab tls-certs`.
#[derive(Debug, Args)]
pub struct TlsCertsArgs {
    /// Directory for ca.pem, server.pem and server.key (created if missing).
    #[arg(long)]
    pub out: PathBuf,

    /// A host name or IP address the server is reached by (repeatable, or
    /// comma-separated). Default: 127.0.0.1, localhost and ::1.
    #[arg(long, value_delimiter = ',')]
    pub host: Vec<String>,

    /// Instead, for a Raft cluster in mutual TLS: a cluster CA (ca.pem) and,
    /// per node ID given, node-ID.pem and node-ID.key, naming the node (its
    /// peers check it) and the --host names (its clients check them);
    /// for `wclab raft node --tls-cert --tls-key --tls-ca`.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub raft_nodes: Vec<u64>,

    /// With --raft-nodes: also a client certificate (client-NAME.pem,
    /// client-NAME.key) per name; it names no node, so it opens no peer
    /// RPC.
    #[arg(long, value_delimiter = ',', requires = "raft_nodes")]
    pub client: Vec<String>,
}

/// `wclab plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// latency.csv files, or directories holding one (as written by `wclab
    /// stream --out DIR`); each is one series. The events.csv beside each is
    /// marked too.
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<PathBuf>,

    /// Legend of each series, in the order of the inputs (default: the label
    /// in the summary.json beside it, else its directory's name).
    #[arg(long)]
    pub label: Vec<String>,

    /// The PNG file to write (default: plot.png beside the first input's
    /// latency.csv).
    #[arg(long, short)]
    pub out: Option<PathBuf>,

    /// Caption of the figure (with --panels, above all of them).
    #[arg(long)]
    pub title: Option<String>,

    /// Draw the inputs as this many panels side by side, the first 1/N of
    /// the inputs in the first, and so on (e.g. one panel per scenario).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub panels: u32,

    /// Caption of each panel, in order.
    #[arg(long)]
    pub panel_title: Vec<String>,

    /// Panels per row.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub columns: u32,

    /// Width in pixels (of each panel).
    #[arg(long, default_value_t = 1200)]
    pub width: u32,

    /// Height in pixels (of each panel).
    #[arg(long, default_value_t = 600)]
    pub height: u32,

    /// Logarithmic latency axis (default: logarithmic only when a panel's
    /// worst latency is more than 8 times its median, so that a 5 s file
    /// and 50 ms ones are both readable).
    #[arg(long, conflicts_with = "linear")]
    pub log: bool,

    /// Linear latency axis, whatever the latencies.
    #[arg(long)]
    pub linear: bool,
}

/// `wclab raft`: lab 4b.
#[derive(Debug, Subcommand)]
pub enum RaftCommand {
    /// Run one node: a RESP sidecar on --listen next to its own
    /// redis-server (persistence off; the Raft log in --dir is what lasts).
    /// Clients may connect to any node; followers proxy to the leader.
    ///
    /// With WCLAB_RAFT_PASSWORD set (the same on every node), clients and
    /// peers must AUTH with it; `wclab raft init/join/status` and
    /// `run --redis-cluster` use it too. With WCLAB_RAFT_ADMIN_PASSWORD set
    /// (the same on every node), cluster administration (RAFT.INIT, JOIN,
    /// REMOVE, PARTITION, SNAPSHOT, FAULT, TRACE) and, in plain text, peer
    /// commands need `AUTH admin` with it; `wclab raft init/join/remove`
    /// use it. Without it, in plain text any client may administer; in TLS
    /// only a node's certificate may. With --tls-cert, the node speaks
    /// TLS only and peers prove who they are by certificate; `wclab raft
    /// init/join/remove/status` then speak TLS when WCLAB_TLS_CA names
    /// the cluster's CA.
    Node(RaftNodeArgs),
    /// Make the first configuration of a new cluster (on one node, once).
    Init {
        /// A node of the cluster, HOST:PORT.
        #[arg(long)]
        node: String,
        /// The members, as ID=HOST:PORT (repeatable, or comma-separated).
        #[arg(long, required = true, value_delimiter = ',')]
        member: Vec<String>,
    },
    /// Add a running node to the cluster: as a learner until it has caught
    /// up, then as a voter.
    Join {
        /// Any node of the cluster, HOST:PORT (followers proxy to the leader).
        #[arg(long)]
        cluster: String,
        /// The new node's ID.
        #[arg(long)]
        id: u64,
        /// The new node's address, HOST:PORT.
        #[arg(long)]
        addr: String,
    },
    /// Remove a node from the cluster (voter or learner).
    Remove {
        /// Any node of the cluster, HOST:PORT (followers forward to the leader).
        #[arg(long)]
        cluster: String,
        /// The ID of the node to remove.
        #[arg(long)]
        id: u64,
    },
    /// Print a node's status (role, term, leader, commit and applied index,
    /// members); the same as `redis-cli -p PORT RAFT.INFO` or `INFO raft`.
    Status {
        /// Nodes to ask, HOST:PORT,HOST:PORT,...
        #[arg(long, value_delimiter = ',', required = true)]
        node: Vec<String>,
    },
    /// Measure the write latency of the commit FCALL (wclab_commit) through
    /// the normal client path: claim a task, commit it, N times; prints
    /// p50/p99 in milliseconds as JSON (one line), and with --breakdown
    /// where the time goes on a Raft cluster, stage by stage.
    BenchCommit {
        /// Redis URL, or HOST:PORT,HOST:PORT,... of a Raft cluster (the
        /// client starts with the first).
        #[arg(long)]
        redis: String,
        /// Number of commits.
        #[arg(long, default_value_t = 500)]
        commits: usize,
        /// Distinct words per commit.
        #[arg(long, default_value_t = 200)]
        words: usize,
        /// After each commit, `WAIT N` for N replicas of a plain Redis to
        /// have it (timed with the commit): Redis's own replication as an
        /// anchor.
        #[arg(long, default_value_t = 0)]
        wait_replicas: u32,
        /// On a Raft cluster (given as HOST:PORT,...): trace every node
        /// (`RAFT.TRACE`) and print where a commit's time goes.
        #[arg(long)]
        breakdown: bool,
        /// Clients committing at once, each on its own connection (the
        /// commits are shared out among them); with more than one, the
        /// figure to read is claims_and_commits_per_s (group commit).
        #[arg(long, default_value_t = 1)]
        clients: usize,
        #[command(flatten)]
        #[allow(missing_docs)]
        tls: TlsArgs,
    },
    /// Measure failover: start a local cluster, kill its leader (SIGKILL)
    /// again and again while a client writes, and print, as that client
    /// sees it, the time from each kill to the first acknowledged write
    /// sent after it; optionally with a job and CPU hogs running, and after
    /// a fault-free watch of the terms.
    FailoverBench {
        /// Nodes in the cluster (2f+1).
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Leader kills.
        #[arg(long, default_value_t = 20)]
        kills: usize,
        /// Run a word-count job in a loop against the cluster meanwhile.
        #[arg(long)]
        job: bool,
        /// Keep every core busy with a spinning process meanwhile.
        #[arg(long)]
        hog: bool,
        /// Before the kills, count term changes for this long without faults.
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        quiet: Duration,
        /// Directory for the nodes (emptied first).
        #[arg(long, default_value = "out/failover-bench")]
        dir: PathBuf,
        /// Leader heartbeat of the nodes.
        #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
        heartbeat: Duration,
        /// Election timeout (leader lease) of the nodes; default 4 heartbeats.
        #[arg(long, value_parser = humantime::parse_duration)]
        election_timeout: Option<Duration>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// The wclab binary that runs the nodes (default: this one); an
        /// older build gives a before/after in the same session.
        #[arg(long)]
        node_binary: Option<PathBuf>,
    },
}

/// `wclab raft node`.
#[derive(Debug, Args)]
pub struct RaftNodeArgs {
    /// This node's ID in the cluster (a positive integer).
    #[arg(long)]
    pub id: u64,
    /// Address to listen on for clients and peers, HOST:PORT.
    #[arg(long)]
    pub listen: String,
    /// Data directory (Raft log, vote, snapshot; the Redis's directory).
    #[arg(long)]
    pub dir: PathBuf,
    /// Leader heartbeat.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    pub heartbeat: Duration,
    /// Election timeout, also the leader lease: a follower that has not
    /// heard from a leader for 1 to 1.5 times this asks the others (pre-vote)
    /// and campaigns if a majority has not heard from one either.
    /// Default: 4 heartbeats.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub election_timeout: Option<Duration>,
    /// Take a snapshot every this many log entries.
    #[arg(long, default_value_t = 500)]
    pub snapshot_every: u64,
    /// Speak TLS only, to clients and peers: this node's certificate (PEM),
    /// which must name its ID (`wclab tls-certs --raft-nodes`); with
    /// --tls-key and --tls-ca. Peers then authenticate each other by their
    /// certificates (mutual TLS), not by WCLAB_RAFT_PASSWORD.
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The cluster's CA (PEM): the only one trusted, for peers and for
    /// clients' certificates.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_ca: Option<PathBuf>,
}

/// Parses a count that must be at least 1 (threads, workers): 0 would
/// start nothing and wait forever.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

/// Parses `64MiB`, `1G`, `4096`...
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 64MiB"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB, GiB)")),
    };
    // Unchecked, a huge size wrapped around silently in release builds.
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large (at most {} bytes)", u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_size("16777215GiB"), Ok(16777215 << 30));
        let e = parse_size("17179869184GiB").unwrap_err();
        assert!(e.contains("too large"), "{e}");
    }
}
