//! Hostile input, one test per validation rule: each asserts that the app is refused (and only
//! that app), and that the error names the file and the key or the line.

use crate::common::*;
use archy::load::MAX_FILE_SIZE;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// A manifest for `id` whose extra text starts on line 6.
fn app(id: &str, extra: &str) -> String {
    format!("[app]\nid = \"{id}\"\n\n[image]\nref = \"docker.io/library/busybox:1.37\"\n{extra}")
}

/// Asserts `stem` alone is invalid and returns its errors.
fn refused(t: &Tree, stem: &str) -> Vec<String> {
    let c = t.catalog_of();
    let errs = errors_of(&c, stem);
    assert!(!errs.is_empty());
    errs
}

/// Asserts that one of `errs` starts with the file and line, and mentions `needle`.
fn at_line(errs: &[String], file: &Path, line: usize, needle: &str) {
    let prefix = format!("{}:{line}:", file.display());
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&prefix) && e.contains(needle)),
        "no error at {prefix} mentioning {needle:?}: {errs:#?}"
    );
}

/// Asserts that one of `errs` names the file and then the key, and mentions `needle`.
fn at_key(errs: &[String], file: &Path, key: &str, needle: &str) {
    let file = file.display().to_string();
    assert!(
        errs.iter().any(|e| {
            e.strip_prefix(&file)
                .and_then(|rest| rest.split_once(": "))
                .is_some_and(|(pos, msg)| {
                    (pos.is_empty() || pos.starts_with(':'))
                        && msg.starts_with(&format!("{key}: "))
                        && msg.contains(needle)
                })
        }),
        "no error in {file} naming key {key:?} and mentioning {needle:?}: {errs:#?}"
    );
}

/// The app still renders a failing unit (when its stem is an id), so its failure shows.
fn fails_visibly(t: &Tree, stem: &str) {
    let r = t.render();
    let unit = file(&r, &format!("archy-{stem}.service"));
    assert_eq!(
        values(unit, "ExecStart"),
        [format!("{HOOK} explain {stem}")]
    );
    assert!(!names(&r).contains(&format!("archy-{stem}.container").as_str()));
    assert!(r.target_wants.contains(&stem.to_string()));
}

#[test]
fn unknown_key_at_top_level() {
    let t = Tree::new();
    let f = t.vendor("x", format!("colour = \"red\"\n{}", app("x", "")));
    let errs = refused(&t, "x");
    at_line(&errs, &f, 1, "unknown field `colour`");
    fails_visibly(&t, "x");
}

#[test]
fn unknown_key_in_a_section() {
    let t = Tree::new();
    let f = t.vendor("x", app("x", "\n[container]\ncomand = [\"sh\"]\n"));
    at_line(&refused(&t, "x"), &f, 8, "unknown field `comand`");
    let f = t.vendor("y", app("y", "\n[health]\ncmd = \"true\"\nretires = 3\n"));
    at_line(&refused(&t, "y"), &f, 9, "unknown field `retires`");
    let f = t.vendor("z", app("z", "\n[image2]\nref = \"x\"\n"));
    at_line(&refused(&t, "z"), &f, 7, "unknown field `image2`");
}

#[test]
fn unknown_key_in_a_nested_table() {
    let t = Tree::new();
    let f = t.vendor(
        "x",
        app(
            "x",
            "\n[container]\nports = [{ host = 1, container = 2, proto = \"udp\" }]\n",
        ),
    );
    at_line(&refused(&t, "x"), &f, 8, "unknown field `proto`");
    let f = t.vendor(
        "y",
        app(
            "y",
            "\n[[container.volumes]]\ntarget = \"/data\"\nreadonly = true\n",
        ),
    );
    at_line(&refused(&t, "y"), &f, 9, "unknown field `readonly`");
    let f = t.vendor(
        "z",
        app(
            "z",
            "\n[[config]]\ntemplate = \"a\"\ntarget = \"/a\"\nmode = \"0600\"\n",
        ),
    );
    at_line(&refused(&t, "z"), &f, 10, "unknown field `mode`");
}

#[test]
fn ids_must_be_lowercase_names() {
    for bad in ["Bad", "1abc", "a_b", "-a", "a.b", "é", "a b"] {
        let t = Tree::new();
        let f = t.vendor(bad, app(bad, ""));
        let c = t.catalog_of();
        let errs = errors_of(&c, bad);
        at_line(&errs, &f, 2, &format!("`{bad}` is not a valid name"));
        // a stem that is no id gets no unit, but still a problem naming the file
        let r = t.render();
        assert_eq!(names(&r), ["archy.network", "archy.target"], "{bad}");
        assert!(
            r.problems.iter().any(
                |p| p.starts_with(&f.display().to_string()) && p.contains("not a valid app id")
            ),
            "{bad}: {:#?}",
            r.problems
        );
    }
    // a well-formed id in the file but not in the file name
    let t = Tree::new();
    let f = t.vendor("Bad", app("bad", ""));
    at_key(
        &refused(&t, "Bad"),
        &f,
        "[app] id",
        "does not match the file name `Bad.toml`",
    );
    // 64 characters is the limit, not beyond (that one still gets a failing unit: its name is fine)
    let ok = "a".repeat(64);
    let long = "a".repeat(65);
    let t = Tree::new();
    t.vendor(&ok, app(&ok, ""));
    let f = t.vendor(&long, app(&long, ""));
    let c = t.catalog_of();
    assert!(c.valid.contains_key(&ok));
    at_line(&errors_of(&c, &long), &f, 2, "longer than 64 characters");
    fails_visibly(&t, &long);
}

