//! The man pages against the code: every key the manifest and node.toml parsers accept is
//! documented in archy-app.toml(5) and archy-node.toml(5), every key the pages document is one
//! the parsers accept, every value of a key with a fixed set of values is named in that key's
//! paragraph, and each page renders without warnings.
//!
//! The accepted keys are not a hand-kept list: they come from the parsers. The models refuse
//! unknown keys (`deny_unknown_fields`), and the refusal lists what was expected ("unknown field
//! `zz_probe`, expected one of `id`, `name`, ..."). Probing each table with a bogus key, and each
//! key with values of the wrong type, walks the whole schema, nested tables included.
//!
//! The pages follow a convention (see the comment at the top of each): a table is a `.SS` heading
//! written as in TOML (`[app]`, `[[container.ports]]`, or "Top-level keys" for the top level),
//! and a key is a `.TP` whose next line is `.B key`.

use archy::load::parse_toml;
use archy::manifest::Manifest;
use archy::node::NodeSettings;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A probe key that no model has. `zzprobe` where a key must be an id and an env name at once.
const PROBE: &str = "zz_probe";
const MAP_PROBE: &str = "zzprobe";

/// A table path: each step's name and whether it is an array of tables.
type TablePath = Vec<(String, bool)>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A plain value (string, number, boolean, list of those); `variants` when its values are a
    /// fixed set.
    Value { variants: Vec<String> },
    /// A table or array of tables with fixed keys.
    Table { array: bool },
    /// A table with free keys (`environment`, `[secrets]`, `[providers]`); `variants` when its
    /// values are a fixed set.
    Map { variants: Vec<String> },
}

/// What the parser accepts, by dotted table path ("" is the top level).
#[derive(Debug, Default)]
struct Schema {
    tables: BTreeMap<String, BTreeMap<String, Kind>>,
    /// Map tables and the fixed values of their entries, by dotted path.
    maps: BTreeMap<String, Vec<String>>,
    /// Which tables are arrays of tables.
    arrays: BTreeSet<String>,
}

