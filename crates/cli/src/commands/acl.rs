//! `wclab acl`: the ACL users of wclab's roles, for a Redis run by someone
//! else than wclab (the roles themselves: `wclab_coord::acl`).

use super::Outcome;
use crate::cli::{AclArgs, AclFormat};
use anyhow::{Context, Result};
use wclab_coord::acl::{self, KeyScope, Role, User};
use wclab_server::config_arg;

pub async fn acl(args: AclArgs) -> Result<Outcome> {
    let (scope, users) = users(args.job.as_deref())?;
    if !args.apply {
        for user in &users {
            println!("{}", line(user, &scope, args.format));
        }
        let base = args.redis.as_deref().unwrap_or("redis://HOST:PORT");
        eprintln!("give each kind of process its user's URL (in WCLAB_REDIS_URL):");
        for user in &users {
            eprintln!("  {:<9} {}", user.role.name(), url_as(base, user)?);
        }
        eprintln!("and, once the users exist, load the function library as the administrator: wclab acl --apply does both");
        return Ok(Outcome::Success);
    }
    let admin = args
        .redis
        .as_deref()
        .context("--apply needs --redis or WCLAB_REDIS_URL")?;
    super::warn_if_password_on_command_line(admin);
    // Connecting as the administrator loads the function library.
    let mut store = super::connect_with(admin, &args.tls).await?;
    acl::apply(&mut store, &users, &scope).await?;
    let base = if args.tls.tls {
        super::with_tls(admin)
    } else {
        admin.to_owned()
    };
    for user in &users {
        println!("{}\t{}", user.role.name(), url_as(&base, user)?);
    }
    eprintln!(
        "created {} user(s) on {} and loaded the function library; they live in the server's memory: \
         keep them across restarts with ACL SAVE (aclfile) or CONFIG REWRITE",
        users.len(),
        store.target()
    );
    Ok(Outcome::Success)
}

/// A user per role: named after the role for every job's keys, or
/// ROLE-JOB for one job's.
fn users(job: Option<&str>) -> Result<(KeyScope, Vec<User>)> {
    let Some(job) = job else {
        return Ok((KeyScope::AllJobs, Role::ALL.map(User::random).to_vec()));
    };
    // The name goes into user names and URLs: keep it plain.
    if job.is_empty()
        || !job
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        anyhow::bail!(
            "--job {job:?}: per-job users are named ROLE-JOB, so the job name may only hold letters, digits, '-', '_' and '.'"
        );
    }
    let users = Role::ALL.map(|r| User {
        name: format!("{}-{job}", r.name()),
        ..User::random(r)
    });
    Ok((KeyScope::Job(job.to_owned()), users.to_vec()))
}

/// The user as a redis-cli command or a `user` line, arguments quoted as
/// Redis splits them.
fn line(user: &User, scope: &KeyScope, format: AclFormat) -> String {
    let args: Vec<String> = user
        .setuser_args(scope)
        .iter()
        .map(|a| config_arg(a))
        .collect();
    match format {
        AclFormat::Commands => format!("ACL SETUSER {}", args.join(" ")),
        AclFormat::Conf => format!("user {}", args.join(" ")),
    }
}

/// `base` (a URL, its user and password dropped) as `user`.
fn url_as(base: &str, user: &User) -> Result<String> {
    let (scheme, rest) = base
        .split_once("://")
        .with_context(|| format!("{base:?} is not a redis:// URL"))?;
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    Ok(format!("{scheme}://{}:{}@{host}", user.name, user.password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_user_and_drop_the_administrator() {
        let u = User {
            role: Role::Worker,
            name: "worker".into(),
            password: "pw".into(),
        };
        assert_eq!(
            url_as("rediss://:admin@h:1/0", &u).unwrap(),
            "rediss://worker:pw@h:1/0"
        );
        assert_eq!(url_as("redis://h:1", &u).unwrap(), "redis://worker:pw@h:1");
    }

    #[test]
    fn per_job_users_are_named_after_the_job_and_scoped_to_it() {
        let (scope, made) = users(Some("j1")).unwrap();
        assert_eq!(scope, KeyScope::Job("j1".into()));
        assert_eq!(made[0].name, "worker-j1");
        assert!(users(Some("a b")).is_err());
        let conf = line(&made[2], &scope, AclFormat::Conf);
        assert!(conf.starts_with("user observer-j1 reset on >"), "{conf}");
        assert!(conf.contains(" %R~wclab:{j1}:* "), "{conf}");
    }
}
