//! Bad input: a clear message, the right exit status, nothing dropped.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use wclab_testkit::{corpus, oracle};

#[test]
fn a_nonexistent_path_is_a_usage_error_that_names_it() {
    let o = output(wclab().args(["run", "--input", "/no/such/dir"]));
    assert_status(&o, 2);
    let e = stderr(&o);
    assert!(
        e.contains("/no/such/dir") && e.contains("no such file"),
        "{e}"
    );
}

#[test]
fn unreadable_files_are_reported_and_the_rest_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = corpus::english(&dir.path().join("in"), 3, 10_000, 4);
    let locked = root.join("locked");
    std::fs::create_dir(&locked).unwrap();
    for name in ["a.txt", "b.txt"] {
        let p = locked.join(name);
        std::fs::write(&p, "secret words").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    for p in [dir.path(), &root, &locked] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = dir.path().join("out.tsv");
    let mut cmd = wclab();
    // Root reads anything: drop to `nobody` so that permissions bite.
    if nix::unistd::geteuid().is_root() {
        // `nobody` may not be able to reach the build's own binary (a
        // checkout in a private directory): run a copy from the test's.
        let program = dir.path().join("wclab");
        std::fs::copy(cmd.get_program(), &program).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program)
            .env_remove("WCLAB_REDIS_URL")
            .env_remove("WCLAB_TEST_PAUSE")
            .env("NO_COLOR", "1");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let o = output(
        cmd.args(["run", "-w", "2", "--json", "--input"])
            .arg(&root)
            .arg("-o")
            .arg(&out),
    );
    assert_status(&o, 1);
    let e = stderr(&o);
    assert!(e.contains("2 file(s) could not be counted"), "{e}");
    assert!(
        e.contains("locked/a.txt") && e.contains("locked/b.txt") && e.contains("ermission denied"),
        "{e}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["failed"].as_array().unwrap().len(), 2);
    let mut want = oracle::WordMap::new();
    for f in std::fs::read_dir(&root).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            oracle::count(&std::fs::read(p).unwrap(), &mut want);
        }
    }
    oracle::assert_same(&read_output(&out), &want);
}

#[test]
fn a_wrong_password_is_a_configuration_error_without_leaking_the_password() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redis://:not-the-password@127.0.0.1:{}", server.port());
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    // Through the environment (as advised), and on the command line (which
    // gets a warning that `ps` shows it).
    for on_command_line in [false, true] {
        let mut cmd = wclab();
        cmd.arg("run");
        if on_command_line {
            cmd.args(["--redis", &url]);
        } else {
            cmd.env("WCLAB_REDIS_URL", &url);
        }
        let o = output(cmd.arg("--input").arg(dir.path()));
        assert_status(&o, 2);
        let e = stderr(&o);
        assert!(e.contains("rejected the password"), "{e}");
        assert!(!e.contains("not-the-password"), "password leaked: {e}");
        assert_eq!(
            e.contains("visible to every user in `ps`"),
            on_command_line,
            "{e}"
        );
    }
}

#[test]
fn an_unreachable_redis_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = output(
        wclab()
            .args([
                "run",
                "--redis",
                &format!("redis://127.0.0.1:{port}"),
                "--input",
            ])
            .arg(dir.path()),
    );
    assert_status(&o, 2);
    let e = stderr(&o);
    assert!(e.contains("unreachable"), "{e}");
    // One sentence: the cause once, not once per link of the error chain.
    assert_eq!(e.matches("Connection refused").count(), 1, "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn a_port_in_use_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let o = output(
        wclab()
            .args(["run", "--port", &port, "--input"])
            .arg(dir.path()),
    );
    assert_status(&o, 2);
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
}

#[test]
fn a_bad_url_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    let o = output(
        wclab()
            .args(["run", "--redis", "http://:pw@host", "--input"])
            .arg(dir.path()),
    );
    assert_status(&o, 2);
    let e = stderr(&o);
    assert!(e.contains("redis://") && !e.contains("pw@"), "{e}");
}