#[test]
fn id_must_equal_the_file_name() {
    let t = Tree::new();
    let f = t.vendor("x", app("y", ""));
    at_key(
        &refused(&t, "x"),
        &f,
        "[app] id",
        "`y` does not match the file name `x.toml`",
    );
    fails_visibly(&t, "x");
    assert!(t.catalog_of().valid.is_empty());
}

#[test]
fn reserved_ids_are_refused() {
    for id in archy::catalog::RESERVED_IDS {
        let t = Tree::new();
        let f = t.vendor(id, app(id, ""));
        t.vendor("fine", app("fine", ""));
        at_key(&refused(&t, id), &f, "[app] id", "reserved");
        assert!(t.catalog_of().valid.contains_key("fine"));
    }
    assert!(archy::catalog::RESERVED_IDS.contains(&"network"));
    assert!(archy::catalog::RESERVED_IDS.contains(&"reconcile"));
}

/// Characters no string may carry, each with how the error describes it.
const BAD_CHARS: &[(char, &str)] = &[
    ('\n', "line feed"),
    ('\r', "carriage return"),
    ('\0', "NUL"),
    ('\u{1}', "U+0001"),
    ('\u{b}', "U+000B"),
    ('\u{c}', "U+000C"),
    ('\u{1b}', "U+001B"),
    ('\u{7f}', "U+007F"),
    ('\u{85}', "U+0085"),
    ('\u{2028}', "U+2028"),
    ('\u{2029}', "U+2029"),
];

/// Manifests with `{}` where a string (or a key) goes, and the key path the error must name.
fn string_positions() -> Vec<(String, String)> {
    let base = |id: &str, image: &str, extra: &str| {
        format!("[app]\nid = {id}\n\n[image]\nref = {image}\n{extra}")
    };
    let img = "\"docker.io/library/busybox:1.37\"";
    let q = "\"x\"";
    vec![
        (base("{}", img, ""), "app.id".into()),
        (
            base(q, img, "").replace("[image]", "name = {}\n\n[image]"),
            "app.name".into(),
        ),
        (
            base(q, img, "").replace("[image]", "description = {}\n\n[image]"),
            "app.description".into(),
        ),
        (
            base(q, img, "").replace("[image]", "provides = [\"ok\", {}]\n\n[image]"),
            "app.provides[1]".into(),
        ),
        (base(q, "{}", ""), "image.ref".into()),
        (
            base(q, img, "[container]\ncommand = [\"sh\", {}]\n"),
            "container.command[1]".into(),
        ),
        (
            base(q, img, "[container.environment]\nFOO = {}\n"),
            "container.environment.FOO".into(),
        ),
        (
            base(q, img, "[container.environment]\n{} = \"v\"\n"),
            "container.environment.".into(),
        ),
        (base(q, img, "[health]\ncmd = {}\n"), "health.cmd".into()),
        (
            base(q, img, "[[container.volumes]]\ntarget = {}\n"),
            "container.volumes[0].target".into(),
        ),
        (
            base(q, img, "[dependencies]\nrequires = [{}]\n"),
            "dependencies.requires[0]".into(),
        ),
        (
            base(q, img, "[secrets]\n{} = \"password\"\n"),
            "secrets.".into(),
        ),
        (
            base(q, img, "").replace("[image]", "{} = \"v\"\n\n[image]"),
            "app.".into(),
        ),
    ]
}

