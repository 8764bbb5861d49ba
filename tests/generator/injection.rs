//! Injection attempts: nasty strings in every free-text field. Each one is either refused with an
//! error naming the key, or rendered into a `.container` with exactly the lines, sections and keys
//! of a harmless rendering, and (for the values quadlet passes on) parsed back to the original.

use crate::common::*;
use crate::quadlet_parse::{exec_words, raw_value, split_words};

/// Strings that have broken unit files somewhere.
pub const NASTY: &[&str] = &[
    "\n[Service]\nExecStartPre=/bin/evil",
    "x\n[Service]\nExecStartPre=/bin/evil",
    "\r",
    "a\rb",
    "a\r\n[Install]\nWantedBy=default.target",
    "trailing\\",
    "\\",
    "\\\\",
    "\\\n[Service]",
    "\\n",
    "\\x41",
    "\\\"",
    "\"",
    "say \"hi\"",
    "\"quoted\"",
    "'",
    "it's",
    "'single'",
    "%h",
    "%%",
    "%",
    "100%",
    "%n %t %%N",
    "$HOME",
    "${X}",
    "$$",
    "$",
    "$(id)",
    "`id`",
    "\\\\%%$$",
    "\t",
    "a\tb",
    "\ttab at both ends\t",
    "\u{2028}",
    "a\u{2029}b",
    ";",
    "a;b",
    "; /bin/evil",
    "\0",
    "a\0b",
    "\u{1b}[31m",
    "\u{7f}",
    "\u{85}",
    "",
    " ",
    " leading and trailing ",
    "--privileged",
    "-v /:/host",
    "=",
    "K=V",
    "#comment",
    ";comment",
    "[Service]",
    "ExecStartPre=/bin/evil",
    "é ünïcödé ✓ \u{a0}nbsp \u{200b}zwsp \u{feff}bom",
];

/// The free-text fields, as (name, the keys an error may name, manifest with `{}` for the value).
fn fields() -> Vec<(&'static str, &'static [&'static str], String)> {
    let head = "[app]\nid = \"x\"\nname = NAME\ndescription = DESC\n\n[image]\nref = \"docker.io/library/busybox:1.37\"\n";
    let fill = |name: &str, desc: &str, rest: &str| {
        format!("{}{rest}", head.replace("NAME", name).replace("DESC", desc))
    };
    let health = "\n[health]\ncmd = \"true\"\n";
    vec![
        ("name", &["app.name"][..], fill("{}", "\"d\"", health)),
        (
            "description",
            &["app.description"],
            fill("\"n\"", "{}", health),
        ),
        (
            "command item",
            &["container.command[1]", "[container] command"],
            fill(
                "\"n\"",
                "\"d\"",
                &format!("\n[container]\ncommand = [\"first\", {{}}, \"last\"]\n{health}"),
            ),
        ),
        (
            "environment value",
            &["container.environment.VALUE"],
            fill(
                "\"n\"",
                "\"d\"",
                &format!("\n[container.environment]\nA = \"a\"\nVALUE = {{}}\nZ = \"z\"\n{health}"),
            ),
        ),
        (
            "health cmd",
            &["health.cmd", "[health] cmd"],
            fill("\"n\"", "\"d\"", "\n[health]\ncmd = {}\n"),
        ),
    ]
}

/// (section or comment marker, key) of each line: what must not change whatever the value.
fn shape(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            if l.starts_with('[') || l.is_empty() {
                l.to_string()
            } else if l.starts_with('#') {
                "#".to_string()
            } else {
                let (k, _) = l
                    .split_once('=')
                    .unwrap_or_else(|| panic!("line without `=`: {l:?}"));
                format!("{k}=")
            }
        })
        .collect()
}

fn render_x(t: &Tree, text: &str) -> Result<String, Vec<String>> {
    t.vendor("x", text);
    let c = t.catalog_of();
    if let Some(bad) = c.invalid.get("x") {
        return Err(bad.errors.iter().map(|e| e.to_string()).collect());
    }
    let r = t.render();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
    Ok(file(&r, "archy-x.container").to_string())
}

