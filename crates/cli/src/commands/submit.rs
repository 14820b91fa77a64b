use super::Outcome;
use crate::cli::SubmitArgs;
use anyhow::Result;
use std::time::Instant;
use wclab_coord::{job, JobKeys};

pub async fn submit(args: SubmitArgs) -> Result<Outcome> {
    let inputs = super::run::resolve_inputs(&args.input)?;
    super::warn_if_password_on_command_line(&args.redis.redis);
    let mut store = super::connect(&args.redis.redis).await?;
    let keys = JobKeys::new(&args.job);
    if args.fresh {
        job::delete(&mut store, &keys).await?;
    } else if let Some(existing) = job::spec(&mut store, &keys).await? {
        if existing.roots != inputs.roots || existing.total_tasks != inputs.tasks.len() as u64 {
            anyhow::bail!(
                "job {:?} already exists on {} with other inputs; pass --fresh to replace it, or another --job name",
                args.job,
                store.target()
            );
        }
    }
    if let Some(path) = args.output.output.as_ref().filter(|_| args.wait) {
        crate::report::check_output(path)?;
    }
    let started = Instant::now();
    let plan = super::run::plan(&inputs, &args.input);
    let added = plan.submit(&mut store, &keys).await?;
    eprintln!(
        "job {}: {} task(s) submitted ({} new) to {}",
        args.job,
        inputs.tasks.len(),
        added,
        store.target()
    );
    if !args.wait {
        eprintln!(
            "start workers with: WCLAB_REDIS_URL=<url> wclab worker --job {}",
            args.job
        );
        return Ok(Outcome::Success);
    }
    let pb = crate::progress::bar(inputs.total_bytes());
    let status = crate::progress::wait(&mut store, &keys, &plan, &pb).await?;
    pb.finish_and_clear();
    let mut summary = crate::report::gather(
        &mut store,
        &keys,
        &status,
        args.output.top,
        started.elapsed(),
        0,
    )
    .await?;
    summary.files = inputs.files.len() as u64;
    super::run::finish(&mut store, &keys, summary, &args.output).await
}