#[test]
fn control_characters_are_refused_in_every_string_and_key() {
    let t = Tree::new();
    let mut checked = 0;
    for (template, key) in string_positions() {
        assert!(template.contains("{}"), "{template}");
        for (c, described) in BAD_CHARS {
            let s = toml_str(&format!("a{c}b"));
            let text = template.replacen("{}", &s, 1);
            let f = t.vendor("x", &text);
            let c = t.catalog_of();
            let errs = errors_of(&c, "x");
            let line = slot_line(&template);
            assert!(
                errs.iter().any(|e| names_spot(e, &f, &[&key], line)
                    && if key == "app." {
                        // a key the model does not have: refused as unknown, whatever it holds
                        e.contains("unknown field")
                    } else {
                        e.contains(" contains ") && e.contains(described)
                    }),
                "{key} (line {line}) with {c:?}: {errs:#?}\n{text}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 13 * BAD_CHARS.len());
}

#[test]
fn raw_control_characters_and_multiline_strings_are_refused() {
    let t = Tree::new();
    // a raw CR inside a basic string is a TOML syntax error, at its line
    let f = t.vendor("x", app("x", "\n[container]\ncommand = [\"a\rb\"]\n"));
    at_line(&refused(&t, "x"), &f, 8, "");
    // a multi-line string can carry a line break: refused with its key
    let f = t.vendor(
        "y",
        app("y", "\n[container]\ncommand = [\"\"\"a\nb\"\"\"]\n"),
    );
    let errs = refused(&t, "y");
    assert!(
        errs.iter()
            .any(|e| names_spot(e, &f, &["container.command[0]"], 8) && e.contains("line feed")),
        "{errs:#?}"
    );
    let f = t.vendor(
        "z",
        app(
            "z",
            "\n[health]\ncmd = '''\ntrue\n[Service]\nExecStartPre=/bin/evil'''\n",
        ),
    );
    let errs = refused(&t, "z");
    assert!(
        errs.iter()
            .any(|e| names_spot(e, &f, &["health.cmd"], 8) && e.contains("line feed")),
        "{errs:#?}"
    );
    // a raw NUL byte anywhere
    let f = t.vendor("w", app("w", "\n[app2]\nx = \"a\0b\"\n"));
    at_line(&refused(&t, "w"), &f, 8, "");
}

#[test]
fn node_toml_strings_are_checked_too() {
    let t = Tree::new();
    t.vendor("x", app("x", ""));
    let f = t.node("user = \"node\\nExecStartPre=/bin/evil\"\n");
    let c = t.catalog_of();
    let errs = errors_of(&c, "x");
    assert!(
        errs.iter()
            .any(|e| names_spot(e, &f, &["user"], 1) && e.contains("line feed")),
        "{errs:#?}"
    );
}

#[test]
fn unknown_dependency() {
    let t = Tree::new();
    let f = t.vendor("x", app("x", "\n[dependencies]\nrequires = [\"nope\"]\n"));
    t.vendor("ok", app("ok", ""));
    at_key(
        &refused(&t, "x"),
        &f,
        "[dependencies] requires",
        "unknown app or provided name `nope`",
    );
    // ordering after an app that is not installed is not an error: it is an optional one
    t.vendor("y", app("y", "\n[dependencies]\nafter = [\"nada\"]\n"));
    assert!(t.catalog_of().valid.contains_key("y"));
    assert!(values(file(&t.render(), "archy-y.container"), "After").is_empty());
    let f = t.vendor(
        "z",
        app("z", "").replace("[image]", "companion_for = \"ghost\"\n\n[image]"),
    );
    at_key(&refused(&t, "z"), &f, "[app] companion_for", "`ghost`");
    assert!(t.catalog_of().valid.contains_key("ok"));
    fails_visibly(&t, "x");
}

#[test]
fn self_dependency() {
    let t = Tree::new();
    let f = t.vendor("x", app("x", "\n[dependencies]\nrequires = [\"x\"]\n"));
    at_key(
        &refused(&t, "x"),
        &f,
        "[dependencies] requires",
        "this app itself",
    );
    // through a name the app provides itself
    let f = t.vendor(
        "y",
        app("y", "\n[dependencies]\nafter = [\"why\"]\n")
            .replace("[image]", "provides = [\"why\"]\n\n[image]"),
    );
    at_key(
        &refused(&t, "y"),
        &f,
        "[dependencies] after",
        "this app itself",
    );
    let f = t.vendor(
        "z",
        app("z", "").replace("[image]", "companion_for = \"z\"\n\n[image]"),
    );
    at_key(
        &refused(&t, "z"),
        &f,
        "[app] companion_for",
        "own companion",
    );
}

fn requires(id: &str, deps: &[&str]) -> String {
    let list: Vec<String> = deps.iter().map(|d| format!("\"{d}\"")).collect();
    app(
        id,
        &format!("\n[dependencies]\nrequires = [{}]\n", list.join(", ")),
    )
}

/// Asserts exactly `on_cycle` are invalid, each for a dependency cycle, and the rest valid.
fn cycle_refuses_exactly(t: &Tree, on_cycle: &[&str], others: &[&str]) {
    let c = t.catalog_of();
    for id in on_cycle {
        let f = t.path(&format!("{VENDOR}/{id}.toml"));
        at_key(&errors_of(&c, id), &f, "[dependencies]", "dependency cycle");
    }
    let invalid: Vec<&str> = c.invalid.keys().map(String::as_str).collect();
    let mut want = on_cycle.to_vec();
    want.sort();
    assert_eq!(invalid, want);
    for id in others {
        assert!(c.valid.contains_key(*id), "{id} should be valid");
    }
}

#[test]
fn dependency_cycle_of_two() {
    let t = Tree::new();
    t.vendor("a", requires("a", &["b"]));
    t.vendor("b", requires("b", &["a"]));
    t.vendor("c", requires("c", &["a"]));
    t.vendor("d", app("d", ""));
    cycle_refuses_exactly(&t, &["a", "b"], &["c", "d"]);
    let errs = errors_of(&t.catalog_of(), "a");
    assert!(
        errs.iter()
            .any(|e| e.contains("a → b → a") || e.contains("b → a → b")),
        "{errs:#?}"
    );
}

#[test]
fn dependency_cycle_of_three() {
    let t = Tree::new();
    t.vendor("a", requires("a", &["b"]));
    t.vendor("b", requires("b", &["c"]));
    t.vendor("c", requires("c", &["a"]));
    t.vendor("d", requires("d", &["c"]));
    t.vendor("e", app("e", ""));
    cycle_refuses_exactly(&t, &["a", "b", "c"], &["d", "e"]);
    // the failing units show, and the others render
    let r = t.render();
    for id in ["a", "b", "c"] {
        assert!(names(&r).contains(&format!("archy-{id}.service").as_str()));
    }
    for id in ["d", "e"] {
        assert!(names(&r).contains(&format!("archy-{id}.container").as_str()));
    }
}

#[test]
fn dependency_cycle_through_after_and_provided_names() {
    let t = Tree::new();
    // a starts after b without pulling it in; b requires `svc`, which a provides
    t.vendor(
        "a",
        app("a", "\n[dependencies]\nafter = [\"b\"]\n")
            .replace("[image]", "provides = [\"svc\"]\n\n[image]"),
    );
    t.vendor("b", requires("b", &["svc"]));
    t.vendor("c", requires("c", &["svc"]));
    cycle_refuses_exactly(&t, &["a", "b"], &["c"]);
}

#[test]
fn every_app_on_a_cycle_is_refused_however_the_search_meets_it() {
    // a → b → a and a → c → b → a: c is on a cycle too, though a depth-first search that
    // finishes b first reaches it only through an edge into a finished node
    let t = Tree::new();
    t.vendor("a", requires("a", &["b", "c"]));
    t.vendor("b", requires("b", &["a"]));
    t.vendor("c", requires("c", &["b"]));
    t.vendor("d", requires("d", &["c"]));
    cycle_refuses_exactly(&t, &["a", "b", "c"], &["d"]);
    // two cycles sharing one app
    let t = Tree::new();
    t.vendor("a", requires("a", &["b"]));
    t.vendor("b", requires("b", &["a", "c"]));
    t.vendor("c", requires("c", &["b"]));
    cycle_refuses_exactly(&t, &["a", "b", "c"], &[]);
}

fn with_port(id: &str, port: u16, more_app: &str) -> String {
    app(
        id,
        &format!("\n[container]\nports = [{{ host = {port}, container = 80 }}]\n"),
    )
    .replace("[image]", &format!("{more_app}\n[image]"))
}

#[test]
fn two_apps_publishing_one_host_port() {
    let t = Tree::new();
    t.vendor("alpha", with_port("alpha", 8080, ""));
    let f = t.vendor("beta", with_port("beta", 8080, ""));
    t.vendor("gamma", with_port("gamma", 8081, ""));
    // the same number over UDP is another port
    t.vendor(
        "delta",
        app(
            "delta",
            "\n[container]\nports = [{ host = 8080, container = 80, protocol = \"udp\" }]\n",
        ),
    );
    let c = t.catalog_of();
    at_key(
        &errors_of(&c, "beta"),
        &f,
        "[container] ports",
        "host port 8080/tcp is already published by `alpha`",
    );
    assert_eq!(c.invalid.keys().collect::<Vec<_>>(), ["beta"]);
    assert!(
        c.valid.contains_key("alpha")
            && c.valid.contains_key("gamma")
            && c.valid.contains_key("delta")
    );
    // within one manifest
    let f = t.vendor(
        "beta",
        app(
            "beta",
            "\n[container]\nports = [{ host = 9, container = 1 }, { host = 9, container = 2 }]\n",
        ),
    );
    at_key(
        &refused(&t, "beta"),
        &f,
        "[container] ports",
        "listed twice",
    );
}

#[test]
fn apps_that_cannot_run_together_may_share_a_host_port() {
    let t = Tree::new();
    // both provide `svc`: they conflict, so both may publish 8333
    t.vendor("one", with_port("one", 8333, "provides = [\"svc\"]\n"));
    t.vendor("two", with_port("two", 8333, "provides = [\"svc\"]\n"));
    // an explicit conflict does the same
    t.vendor("three", with_port("three", 8334, ""));
    t.vendor("four", with_port("four", 8334, "conflicts = [\"three\"]\n"));
    // but a third app that runs beside them may not
    let f = t.vendor("zed", with_port("zed", 8333, ""));
    let c = t.catalog_of();
    assert_eq!(c.invalid.keys().collect::<Vec<_>>(), ["zed"]);
    at_key(
        &errors_of(&c, "zed"),
        &f,
        "[container] ports",
        "8333/tcp is already published by `one`",
    );
    // and in the shipped catalog, core and knots share 8333
    let t = Tree::catalog();
    let c = t.catalog_of();
    assert!(c.invalid.is_empty(), "{:?}", c.invalid.keys());
    for id in ["bitcoin-core", "bitcoin-knots"] {
        assert!(
            c.valid[id]
                .manifest
                .container
                .ports
                .iter()
                .any(|p| p.host == 8333),
            "{id}"
        );
    }
}

/// Runs `f` on a thread and fails (instead of hanging) if it takes more than 10 s.
fn within_seconds<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("timed out: reading blocked")
}

#[test]
fn a_directory_named_like_a_manifest() {
    let t = Tree::new();
    std::fs::create_dir_all(t.path(&format!("{VENDOR}/x.toml"))).expect("mkdir");
    t.vendor("ok", app("ok", ""));
    let f = t.path(&format!("{VENDOR}/x.toml"));
    let errs = refused(&t, "x");
    assert!(
        errs.iter()
            .any(|e| e == &format!("{}: not a regular file", f.display())),
        "{errs:#?}"
    );
    assert!(t.catalog_of().valid.contains_key("ok"));
}

#[test]
fn a_fifo_named_like_a_manifest_does_not_hang() {
    let t = Tree::new();
    t.vendor("ok", app("ok", ""));
    let f = t.path(&format!("{VENDOR}/x.toml"));
    nix::unistd::mkfifo(&f, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    let paths = t.paths();
    let c = within_seconds(move || archy::generate::load_catalog(&paths).1);
    let errs = errors_of(&c, "x");
    assert!(
        errs.iter()
            .any(|e| e == &format!("{}: not a regular file", f.display())),
        "{errs:#?}"
    );
    assert!(c.valid.contains_key("ok"));
    // nor as node.toml: every app is held back, naming it
    let node = t.path(NODE);
    std::fs::create_dir_all(node.parent().expect("parent")).expect("mkdir");
    nix::unistd::mkfifo(&node, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    let paths = t.paths();
    let c = within_seconds(move || archy::generate::load_catalog(&paths).1);
    assert!(c.valid.is_empty());
    let errs = errors_of(&c, "ok");
    assert!(
        errs.iter()
            .any(|e| e == &format!("{}: not a regular file", node.display())),
        "{errs:#?}"
    );
}

#[test]
fn a_symlink_to_a_regular_file_is_read() {
    let t = Tree::new();
    let real = t.write("elsewhere/real.toml", app("x", ""));
    std::fs::create_dir_all(t.path(VENDOR)).expect("mkdir");
    std::os::unix::fs::symlink(&real, t.path(&format!("{VENDOR}/x.toml"))).expect("symlink");
    // a dangling one is an error naming it
    std::os::unix::fs::symlink(t.path("nowhere.toml"), t.path(&format!("{VENDOR}/y.toml")))
        .expect("symlink");
    let c = t.catalog_of();
    assert!(c.valid.contains_key("x"), "{:?}", c.invalid);
    let errs = errors_of(&c, "y");
    let y = t.path(&format!("{VENDOR}/y.toml")).display().to_string();
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("{y}: cannot open"))),
        "{errs:#?}"
    );
}

#[test]
fn not_utf8() {
    let t = Tree::new();
    let mut bytes = app("x", "\n[container]\n").into_bytes();
    bytes.extend_from_slice(b"command = [\"caf\xe9\"]\n");
    let f = t.vendor("x", bytes);
    at_line(&refused(&t, "x"), &f, 8, "not valid UTF-8");
}

#[test]
fn over_the_size_limit() {
    let t = Tree::new();
    let limit = MAX_FILE_SIZE as usize;
    let base = app("x", "");
    // exactly at the limit is fine (a long comment pads it)
    let pad = limit - base.len() - 2;
    let at = format!("{base}#{}\n", "x".repeat(pad));
    assert_eq!(at.len(), limit);
    t.vendor("x", &at);
    assert!(t.catalog_of().valid.contains_key("x"));
    let over = format!("{base}#{}\n", "x".repeat(pad + 1));
    let f = t.vendor("x", &over);
    let errs = refused(&t, "x");
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("{}: ", f.display()))
                && e.contains(&format!("{} bytes", limit + 1))
                && e.contains("limit")),
        "{errs:#?}"
    );
}