#[test]
fn a_missing_redis_server_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    let o = output(
        wclab()
            .args(["run", "--input"])
            .arg(dir.path())
            .env("WCLAB_REDIS_SERVER", "/nonexistent/redis-server"),
    );
    assert_status(&o, 2);
    assert!(
        stderr(&o).contains("apt-get install redis-server"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_stream_entry_outside_the_inputs_is_dead_lettered_not_read() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 1, 5_000, 1);
    let secret = dir.path().canonicalize().unwrap().join("secret.txt");
    std::fs::write(&secret, "classified").unwrap();
    assert_status(&submit(&server, "j", &[&root]), 0);
    // Written by hand, as with redis-cli: not something the submitter made.
    let mut c = wclab_testkit::redis::Client::connect(server.port(), server.password()).unwrap();
    let tasks = "wclab:{j}:tasks";
    let r = c.cmd(&[
        "XADD",
        tasks,
        "0-99",
        "path",
        secret.to_str().unwrap(),
        "start",
        "0",
        "end",
        "10",
        "injected",
        "0",
    ]);
    assert_eq!(r.text(), "0-99");
    let mut w = spawn_worker(&server, "j", &[], &["--exit-when-done"]);
    assert!(w.wait().unwrap().success());
    assert!(
        !counts_in_redis(&server, "j").contains_key(b"classified".as_slice()),
        "the file was read"
    );
    let dead = c.cmd(&["XRANGE", "wclab:{j}:dead", "-", "+"]);
    let fields: Vec<String> = dead.array()[0].array()[1]
        .array()
        .iter()
        .map(|f| f.text())
        .collect();
    assert!(
        fields
            .iter()
            .any(|f| f.contains("not written by wclab_submit")),
        "{fields:?}"
    );
}

#[test]
fn a_hand_written_entry_naming_a_job_file_is_not_counted_twice_nor_ends_the_job_early() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 3, 5_000, 4);
    assert_status(&submit(&server, "j", &[&root]), 0);
    let file = std::fs::read_dir(&root)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // Two hand-written entries after the job's: one naming a file of the
    // job, one outside it. Neither may be read, and neither may stand in
    // for a real task when deciding that the job is finished.
    let mut c = wclab_testkit::redis::Client::connect(server.port(), server.password()).unwrap();
    for (id, path) in [("0-90", file.to_str().unwrap()), ("0-91", "/etc/hostname")] {
        let r = c.cmd(&[
            "XADD",
            "wclab:{j}:tasks",
            id,
            "path",
            path,
            "start",
            "0",
            "end",
            "100000",
            "injected",
            "0",
        ]);
        assert_eq!(r.text(), id);
    }
    // Two slow workers: the hand-written entries are handed out while real
    // tasks are still being counted.
    let pause = [("WCLAB_TEST_PAUSE", "while_counting:300")];
    let mut workers = [
        spawn_worker(&server, "j", &pause, &["--commit-batch", "1"]),
        spawn_worker(&server, "j", &pause, &["--commit-batch", "1"]),
    ];
    let o = output(
        wclab()
            .args([
                "submit", "--job", "j", "--wait", "--json", "-k", "0", "--input",
            ])
            .arg(&root)
            .env("WCLAB_REDIS_URL", server.url()),
    );
    for w in &mut workers {
        w.kill().unwrap();
        let _ = w.wait();
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(
        v["tasks_done"],
        3,
        "finished before every real task was counted:\n{}\n{}",
        stderr(&o),
        String::from_utf8_lossy(&o.stdout)
    );
    oracle::assert_same(&counts_in_redis(&server, "j"), &oracle::count_tree(&root));
    // Reported, not silently dropped.
    assert_status(&o, 1);
    assert!(
        stderr(&o).contains("not written by wclab_submit"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_password_never_appears_on_a_command_line() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 4, 5_000, 2);
    let mut run = wclab()
        .args(["run", "-w", "2", "--input"])
        .arg(&root)
        .env("WCLAB_REDIS_URL", server.url())
        .env("WCLAB_TEST_PAUSE", "while_counting:300")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let workers =
        wclab_testkit::procs::wait_for("workers", std::time::Duration::from_secs(20), || {
            let w = wclab_testkit::procs::workers_of(run.id());
            (w.len() == 2).then_some(w)
        });
    for pid in workers.iter().chain([&run.id()]) {
        let cmdline = wclab_testkit::procs::cmdline(*pid);
        assert!(
            !cmdline.contains(server.password()),
            "password in `ps`: {cmdline}"
        );
    }
    assert!(run.wait().unwrap().success());
}

#[test]
fn a_run_killed_with_sigkill_leaves_no_redis_server_or_worker_behind() {
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 20, 5_000, 8);
    let mut run = wclab()
        .args(["run", "-w", "2", "--input"])
        .arg(&root)
        .env("WCLAB_TEST_PAUSE", "while_counting:2000")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let kids = wclab_testkit::procs::wait_for(
        "a redis-server and two workers",
        std::time::Duration::from_secs(30),
        || {
            let k = wclab_testkit::procs::children(run.id());
            (k.len() >= 3).then_some(k)
        },
    );
    wclab_testkit::procs::kill9(run.id());
    run.wait().unwrap();
    wclab_testkit::procs::wait_for(
        "the children to die with their parent",
        std::time::Duration::from_secs(30),
        || {
            kids.iter()
                .all(|&p| wclab_testkit::procs::is_dead(p))
                .then_some(())
        },
    );
}

