//! The protocol has one specification, `docs/protocol.md`; these tests fail
//! when it, the Lua source and this crate's calls disagree on any
//! function's KEYS and ARGV, or on an argument's type.
//!
//! * The spec's `wclab-signature` blocks against `SIGNATURES` in
//!   `lua/wclab.lua` (which its own checks are built from), and its
//!   `wclab-argument-types` block against `ARG_TYPES`.
//! * Each signature against the call this crate builds: every function is
//!   built with distinct values (a consumer "C", a lease of 1111 ms, ...),
//!   and its KEYS must be the [`JobKeys`] of the spec's roles, its ARGV the
//!   spec's arguments in order, each with the value given for its name.

use crate::claim::ClaimRules;
use crate::commit::Committed;
use crate::speculate::SpeculationRules;
use crate::submit::TaskSpec;
use crate::JobKeys;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

/// One function's signature: KEYS roles and the ARGV grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signature {
    keys: Vec<String>,
    argv: String,
}

fn read(relative: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn spec_text() -> String {
    read("../../docs/protocol.md")
}

fn lua_text() -> String {
    read("../../lua/wclab.lua")
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The fenced blocks of `markdown` whose info string is `kind`.
fn blocks<'a>(markdown: &'a str, kind: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim()) {
            (None, l) if l == format!("```{kind}") => current = Some(Vec::new()),
            (Some(_), "```") => out.push(current.take().unwrap()),
            (Some(lines), l) if !l.is_empty() => lines.push(l),
            _ => {}
        }
    }
    assert!(current.is_none(), "an unterminated ```{kind} block");
    out
}

fn spec_signatures(markdown: &str) -> BTreeMap<String, Signature> {
    let mut out = BTreeMap::new();
    for block in blocks(markdown, "wclab-signature") {
        let [name, keys, argv] = block[..] else {
            panic!("a wclab-signature block is a name, KEYS and ARGV: {block:?}");
        };
        let keys = keys
            .strip_prefix("KEYS ")
            .unwrap_or_else(|| panic!("{name}: the second line starts with KEYS"));
        let argv = argv
            .strip_prefix("ARGV ")
            .unwrap_or_else(|| panic!("{name}: the third line starts with ARGV"));
        let sig = Signature {
            keys: keys.split_whitespace().map(str::to_owned).collect(),
            argv: normalise(argv),
        };
        assert!(
            out.insert(name.to_owned(), sig).is_none(),
            "{name} twice in the spec"
        );
    }
    out
}

fn spec_types(markdown: &str) -> BTreeMap<String, String> {
    let all = blocks(markdown, "wclab-argument-types");
    assert_eq!(all.len(), 1, "one wclab-argument-types block");
    all[0]
        .iter()
        .map(|l| {
            let mut parts = l.split_whitespace();
            let (Some(name), Some(ty), None) = (parts.next(), parts.next(), parts.next()) else {
                panic!("an argument type line is `name type`: {l:?}");
            };
            (name.to_owned(), ty.to_owned())
        })
        .collect()
}

/// The body of the Lua table `local NAME = { ... }`.
fn lua_table<'a>(lua: &'a str, name: &str) -> &'a str {
    let head = format!("local {name} = {{");
    let from = lua
        .find(&head)
        .unwrap_or_else(|| panic!("no `{head}` in the Lua"))
        + head.len();
    let to = from
        + lua[from..]
            .find("\n}")
            .unwrap_or_else(|| panic!("{name} is not closed"));
    &lua[from..to]
}

/// `{'wclab_x', 'keys', 'argv'},` lines of SIGNATURES.
fn lua_signatures(lua: &str) -> BTreeMap<String, Signature> {
    let mut out = BTreeMap::new();
    for line in lua_table(lua, "SIGNATURES").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("--") {
            continue;
        }
        let quoted: Vec<&str> = line.split('\'').skip(1).step_by(2).collect();
        let [name, keys, argv] = quoted[..] else {
            panic!("a SIGNATURES line is {{'name', 'keys', 'argv'}}: {line}");
        };
        out.insert(
            name.to_owned(),
            Signature {
                keys: keys.split_whitespace().map(str::to_owned).collect(),
                argv: normalise(argv),
            },
        );
    }
    out
}

/// `name = 'type',` (or `['end'] = 'type',`) lines of ARG_TYPES.
fn lua_types(lua: &str) -> BTreeMap<String, String> {
    lua_table(lua, "ARG_TYPES")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .map(|l| {
            let (name, ty) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("an ARG_TYPES line is name = 'type': {l}"));
            let name = name.trim().trim_start_matches("['").trim_end_matches("']");
            let ty = ty.trim().trim_end_matches(',').trim_matches('\'');
            (name.to_owned(), ty.to_owned())
        })
        .collect()
}

/// One element of an ARGV grammar.
enum Item {
    One(String),
    Group { names: Vec<String>, times: String },
}