fn dotted(path: &[(String, bool)]) -> String {
    path.iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

/// A TOML document that puts `line` into the table at `path`, declaring the arrays of tables on
/// the way (a subtable of an array element needs the element first).
fn doc(path: &[(String, bool)], line: &str) -> String {
    let mut out = String::new();
    for i in 0..path.len() {
        let prefix = dotted(&path[..=i]);
        let last = i + 1 == path.len();
        if path[i].1 {
            out.push_str(&format!("[[{prefix}]]\n"));
        } else if last {
            out.push_str(&format!("[{prefix}]\n"));
        }
    }
    out.push_str(line);
    out.push('\n');
    out
}

/// The parser's message for `text`, or None when it parses.
fn parse_error<T: DeserializeOwned>(text: &str) -> Option<String> {
    parse_toml::<T>(Path::new("probe.toml"), text)
        .err()
        .map(|e| e.message)
}

/// The backquoted names after "expected" in a serde message.
fn expected_names(message: &str) -> Vec<String> {
    let Some((_, list)) = message.split_once("expected") else {
        return Vec::new();
    };
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The values a key accepts, when they are a fixed set: a bogus string makes the parser list them.
fn variants_of<T: DeserializeOwned>(text: &str) -> Vec<String> {
    match parse_error::<T>(text) {
        Some(m) if m.starts_with(&format!("unknown variant `{PROBE}`")) => expected_names(&m),
        _ => Vec::new(),
    }
}

fn discover<T: DeserializeOwned>(schema: &mut Schema, path: TablePath) {
    let here = dotted(&path);
    let message = parse_error::<T>(&doc(&path, &format!("{PROBE} = 1")))
        .unwrap_or_else(|| panic!("[{here}] accepted the unknown key `{PROBE}`"));
    assert!(
        message.starts_with(&format!("unknown field `{PROBE}`")),
        "[{here}]: probing for its keys gave an unexpected message: {message}"
    );
    let keys = expected_names(&message);
    assert!(!keys.is_empty(), "[{here}]: no keys in {message:?}");
    let mut table = BTreeMap::new();
    for key in keys {
        let mut child = path.clone();
        child.push((key.clone(), false));
        let wrong = parse_error::<T>(&doc(&path, &format!("{key} = 1"))).unwrap_or_default();
        let kind = if wrong.contains("expected struct") {
            discover::<T>(schema, child);
            Kind::Table { array: false }
        } else if wrong.contains("expected a sequence") {
            let mut element = path.clone();
            element.push((key.clone(), true));
            let inner = parse_error::<T>(&doc(&element, &format!("{PROBE} = 1")));
            if inner.is_some_and(|m| m.starts_with(&format!("unknown field `{PROBE}`"))) {
                schema.arrays.insert(dotted(&element));
                discover::<T>(schema, element);
                Kind::Table { array: true }
            } else {
                Kind::Value {
                    variants: variants_of::<T>(&doc(&path, &format!("{key} = [\"{PROBE}\"]"))),
                }
            }
        } else if wrong.contains("expected a map") {
            let variants = variants_of::<T>(&doc(&child, &format!("{MAP_PROBE} = \"{PROBE}\"")));
            schema.maps.insert(dotted(&child), variants.clone());
            Kind::Map { variants }
        } else {
            Kind::Value {
                variants: variants_of::<T>(&doc(&path, &format!("{key} = \"{PROBE}\""))),
            }
        };
        table.insert(key, kind);
    }
    schema.tables.insert(here, table);
}

fn schema_of<T: DeserializeOwned>() -> Schema {
    let mut schema = Schema::default();
    discover::<T>(&mut schema, Vec::new());
    schema
}

/// What a man page documents.
#[derive(Debug, Default)]
struct Page {
    /// Keys by dotted table path ("" is the top level), each with its paragraph as plain text.
    keys: BTreeMap<String, BTreeMap<String, String>>,
    /// The headings' tables: dotted path and whether written as an array of tables (`[[x]]`).
    tables: BTreeMap<String, bool>,
    /// Each table heading's whole text, for tables with free keys.
    text: BTreeMap<String, String>,
}

/// The plain words of a line of roff: macro names, font changes and escapes removed.
fn plain(line: &str) -> String {
    let mut s = line.to_string();
    if s.starts_with('.') {
        s = s
            .split_once(' ')
            .map_or(String::new(), |(_, rest)| rest.to_string());
    }
    for (from, to) in [
        ("\\fB", ""),
        ("\\fI", ""),
        ("\\fR", ""),
        ("\\fP", ""),
        ("\\-", "-"),
        ("\\&", ""),
        ("\\(dq", "\""),
        ("\\e", "\\"),
        ("\"", " "),
    ] {
        s = s.replace(from, to);
    }
    s
}

fn parse_page(path: &Path) -> Page {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    let mut page = Page::default();
    let mut table: Option<String> = None;
    // the key whose paragraph is being read: (table, key)
    let mut key: Option<(String, String)> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.starts_with(".SH") || line.starts_with(".SS") {
            key = None;
            table = None;
            if let Some(heading) = line.strip_prefix(".SS ") {
                // font changes are plain text here too: `[grants.\fIid\fR]` is [grants.id]
                let heading = plain(heading);
                let heading = heading.trim();
                if heading == "Top-level keys" {
                    table = Some(String::new());
                } else if let Some(inner) = heading
                    .strip_prefix("[[")
                    .and_then(|h| h.strip_suffix("]]"))
                {
                    table = Some(inner.to_string());
                    page.tables.insert(inner.to_string(), true);
                } else if let Some(inner) =
                    heading.strip_prefix('[').and_then(|h| h.strip_suffix(']'))
                {
                    table = Some(inner.to_string());
                    page.tables.insert(inner.to_string(), false);
                }
            }
        } else if line == ".TP" && table.is_some() {
            let next = lines.get(i + 1).copied().unwrap_or_default();
            key = None;
            if let Some(name) = next.strip_prefix(".B ") {
                let name = plain(name).trim().to_string();
                let t = table.clone().unwrap_or_default();
                page.keys
                    .entry(t.clone())
                    .or_default()
                    .insert(name.clone(), String::new());
                key = Some((t, name));
                i += 1;
            }
        } else if let Some(t) = &table {
            let words = plain(line);
            if let Some((kt, k)) = &key {
                let para = page
                    .keys
                    .get_mut(kt)
                    .and_then(|m| m.get_mut(k))
                    .expect("key recorded");
                para.push(' ');
                para.push_str(&words);
            }
            let all = page.text.entry(t.clone()).or_default();
            all.push(' ');
            all.push_str(&words);
        }
        i += 1;
    }
    page
}

/// The keys a page documents for `table`: its `.TP` keys and its subtables' headings.
fn documented(page: &Page, table: &str) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = page
        .keys
        .get(table)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for sub in page.tables.keys() {
        let child = if table.is_empty() {
            Some(sub.split('.').next().unwrap_or_default())
        } else {
            sub.strip_prefix(table)
                .and_then(|r| r.strip_prefix('.'))
                .map(|r| r.split('.').next().unwrap_or_default())
        };
        if let Some(c) = child.filter(|c| !c.is_empty()) {
            keys.insert(c.to_string());
        }
    }
    keys
}