#[test]
fn the_private_redis_password_is_on_no_command_line_either() {
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 4, 5_000, 2);
    let mut run = wclab()
        .args(["run", "-w", "2", "--input"])
        .arg(&root)
        .env("WCLAB_TEST_PAUSE", "while_counting:300")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let workers =
        wclab_testkit::procs::wait_for("workers", std::time::Duration::from_secs(20), || {
            let w = wclab_testkit::procs::workers_of(run.id());
            (w.len() == 2).then_some(w)
        });
    // The random password, as the workers got it: in their environment.
    let environ = std::fs::read(format!("/proc/{}/environ", workers[0])).unwrap();
    let url = environ
        .split(|&b| b == 0)
        .find_map(|v| v.strip_prefix(b"WCLAB_REDIS_URL="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .expect("the URL reaches the workers through their environment");
    let password = url
        .split_once("://:")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(pw, _)| pw.to_owned())
        .expect("a password in the URL");
    assert!(password.len() >= 16, "a random password: {password}");
    let everyone = wclab_testkit::procs::children(run.id());
    assert!(
        everyone.len() >= 3,
        "redis-server and two workers: {everyone:?}"
    );
    for pid in everyone.iter().chain([&run.id()]) {
        let cmdline = wclab_testkit::procs::cmdline(*pid);
        assert!(!cmdline.contains(&password), "password in `ps`: {cmdline}");
    }
    assert!(run.wait().unwrap().success());
}

#[test]
fn a_huge_word_is_shortened_in_the_table_and_kept_whole_in_the_output_file() {
    // An input without spaces is one word as long as the file: the table
    // shows its beginning and its length, the `-o` file the word itself.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let word = "x".repeat(2_000_000);
    std::fs::write(input.join("one-word.txt"), format!("{word} short short")).unwrap();
    let out = dir.path().join("counts.tsv");
    let o = output(
        wclab()
            .args(["run", "--workers", "1", "-k", "5", "--input"])
            .arg(&input)
            .arg("-o")
            .arg(&out),
    );
    assert_status(&o, 0);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.len() < 4_000, "{} bytes on stdout", table.len());
    assert!(table.contains("… (2000000 bytes)"), "{table}");
    assert!(table.contains("short"), "{table}");
    let file = std::fs::read_to_string(&out).unwrap();
    assert!(
        file.contains(&format!("{word}\t1")),
        "the -o file lost the word"
    );
}

#[test]
fn an_interrupted_run_leaves_the_old_output_file_as_it_was() {
    // The -o file is replaced whole once the job is done: Ctrl-C in the
    // middle leaves no empty file, and an earlier run's file untouched.
    let dir = tempfile::tempdir().unwrap();
    let root = corpus::english(&dir.path().join("in"), 20, 5_000, 7);
    for earlier in [None, Some("earlier\t1\n")] {
        let out = dir.path().join("counts.tsv");
        let _ = std::fs::remove_file(&out);
        if let Some(text) = earlier {
            std::fs::write(&out, text).unwrap();
        }
        let child = wclab()
            .args(["run", "--workers", "1", "--input"])
            .arg(&root)
            .arg("-o")
            .arg(&out)
            .env("WCLAB_TEST_PAUSE", "while_counting:300")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        wclab_testkit::procs::signal(child.id(), nix::sys::signal::Signal::SIGINT);
        let o = wait_output(child, std::time::Duration::from_secs(30));
        assert!(!o.status.success(), "the run was not interrupted");
        match earlier {
            None => assert!(!out.exists(), "an interrupted run left {}", out.display()),
            Some(text) => assert_eq!(std::fs::read_to_string(&out).unwrap(), text),
        }
        let strays: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "in" && n != "counts.tsv")
            .collect();
        assert!(strays.is_empty(), "temporary files left: {strays:?}");
    }
}

#[test]
fn zero_threads_workers_or_port_are_usage_errors_naming_the_flag() {
    for (flag, value) in [("--threads", "0"), ("--workers", "0"), ("--port", "0")] {
        let o = output(wclab().args(["run", flag, value, "--input", "."]));
        assert_status(&o, 2);
        let e = stderr(&o);
        assert!(e.contains(flag), "{flag} {value}: {e}");
    }
}