fn parse_argv(argv: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut rest = argv.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('(') {
            let close = after.find(')').expect("a ( without )");
            let names = after[..close]
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            let tail = after[close + 1..]
                .strip_prefix('*')
                .expect("a group is (...)* or (...)*n");
            let end = tail.find(' ').unwrap_or(tail.len());
            items.push(Item::Group {
                names,
                times: tail[..end].to_owned(),
            });
            rest = tail[end..].trim_start();
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            items.push(Item::One(rest[..end].to_owned()));
            rest = rest[end..].trim_start();
        }
    }
    items
}

/// The ARGV a signature says, given the values of each argument name in
/// the order they are used; every value must be used.
fn expected_argv(function: &str, argv: &str, values: &HashMap<&str, Vec<&str>>) -> Vec<String> {
    let mut left: HashMap<&str, VecDeque<&str>> = values
        .iter()
        .map(|(k, v)| (*k, v.iter().copied().collect()))
        .collect();
    let mut take = |name: &str| -> String {
        left.get_mut(name)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| panic!("{function}: the spec has argument `{name}`, the test gives no (more) value for it"))
            .to_owned()
    };
    let mut out: Vec<String> = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for item in parse_argv(argv) {
        match item {
            Item::One(name) => {
                let v = take(&name);
                seen.insert(name, v.clone());
                out.push(v);
            }
            Item::Group { names, times } => {
                let reps: usize = if times.is_empty() {
                    values.get(names[0].as_str()).map_or(0, Vec::len)
                } else {
                    seen.get(&times)
                        .unwrap_or_else(|| {
                            panic!("{function}: `{times}` is used before it is given")
                        })
                        .parse()
                        .unwrap()
                };
                for _ in 0..reps {
                    for name in &names {
                        out.push(take(name));
                    }
                }
            }
        }
    }
    for (name, rest) in left {
        assert!(
            rest.is_empty(),
            "{function}: values for `{name}` left over: the spec has fewer such arguments than the call"
        );
    }
    out
}

fn text(arg: &[u8]) -> String {
    String::from_utf8(arg.to_vec()).unwrap()
}

/// The value of each argument name, in the order the arguments use them.
type Values = HashMap<&'static str, Vec<&'static str>>;

/// The call this crate builds for each function, with the value of each
/// argument name, in order of use.
fn rust_calls(keys: &JobKeys) -> Vec<(&'static str, redis::Cmd, Values)> {
    let common = |extra: &[(&'static str, Vec<&'static str>)]| {
        let mut m: Values = HashMap::from([
            ("now_ms", vec![""]),
            ("group", vec!["workers"]),
            ("consumer", vec!["C"]),
        ]);
        m.extend(extra.iter().cloned());
        m
    };
    let tasks = [
        TaskSpec {
            id: "1-1".into(),
            path: "/p1".into(),
            start: 10,
            end: 20,
        },
        TaskSpec {
            id: "1-2".into(),
            path: "/p2".into(),
            start: 30,
            end: 40,
        },
    ];
    let committed = [
        Committed {
            id: "2-1",
            bytes: 11,
        },
        Committed {
            id: "2-2",
            bytes: 22,
        },
    ];
    let (tally, words) = crate::commit::tally([(b"w6".as_slice(), 6), (b"w5".as_slice(), 5)]);
    assert_eq!(tally, b"6 w6\n5 w5\n");
    let claim_rules = ClaimRules {
        lease: Duration::from_millis(1111),
        max_deliveries: 2222,
    };
    let speculation = SpeculationRules {
        min_age: Duration::from_millis(3333),
        factor: 4.5,
        sample: 55,
    };
    let mut submit_values = common(&[
        ("id", vec!["1-1", "1-2"]),
        ("path", vec!["/p1", "/p2"]),
        ("start", vec!["10", "30"]),
        ("end", vec!["20", "40"]),
    ]);
    submit_values.remove("consumer");
    let commit_values = common(&[
        ("n", vec!["2"]),
        ("id", vec!["2-1", "2-2"]),
        ("bytes", vec!["11", "22"]),
        ("words", vec!["11"]),
        ("tally", vec!["6 w6\n5 w5\n"]),
    ]);
    let mut fold_values = common(&[
        ("first", vec!["1-2"]),
        ("last", vec!["3-4"]),
        ("n", vec!["5"]),
        ("words", vec!["11"]),
        ("tally", vec!["6 w6\n5 w5\n"]),
    ]);
    fold_values.remove("consumer");
    vec![
        (
            "wclab_submit",
            crate::submit::call(keys, &tasks),
            submit_values,
        ),
        (
            "wclab_claim",
            crate::claim::call(keys, "C", claim_rules),
            common(&[("lease_ms", vec!["1111"]), ("max_deliveries", vec!["2222"])]),
        ),
        (
            "wclab_renew",
            crate::renew::call(keys, "C", "7-8"),
            common(&[("id", vec!["7-8"])]),
        ),
        (
            "wclab_commit",
            crate::commit::call(keys, "C", &committed, words, &tally),
            commit_values,
        ),
        (
            "wclab_fold",
            crate::fold::call(keys, "1-2", "3-4", 5, words, &tally),
            fold_values,
        ),
        (
            "wclab_dead",
            crate::dead_letter::call(keys, "C", "7-8", "R"),
            common(&[("id", vec!["7-8"]), ("reason", vec!["R"])]),
        ),
        (
            "wclab_release",
            crate::release::call(keys, "C", Duration::from_millis(1111), "7-8"),
            common(&[("lease_ms", vec!["1111"]), ("id", vec!["7-8"])]),
        ),
        (
            "wclab_speculate",
            crate::speculate::call(keys, "C", speculation),
            common(&[
                ("min_age_ms", vec!["3333"]),
                ("factor", vec!["4.5"]),
                ("sample", vec!["55"]),
            ]),
        ),
    ]
}