fn words(text: &str) -> BTreeSet<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect()
}

fn show(table: &str) -> String {
    if table.is_empty() {
        "the top level".to_string()
    } else {
        format!("[{table}]")
    }
}

/// Every difference between what the parser accepts and what the page documents.
fn compare(schema: &Schema, page: &Page) -> Vec<String> {
    let mut problems = Vec::new();
    for (table, keys) in &schema.tables {
        let code: BTreeSet<String> = keys.keys().cloned().collect();
        let doc = documented(page, table);
        for k in code.difference(&doc) {
            problems.push(format!(
                "{}: `{k}` is accepted but not documented",
                show(table)
            ));
        }
        for k in doc.difference(&code) {
            problems.push(format!(
                "{}: `{k}` is documented but not accepted",
                show(table)
            ));
        }
        for (k, kind) in keys {
            if let Kind::Value { variants } = kind {
                let para = page
                    .keys
                    .get(table)
                    .and_then(|m| m.get(k))
                    .map_or("", String::as_str);
                let have = words(para);
                for v in variants.iter().filter(|v| !have.contains(v.as_str())) {
                    problems.push(format!(
                        "{}: `{k}`'s value `{v}` is not named in its paragraph",
                        show(table)
                    ));
                }
            }
        }
    }
    for (map, variants) in &schema.maps {
        if variants.is_empty() {
            continue;
        }
        // a map with its own heading names its values there, else in its key's paragraph
        let (parent, key) = map.rsplit_once('.').unwrap_or(("", map));
        let text = page
            .text
            .get(map)
            .or_else(|| page.keys.get(parent).and_then(|m| m.get(key)))
            .map_or("", String::as_str);
        let have = words(text);
        for v in variants.iter().filter(|v| !have.contains(v.as_str())) {
            problems.push(format!("[{map}]: the value `{v}` is not named"));
        }
    }
    // an unknown heading needs no check here: its parent documents a key the parser refuses
    for (table, array) in &page.tables {
        let is_array = schema.arrays.contains(table);
        let known = schema.tables.contains_key(table) || schema.maps.contains_key(table);
        if known && *array != is_array {
            let want = if is_array {
                format!("[[{table}]]")
            } else {
                format!("[{table}]")
            };
            problems.push(format!("the heading of [{table}] should read {want}"));
        }
    }
    problems
}

fn man_page(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("man").join(name)
}