#[test]
fn unknown_template() {
    let t = Tree::new();
    let f = t.vendor(
        "x",
        app(
            "x",
            "\n[[config]]\ntemplate = \"nope.conf\"\ntarget = \"/etc/x.conf\"\n",
        ),
    );
    at_key(
        &refused(&t, "x"),
        &f,
        "[[config]] template",
        "`nope.conf` not found",
    );
    // once the template exists the app is fine
    t.template("x", "nope.conf", "ok\n");
    assert!(t.catalog_of().valid.contains_key("x"));
    // a directory is not a template; another app's template is not this one's
    std::fs::create_dir_all(t.path(&format!("{TEMPLATES}/y/d.conf"))).expect("mkdir");
    let f = t.vendor("y", app("y", "\n[[config]]\ntemplate = \"d.conf\"\ntarget = \"/a\"\n\n[[config]]\ntemplate = \"nope.conf\"\ntarget = \"/b\"\n"));
    let errs = refused(&t, "y");
    at_key(&errs, &f, "[[config]] template", "`d.conf` not found");
    at_key(&errs, &f, "[[config]] template", "`nope.conf` not found");
}

#[test]
fn duplicate_mount_target() {
    let t = Tree::new();
    let f = t.vendor("x", app("x", "\n[[container.volumes]]\ntarget = \"/data\"\n\n[[container.volumes]]\nfrom = \"state\"\ntarget = \"/data/\"\n"));
    at_key(
        &refused(&t, "x"),
        &f,
        "[container] volumes",
        "mounted twice",
    );
    t.template("y", "c", "");
    let f = t.vendor("y", app("y", "\n[container]\ntmpfs = [\"/etc/c\"]\n\n[[config]]\ntemplate = \"c\"\ntarget = \"/etc/c\"\n"));
    at_key(
        &refused(&t, "y"),
        &f,
        "[container] volumes",
        "`/etc/c` is mounted twice",
    );
    // spelled differently, still one mount point
    for other in ["//data", "/data/.", "/./data//"] {
        let f = t.vendor(
            "z",
            app(
                "z",
                &format!("\n[container]\ntmpfs = [\"/data\", \"{other}\"]\n"),
            ),
        );
        at_key(
            &refused(&t, "z"),
            &f,
            "[container] volumes",
            &format!("`{other}` is mounted twice"),
        );
    }
    // nested mount points are fine
    t.vendor(
        "z",
        app(
            "z",
            "\n[container]\ntmpfs = [\"/data\", \"/data/cache\", \"/\"]\n",
        ),
    );
    assert!(t.catalog_of().valid.contains_key("z"));
}