/// Every difference between the spec and the Rust calls, as text.
fn rust_disagreements(spec: &BTreeMap<String, Signature>) -> Vec<String> {
    let keys = JobKeys::new("J");
    let mut problems = Vec::new();
    let calls = rust_calls(&keys);
    let built: Vec<&str> = calls.iter().map(|c| c.0).collect();
    for name in spec.keys() {
        if !built.contains(&name.as_str()) {
            problems.push(format!(
                "{name}: in the spec, but coord builds no call of it"
            ));
        }
    }
    for (name, cmd, values) in calls {
        let Some(sig) = spec.get(name) else {
            problems.push(format!("{name}: coord calls it, the spec has no signature"));
            continue;
        };
        let args: Vec<String> = cmd
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => text(b),
                _ => "<not a plain argument>".into(),
            })
            .collect();
        let want_keys: Vec<String> = sig
            .keys
            .iter()
            .map(|role| {
                keys.role(role)
                    .unwrap_or_else(|| panic!("{name}: no JobKeys role `{role}`"))
                    .to_owned()
            })
            .collect();
        let head = vec![
            "FCALL".to_owned(),
            name.to_owned(),
            want_keys.len().to_string(),
        ];
        let want: Vec<String> = head
            .into_iter()
            .chain(want_keys)
            .chain(expected_argv(name, &sig.argv, &values))
            .collect();
        if args != want {
            problems.push(format!(
                "{name}: coord sends\n    {args:?}\n  the spec says\n    {want:?}"
            ));
        }
    }
    problems
}

#[test]
fn the_spec_and_the_lua_name_the_same_keys_and_arguments() {
    let spec = spec_signatures(&spec_text());
    let lua = lua_signatures(&lua_text());
    assert!(!spec.is_empty());
    assert_eq!(
        spec.keys().collect::<Vec<_>>(),
        lua.keys().collect::<Vec<_>>(),
        "functions in docs/protocol.md vs SIGNATURES in lua/wclab.lua"
    );
    for (name, sig) in &spec {
        assert_eq!(
            Some(sig),
            lua.get(name),
            "{name}: docs/protocol.md vs lua/wclab.lua"
        );
    }
}

#[test]
fn the_spec_and_the_lua_give_every_argument_the_same_type() {
    let spec = spec_types(&spec_text());
    let lua = lua_types(&lua_text());
    assert_eq!(
        spec, lua,
        "argument types: docs/protocol.md vs lua/wclab.lua"
    );
    // Every argument of every signature has a type.
    for (name, sig) in spec_signatures(&spec_text()) {
        for arg in sig
            .argv
            .split(|c: char| c.is_whitespace() || "()*".contains(c))
        {
            let arg = arg.trim();
            if arg.is_empty() {
                continue;
            }
            assert!(
                spec.contains_key(arg),
                "{name}: argument `{arg}` has no type"
            );
        }
    }
}

#[test]
fn coord_calls_every_function_as_the_spec_says() {
    let problems = rust_disagreements(&spec_signatures(&spec_text()));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_disagreement_is_found() {
    // The check itself: a spec with two arguments swapped, a key missing,
    // or a function too many does not pass.
    let mut spec = spec_signatures(&spec_text());
    let claim = spec.get_mut("wclab_claim").unwrap();
    claim.argv = claim
        .argv
        .replace("lease_ms max_deliveries", "max_deliveries lease_ms");
    let renew = spec.get_mut("wclab_renew").unwrap();
    renew.keys.pop();
    spec.insert(
        "wclab_other".into(),
        Signature {
            keys: vec!["tasks".into()],
            argv: "now_ms group".into(),
        },
    );
    let problems = rust_disagreements(&spec).join("\n");
    for name in ["wclab_claim", "wclab_renew", "wclab_other"] {
        assert!(problems.contains(name), "{name} not found in:\n{problems}");
    }
}
