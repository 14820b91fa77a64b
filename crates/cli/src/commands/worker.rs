use super::Outcome;
use crate::cli::WorkerArgs;
use anyhow::Result;
use wclab_coord::claim::ClaimRules;
use wclab_coord::{RetryPolicy, Store};
use wclab_worker::{Worker, WorkerConfig};

pub async fn worker(args: WorkerArgs) -> Result<Outcome> {
    let target = super::target(&args.redis.redis, &args.redis.tls)?;
    super::warn_if_password_on_command_line(&args.redis.redis);
    // At start, an unreachable Redis is most likely a wrong address: say so
    // within a minute. Once connected, a worker outlives Redis outages.
    let mut store = Store::connect(
        target,
        RetryPolicy::for_duration(std::time::Duration::from_secs(60)),
    )
    .await?;
    store.set_policy(RetryPolicy::FOREVER);
    let mut config = WorkerConfig::new(&args.job);
    config.rules = ClaimRules {
        lease: args.lease.lease_or(crate::cli::LeaseArgs::DEFAULT_LEASE),
        max_deliveries: args.lease.max_deliveries,
    };
    config.threads = args.threads;
    if args.stream {
        config.batch =
            wclab_worker::CommitBatch::stream(args.lease.commit_batch.unwrap_or(1) as usize);
    } else if let Some(n) = args.lease.commit_batch {
        config.batch.max_tasks = n as usize;
    }
    config.exit_when_done = args.exit_when_done;
    config.speculate = args
        .speculate
        .then(wclab_coord::speculate::SpeculationRules::default);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        super::stop_requested().await;
        tracing::info!("stop requested");
        let _ = stop_tx.send(true);
    });
    Worker::new(store, config).run(stop_rx).await?;
    Ok(Outcome::Success)
}