#[test]
fn bad_durations() {
    for (extra, line, needle) in [
        (
            "\n[health]\ncmd = \"true\"\ninterval = \"5 parsecs\"\n",
            9,
            "`5 parsecs` is not a duration",
        ),
        (
            "\n[health]\ncmd = \"true\"\ntimeout = \"30\"\n",
            9,
            "`30` is not a duration",
        ),
        (
            "\n[service]\nrestart_delay = \"-1s\"\n",
            8,
            "`-1s` is not a duration",
        ),
        (
            "\n[service]\nstop_timeout = \"400d\"\n",
            8,
            "`400d` is not a duration",
        ),
        ("\n[service]\nstart_timeout = 30\n", 8, "invalid type"),
    ] {
        let t = Tree::new();
        let f = t.vendor("x", app("x", extra));
        at_line(&refused(&t, "x"), &f, line, needle);
    }
    // well-formed but meaningless ones are refused by key
    let t = Tree::new();
    let f = t.vendor(
        "x",
        app(
            "x",
            "\n[health]\ncmd = \"true\"\ninterval = \"0s\"\nretries = 0\n",
        ),
    );
    let errs = refused(&t, "x");
    at_key(&errs, &f, "[health] interval", "more than 0s");
    at_key(&errs, &f, "[health] retries", "at least 1");
    let f = t.vendor(
        "x",
        app(
            "x",
            "\n[service]\nrestart_delay = \"10min\"\nrestart_max_delay = \"1min\"\n",
        ),
    );
    at_key(
        &refused(&t, "x"),
        &f,
        "[service] restart_max_delay",
        "shorter than restart_delay",
    );
}

