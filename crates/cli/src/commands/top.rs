use super::Outcome;
use crate::cli::TopArgs;
use crate::report::JsonWord;
use anyhow::Result;
use wclab_coord::{results, JobKeys};

pub async fn top(args: TopArgs) -> Result<Outcome> {
    super::warn_if_password_on_command_line(&args.redis.redis);
    let mut store = super::connect(&args.redis.redis).await?;
    let keys = JobKeys::new(&args.job);
    if !wclab_coord::job::status(&mut store, &keys).await?.exists {
        anyhow::bail!(
            "no job {:?} on {} (name it with --job; `wclab run` names its jobs run-<time>-<pid>)",
            args.job,
            store.target()
        );
    }
    let words = results::top(&mut store, &keys, args.k).await?;
    if args.json {
        let words: Vec<JsonWord> = words
            .into_iter()
            .map(|w| JsonWord {
                word: String::from_utf8_lossy(&w.word).into_owned(),
                count: w.count,
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&words)?);
    } else {
        for w in words {
            let word = String::from_utf8_lossy(&w.word);
            println!("{}\t{}", crate::report::table_word(&word), w.count);
        }
    }
    Ok(Outcome::Success)
}