fn check<T: DeserializeOwned>(page: &str, must_have: &[&str]) {
    let schema = schema_of::<T>();
    // a probe that silently found nothing would make the comparison vacuous
    for t in must_have {
        assert!(
            schema.tables.contains_key(*t),
            "probing found no table [{t}]: {:?}",
            schema.tables.keys()
        );
    }
    let problems = compare(&schema, &parse_page(&man_page(page)));
    assert!(
        problems.is_empty(),
        "man/{page} and the parser disagree:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_manifest_key_is_documented_and_every_documented_key_exists() {
    check::<Manifest>(
        "archy-app.toml.5",
        &[
            "",
            "app",
            "image",
            "container",
            "container.ports",
            "container.volumes",
            "dependencies",
            "health",
            "service",
            "config",
        ],
    );
}

#[test]
fn every_node_key_is_documented_and_every_documented_key_exists() {
    check::<NodeSettings>("archy-node.toml.5", &["", "registries"]);
}

/// A grant's keys (node.toml's `[grants.<id>]` and the grants files' tables) are documented
/// under `[grants.id]`: the map's values are structs, which probing node.toml does not reach.
#[test]
fn every_grant_key_is_documented() {
    let grant = schema_of::<archy::grants::Grant>();
    let table = "grants.id";
    let mut schema = Schema::default();
    schema.tables.insert(table.into(), grant.tables[""].clone());
    let mut page = parse_page(&man_page("archy-node.toml.5"));
    page.keys.retain(|t, _| t == table);
    page.tables.retain(|t, _| t == table);
    assert!(
        page.keys.contains_key(table),
        "no [{table}] heading with keys"
    );
    let problems = compare(&schema, &page);
    assert!(
        problems.is_empty(),
        "man/archy-node.toml.5 and the grants parser disagree:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_comparison_notices_differences() {
    let schema = schema_of::<Manifest>();
    assert!(matches!(
        schema.tables["container"]["environment"],
        Kind::Map { .. }
    ));
    assert_eq!(schema.maps["secrets"], ["rpcauth", "password"]);
    assert!(schema.arrays.contains("config"));
    let mut page = parse_page(&man_page("archy-app.toml.5"));
    page.keys.get_mut("health").unwrap().remove("retries");
    page.keys
        .get_mut("app")
        .unwrap()
        .insert("colour".into(), String::new());
    page.keys
        .get_mut("image")
        .unwrap()
        .insert("pull".into(), "missing or never".into());
    page.tables.insert("container.ports".into(), false);
    let problems = compare(&schema, &page).join("\n");
    for want in [
        "[health]: `retries` is accepted but not documented",
        "[app]: `colour` is documented but not accepted",
        "[image]: `pull`'s value `always` is not named",
        "the heading of [container.ports] should read [[container.ports]]",
    ] {
        assert!(problems.contains(want), "missing {want:?} in:\n{problems}");
    }
}

fn note(msg: &str) {
    // not print!: the test harness captures that, and a skip must be visible
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn pages_render_without_warnings() {
    let pages: Vec<PathBuf> = std::fs::read_dir(man_page(""))
        .expect("man/ exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "5" || e == "8"))
        .collect();
    assert_eq!(pages.len(), 4, "{pages:?}");
    let (man, groff) = (have("man"), have("groff"));
    if !man && !groff {
        note("manpages: SKIPPED rendering check: neither man nor groff is installed (apt-get install man-db groff-base)");
        return;
    }
    for page in &pages {
        let mut runs = Vec::new();
        if man {
            let mut c = Command::new("man");
            c.env("MANWIDTH", "80").args(["--warnings", "-l"]).arg(page);
            runs.push(("man --warnings -l", c));
        }
        if groff {
            let mut c = Command::new("groff");
            c.args(["-man", "-ww", "-z"]).arg(page);
            runs.push(("groff -man -ww -z", c));
        }
        for (what, mut c) in runs {
            let out = c.output().expect("runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.trim().is_empty(),
                "{what} {}: {}\n{stderr}",
                page.display(),
                out.status
            );
            if what.starts_with("man") {
                // a `\-` may come out as a Unicode minus or hyphen
                let text =
                    String::from_utf8_lossy(&out.stdout).replace(['\u{2212}', '\u{2010}'], "-");
                let name = page.file_stem().unwrap().to_string_lossy().to_uppercase();
                assert!(
                    text.contains(&name),
                    "{}: rendered text lacks its title",
                    page.display()
                );
            }
        }
    }
    if !man {
        note("manpages: SKIPPED `man -l` (man is not installed); checked with groff only");
    }
    if !groff {
        note("manpages: groff is not installed; checked with `man --warnings -l` only");
    }
}