#[test]
fn bad_sizes() {
    let t = Tree::new();
    let f = t.vendor("x", app("x", "\n[service]\ndisk_reserve = \"lots\"\n"));
    at_line(&refused(&t, "x"), &f, 8, "`lots` is not a size");
    let f = t.vendor(
        "x",
        app("x", "\n[service]\ndisk_reserve = \"99999999999T\"\n"),
    );
    at_line(&refused(&t, "x"), &f, 8, "is not a size");
    let t = Tree::new();
    t.vendor("x", app("x", ""));
    let node = t.node("disk_reserve = \"10 gigs\"\n");
    at_line(&refused(&t, "x"), &node, 1, "`10 gigs` is not a size");
}

#[test]
fn bad_capabilities() {
    for cap in ["all", "ALL ", "net_admin", "CAP_", "SYS_ADMIN,NET_RAW"] {
        let t = Tree::new();
        let f = t.vendor(
            "x",
            app(
                "x",
                &format!("\n[container]\nadd_capabilities = [\"NET_RAW\", \"{cap}\"]\n"),
            ),
        );
        at_line(&refused(&t, "x"), &f, 8, "is not a capability name");
    }
    let t = Tree::new();
    t.vendor(
        "x",
        app(
            "x",
            "\n[container]\nadd_capabilities = [\"CAP_NET_BIND_SERVICE\"]\n",
        ),
    );
    t.node("[grants.x]\ncapabilities = [\"NET_BIND_SERVICE\"]\n");
    let r = t.render();
    assert_eq!(
        values(file(&r, "archy-x.container"), "AddCapability"),
        ["NET_BIND_SERVICE"]
    );
}

#[test]
fn paths_with_dot_dot_or_wrong_form() {
    for (extra, line) in [
        ("\n[[container.volumes]]\ntarget = \"/a/../etc\"\n", 8),
        (
            "\n[[container.volumes]]\ntarget = \"/data\"\nsubpath = \"../../etc\"\n",
            9,
        ),
        (
            "\n[[container.volumes]]\ntarget = \"/data\"\nsubpath = \"a/..\"\n",
            9,
        ),
        (
            "\n[[container.volumes]]\ntarget = \"/data\"\nsubpath = \"/etc\"\n",
            9,
        ),
        ("\n[[container.volumes]]\ntarget = \"relative\"\n", 8),
        ("\n[[container.volumes]]\ntarget = \"/data:/etc\"\n", 8),
        ("\n[container]\ntmpfs = [\"/tmp/../etc\"]\n", 8),
        (
            "\n[[config]]\ntemplate = \"c\"\ntarget = \"/etc/../root/x\"\n",
            9,
        ),
        (
            "\n[[config]]\ntemplate = \"../c\"\ntarget = \"/etc/x\"\n",
            8,
        ),
    ] {
        let t = Tree::new();
        let f = t.vendor("x", app("x", extra));
        let errs = refused(&t, "x");
        at_line(&errs, &f, line, "`");
        assert!(
            errs.iter().any(|e| e.contains("..")
                || e.contains("absolute")
                || e.contains("relative")
                || e.contains("characters")
                || e.contains("file name")),
            "{extra}: {errs:#?}"
        );
    }
    // the image's build context is a relative path below archy's build dir
    let t = Tree::new();
    let f = t.vendor(
        "x",
        app("x", "").replace("ref = ", "build = \"../../etc\"\nref = "),
    );
    at_line(&refused(&t, "x"), &f, 5, "must not contain `..`");
}

#[test]
fn arguments_quadlet_would_lose_or_split() {
    let t = Tree::new();
    // quadlet stops reading `Exec=` at an empty word: "x" would silently vanish
    let f = t.vendor(
        "x",
        app("x", "\n[container]\ncommand = [\"sh\", \"\", \"x\"]\n"),
    );
    at_key(
        &refused(&t, "x"),
        &f,
        "[container] command",
        "item 1 is empty",
    );
    // quadlet writes a lone `;` unquoted into ExecStart=, where it separates commands
    let f = t.vendor(
        "y",
        app(
            "y",
            "\n[container]\ncommand = [\"a\", \";\", \"/bin/evil\"]\n",
        ),
    );
    at_key(
        &refused(&t, "y"),
        &f,
        "[container] command",
        "item 1 is a lone `;`",
    );
    for (cmd, needle) in [("", "is empty"), (" \\t ", "is empty"), (";", "lone `;`")] {
        let f = t.vendor("z", app("z", &format!("\n[health]\ncmd = \"{cmd}\"\n")));
        at_key(&refused(&t, "z"), &f, "[health] cmd", needle);
    }
    // what only looks like them is fine
    t.vendor("x", app("x", "\n[container]\ncommand = [\" \", \"; \", \";;\", \"\\\\;\", \"a;b\"]\n\n[health]\ncmd = \"true;\"\n"));
    t.vendor("y", app("y", ""));
    t.vendor("z", app("z", ""));
    let c = t.catalog_of();
    assert!(c.invalid.is_empty(), "{:#?}", c.invalid);
}

#[test]
fn problems_are_one_line_each_whatever_the_file_name_or_key() {
    let t = Tree::new();
    // a file name that is no id, with a line break, and an unknown key with one
    t.vendor("evil\n<3>archy-generator[1]: forged", app("evil", ""));
    t.vendor("x", app("x", "\n[container]\n\"a\\r\\nb\\u2028\" = 1\n"));
    t.vendor("y\u{2029}", "not toml at all");
    let r = t.render();
    assert_eq!(r.problems.len(), 5, "{:#?}", r.problems);
    for p in &r.problems {
        assert!(
            !p.chars()
                .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
            "{p:?}"
        );
    }
    let evil = r
        .problems
        .iter()
        .find(|p| p.contains("evil"))
        .expect("evil");
    assert!(
        evil.contains("evil\\n<3>archy-generator[1]: forged.toml"),
        "{evil}"
    );
    let x = r
        .problems
        .iter()
        .find(|p| p.contains("/x.toml"))
        .expect("x");
    assert!(x.contains("unknown field `a\\r\\nb\\u{2028}`"), "{x}");
}

