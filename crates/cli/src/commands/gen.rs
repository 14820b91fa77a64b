use super::Outcome;
use crate::cli::GenCommand;
use anyhow::Result;

pub fn gen(what: GenCommand) -> Result<Outcome> {
    let manifest = match what {
        GenCommand::Text {
            out,
            files,
            size,
            seed,
            nested,
            vocab,
        } => {
            let opts = wclab_gen::TextOptions {
                files,
                bytes_per_file: size,
                seed,
                nested,
                vocab,
                ..wclab_gen::TextOptions::new(out)
            };
            wclab_gen::text_corpus(&opts)?
        }
        GenCommand::Tweets {
            out,
            files,
            rows,
            seed,
        } => {
            let opts = wclab_gen::TweetOptions {
                files,
                rows,
                seed,
                ..wclab_gen::TweetOptions::new(out)
            };
            wclab_gen::tweet_corpus(&opts)?
        }
    };
    eprintln!(
        "wrote {} files, {:.1} MB, into {}",
        manifest.files.len(),
        manifest.total_bytes as f64 / 1e6,
        manifest.root.display()
    );
    Ok(Outcome::Success)
}