#[test]
fn nasty_strings_in_every_free_text_field() {
    let t = Tree::new();
    let mut rendered = 0;
    let mut refused = 0;
    for (field, keys, template) in fields() {
        let harmless = render_x(&t, &template.replacen("{}", "\"harmless\"", 1))
            .unwrap_or_else(|e| panic!("{field}: harmless value refused: {e:#?}"));
        let want = shape(&harmless);
        for nasty in NASTY {
            let text = template.replacen("{}", &toml_str(nasty), 1);
            let out = match render_x(&t, &text) {
                Err(errs) => {
                    let file = t.path(&format!("{VENDOR}/x.toml"));
                    let line = slot_line(&template);
                    assert!(
                        errs.iter().any(|e| names_spot(e, &file, keys, line)),
                        "{field} = {nasty:?} refused without naming {keys:?} or line {line}: {errs:#?}"
                    );
                    refused += 1;
                    continue;
                }
                Ok(out) => out,
            };
            rendered += 1;
            assert_eq!(
                shape(&out),
                want,
                "{field} = {nasty:?} changed the unit's shape:\n{out}"
            );
            let line = |key: &str| -> String {
                let v = values(&out, key);
                assert_eq!(v.len(), 1, "{key}= in\n{out}");
                v[0].to_string()
            };
            match field {
                "command item" => {
                    let words =
                        exec_words(&line("Exec")).unwrap_or_else(|e| panic!("{nasty:?}: {e}"));
                    assert_eq!(words, ["first", nasty, "last"], "{nasty:?}");
                }
                "environment value" => {
                    let envs = values(&out, "Environment");
                    assert_eq!(envs.len(), 3, "{out}");
                    let words = exec_words(envs[1]).unwrap_or_else(|e| panic!("{nasty:?}: {e}"));
                    assert_eq!(words, [format!("VALUE={nasty}")], "{nasty:?}");
                }
                "health cmd" => {
                    for key in ["HealthCmd", "HealthStartupCmd"] {
                        let cmd =
                            raw_value(&line(key)).unwrap_or_else(|e| panic!("{nasty:?}: {e}"));
                        assert_eq!(cmd, *nasty, "{key}");
                    }
                }
                "name" => {
                    // display text: no specifier may expand, and it still names the app
                    let d = line("Description");
                    assert!(d.ends_with(" (archy app x)"), "{d}");
                    exec_words_free(&d);
                }
                _ => {}
            }
        }
    }
    // the list exercises both outcomes in every field
    assert!(rendered >= 5 * 35, "only {rendered} rendered");
    assert!(refused >= 5 * 10, "only {refused} refused");
}

/// Asserts `%` only appears as `%%` (systemd expands specifiers in `Description=`).
fn exec_words_free(d: &str) {
    let mut it = d.chars();
    while let Some(c) = it.next() {
        if c == '%' {
            assert_eq!(it.next(), Some('%'), "unescaped % in {d:?}");
        }
    }
}

#[test]
fn what_is_refused_and_what_is_not() {
    // the strings that carry a line break or control character are refused in every field;
    // a tab is not, and is written so that it cannot be taken for a separator
    let t = Tree::new();
    for (field, _, template) in fields() {
        for nasty in ["a\nb", "a\rb", "a\0b", "a\u{2028}b", "\u{1b}"] {
            assert!(
                render_x(&t, &template.replacen("{}", &toml_str(nasty), 1)).is_err(),
                "{field}: {nasty:?}"
            );
        }
        let out = render_x(&t, &template.replacen("{}", &toml_str("a\tb"), 1)).expect("tab");
        assert!(
            !out.lines().any(|l| l.contains('\t')
                && !l.starts_with("HealthCmd=")
                && !l.starts_with("HealthStartupCmd=")),
            "{field}:\n{out}"
        );
    }
}

#[test]
fn a_whole_command_line_stays_one_argument_each() {
    let t = Tree::new();
    let args = [
        "sh",
        "-c",
        "echo \"$1\" 100% > /dev/null; exit 0",
        "--",
        "a b",
        "\\",
        "'",
    ];
    let list: Vec<String> = args.iter().map(|a| toml_str(a)).collect();
    let out = render_x(
        &t,
        &format!("[app]\nid = \"x\"\n\n[image]\nref = \"docker.io/library/busybox:1.37\"\n\n[container]\ncommand = [{}]\n", list.join(", ")),
    )
    .expect("valid");
    let exec = values(&out, "Exec");
    assert_eq!(exec_words(exec[0]).expect("parses"), args);
    // every word is quoted, so none is split again or read as an option by quadlet
    assert_eq!(split_words(exec[0]).expect("parses").len(), args.len());
    assert!(exec[0].starts_with('"') && exec[0].ends_with('"'));
}