#[test]
fn an_invalid_admin_override_does_not_fall_back_to_the_vendor_manifest() {
    let t = Tree::new();
    t.vendor("x", app("x", ""));
    let f = t.admin("x", app("x", "\n[container]\nports = \"8080\"\n"));
    let errs = refused(&t, "x");
    at_line(&errs, &f, 8, "invalid type");
    assert!(
        errs.iter().all(|e| e.starts_with(&f.display().to_string())),
        "{errs:#?}"
    );
    fails_visibly(&t, "x");
}

#[test]
fn masking_an_app_others_require_makes_them_invalid_not_dangling() {
    let t = Tree::new();
    t.vendor("base", app("base", ""));
    let dep = t.vendor("dep", requires("dep", &["base"]));
    std::fs::create_dir_all(t.path(ADMIN)).expect("mkdir");
    std::os::unix::fs::symlink("/dev/null", t.path(&format!("{ADMIN}/base.toml")))
        .expect("symlink");
    let c = t.catalog_of();
    assert!(!c.ids().contains("base"));
    at_key(
        &errors_of(&c, "dep"),
        &dep,
        "[dependencies] requires",
        "unknown app or provided name `base`",
    );
    // a symlink to anything else is not a mask
    std::fs::remove_file(t.path(&format!("{ADMIN}/base.toml"))).expect("rm");
    std::os::unix::fs::symlink(
        t.path(&format!("{VENDOR}/base.toml")),
        t.path(&format!("{ADMIN}/base.toml")),
    )
    .expect("symlink");
    let c = t.catalog_of();
    assert!(
        c.valid.contains_key("base") && c.valid.contains_key("dep"),
        "{:?}",
        c.invalid
    );
}

fn with_alias(id: &str, alias: &str, more_app: &str) -> String {
    app(
        id,
        &format!("\n[container]\nnetwork_aliases = [\"{alias}\"]\n"),
    )
    .replace("[image]", &format!("{more_app}\n[image]"))
}

#[test]
fn two_apps_answering_to_one_name_on_the_network() {
    let t = Tree::new();
    t.vendor("alpha", with_alias("alpha", "svc", ""));
    let beta = t.vendor("beta", with_alias("beta", "svc", ""));
    // an alias that is another app's container name
    let gamma = t.vendor("gamma", with_alias("gamma", "archy-alpha", ""));
    // one's own container name is harmless, another alias is fine
    t.vendor("delta", with_alias("delta", "archy-delta", ""));
    t.vendor("omega", with_alias("omega", "other", ""));
    let c = t.catalog_of();
    assert_eq!(c.invalid.keys().collect::<Vec<_>>(), ["beta", "gamma"]);
    at_key(
        &errors_of(&c, "beta"),
        &beta,
        "[container] network_aliases",
        "`svc` is already a name of `alpha`",
    );
    at_key(
        &errors_of(&c, "gamma"),
        &gamma,
        "[container] network_aliases",
        "`archy-alpha` is already a name of `alpha`",
    );
    // apps that never run together may share one (bitcoin-core and bitcoin-knots: `bitcoind`)
    let t = Tree::new();
    t.vendor(
        "one",
        with_alias("one", "svc", "provides = [\"svc-name\"]\n"),
    );
    t.vendor(
        "two",
        with_alias("two", "svc", "provides = [\"svc-name\"]\n"),
    );
    assert!(t.catalog_of().invalid.is_empty());
    let c = Tree::catalog().catalog_of();
    for id in ["bitcoin-core", "bitcoin-knots"] {
        let aliases = &c.valid[id].manifest.container.network_aliases;
        assert!(aliases.iter().any(|a| a.as_str() == "bitcoind"), "{id}");
    }
}

#[test]
fn users_are_numeric_and_exclusive_with_userns() {
    let t = Tree::new();
    let f = t.vendor("x", app("x", "\n[container]\nuser = \"postgres\"\n"));
    at_line(&refused(&t, "x"), &f, 8, "numeric user");
    let f = t.vendor("y", app("y", "\n[container]\nuser = \"70000\"\n"));
    at_line(&refused(&t, "y"), &f, 8, "below 65536");
    let f = t.vendor(
        "z",
        app(
            "z",
            "\n[container]\nuser = \"999:999\"\nuserns = \"keep-id:uid=999,gid=999\"\n",
        ),
    );
    at_key(&refused(&t, "z"), &f, "[container] userns", "not both");
}

#[test]
fn an_app_mounts_only_secrets_it_declares() {
    let t = Tree::new();
    // the whole secrets directory: every app's credentials
    let f = t.vendor(
        "x",
        app(
            "x",
            "\n[secrets]\nmine = \"password\"\n\n[[container.volumes]]\nfrom = \"secrets\"\ntarget = \"/s\"\n",
        ),
    );
    at_key(
        &refused(&t, "x"),
        &f,
        "[container] volumes",
        "needs `subpath`",
    );
    // another app's secret, not declared
    let f = t.vendor(
        "y",
        app(
            "y",
            "\n[secrets]\nmine = \"password\"\n\n[[container.volumes]]\nfrom = \"secrets\"\nsubpath = \"bitcoind-rpc\"\ntarget = \"/s\"\n",
        ),
    );
    at_key(
        &refused(&t, "y"),
        &f,
        "[container] volumes",
        "secret `bitcoind-rpc` is not declared",
    );
    fails_visibly(&t, "y");
    let f = t.vendor(
        "z",
        app(
            "z",
            "\n[secrets]\nmine = \"password\"\n\n[[container.volumes]]\nfrom = \"secrets\"\nsubpath = \"./other/x\"\ntarget = \"/s\"\n",
        ),
    );
    at_key(&refused(&t, "z"), &f, "[container] volumes", "`other`");
    // its own is fine
    t.vendor(
        "w",
        app(
            "w",
            "\n[secrets]\nmine = \"password\"\n\n[[container.volumes]]\nfrom = \"secrets\"\nsubpath = \"mine\"\ntarget = \"/s\"\n",
        ),
    );
    assert!(t.catalog_of().valid.contains_key("w"));
}

#[test]
fn another_apps_data_only_where_it_is_shared_and_required() {
    let t = Tree::new();
    t.vendor(
        "explorer",
        "[app]\nid = \"explorer\"\nshares = [\"Main\"]\n[image]\nref = \"docker.io/library/busybox:1.37\"\n",
    );
    let vol = |sub: &str, extra: &str| {
        format!(
            "{extra}\n[[container.volumes]]\nfrom = \"data\"\napp = \"explorer\"\nsubpath = \"{sub}\"\ntarget = \"/x\"\n"
        )
    };
    // shared and required: fine, and mounted read-only
    t.vendor(
        "shop",
        app(
            "shop",
            &vol("Main", "\n[dependencies]\nrequires = [\"explorer\"]\n"),
        ),
    );
    // not required
    let f = t.vendor("nosy", app("nosy", &vol("Main", "")));
    at_key(
        &refused(&t, "nosy"),
        &f,
        "[container] volumes",
        "not an app this one requires",
    );
    // required but not shared there: the whole data dir, or a sibling
    let f = t.vendor(
        "greedy",
        app(
            "greedy",
            &vol(".", "\n[dependencies]\nrequires = [\"explorer\"]\n"),
        ),
    );
    at_key(
        &refused(&t, "greedy"),
        &f,
        "[container] volumes",
        "not below a directory `explorer` shares",
    );
    let f = t.vendor(
        "sideways",
        app(
            "sideways",
            &vol("Other", "\n[dependencies]\nrequires = [\"explorer\"]\n"),
        ),
    );
    at_key(
        &refused(&t, "sideways"),
        &f,
        "[container] volumes",
        "`Other`",
    );
    let c = t.catalog_of();
    assert!(c.valid.contains_key("shop") && c.valid.contains_key("explorer"));
    let r = t.render();
    let shop = file(&r, "archy-shop.container");
    assert_eq!(
        values(shop, "Volume"),
        ["/var/lib/archipelago/explorer/Main:/x:ro"]
    );
}

#[test]
fn nested_volumes_of_one_source_are_refused() {
    let t = Tree::new();
    let vol = |from: &str, sub: Option<&str>, target: &str| {
        let sub = sub.map_or(String::new(), |s| format!("subpath = \"{s}\"\n"));
        format!("\n[[container.volumes]]\nfrom = \"{from}\"\n{sub}target = \"{target}\"\n")
    };
    // the whole data dir and a directory in it; `a` and `a/b` spelled loosely; the state
    // volume; one directory twice
    let cases = [
        (
            "w",
            vol("data", None, "/all") + &vol("data", Some("db"), "/db"),
            "`/all` and `/db`",
        ),
        (
            "x",
            vol("data", Some("./a/"), "/a") + &vol("data", Some("a//b"), "/b"),
            "`/a` and `/b`",
        ),
        (
            "y",
            vol("state", Some("a/b"), "/b") + &vol("state", Some("a"), "/a"),
            "`/b` and `/a`",
        ),
        (
            "z",
            vol("data", Some("a"), "/one") + &vol("data", Some("./a"), "/two"),
            "`/one` and `/two`",
        ),
    ];
    let files: Vec<_> = cases
        .iter()
        .map(|(id, extra, _)| t.vendor(id, app(id, extra)))
        .collect();
    // side by side, a name that merely starts alike, or another source: fine
    let fine = vol("data", Some("a"), "/a")
        + &vol("data", Some("ab"), "/ab")
        + &vol("data", Some("b"), "/b")
        + &vol("state", Some("a"), "/s");
    t.vendor("ok", app("ok", &fine));
    for ((id, _, both), f) in cases.iter().zip(&files) {
        at_key(&refused(&t, id), f, "[container] volumes", both);
        fails_visibly(&t, id);
    }
    // another app's shared data: its container can plant the link; the app's own `Main` is
    // another directory
    t.vendor(
        "explorer",
        "[app]\nid = \"explorer\"\nshares = [\"Main\"]\n[image]\nref = \"docker.io/library/busybox:1.37\"\n",
    );
    let theirs = |sub: &str, target: &str| {
        format!("\n[[container.volumes]]\napp = \"explorer\"\nsubpath = \"{sub}\"\ntarget = \"{target}\"\n")
    };
    let needs = "\n[dependencies]\nrequires = [\"explorer\"]\n";
    let f = t.vendor(
        "shop",
        app(
            "shop",
            &(theirs("Main", "/m") + &theirs("Main/x", "/x") + needs),
        ),
    );
    at_key(
        &refused(&t, "shop"),
        &f,
        "[container] volumes",
        "`/m` and `/x`",
    );
    let mine = vol("data", Some("Main"), "/mine");
    t.vendor(
        "shop2",
        app("shop2", &(theirs("Main", "/m") + &mine + needs)),
    );
    let c = t.catalog_of();
    assert!(
        c.valid.contains_key("ok") && c.valid.contains_key("shop2"),
        "{:#?}",
        c.invalid.keys()
    );
    assert!(c.valid.contains_key("explorer"));
}
