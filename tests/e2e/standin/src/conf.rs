//! Config files: bitcoin.conf (`key=value`, `[chain]` sections) and lnd.conf (ini), plus the
//! `-key=value` command-line options both programs take.

use std::collections::BTreeMap;
use std::path::Path;

/// Parsed `key=value` lines: section ("" for the top) -> key -> values in file order.
#[derive(Debug, Default, Clone)]
pub struct Ini {
    pub sections: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl Ini {
    pub fn parse(text: &str) -> Ini {
        let mut ini = Ini::default();
        let mut section = String::new();
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_string();
                continue;
            }
            let (k, v) = match line.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (line, "1"),
            };
            ini.sections
                .entry(section.clone())
                .or_default()
                .entry(k.to_string())
                .or_default()
                .push(v.to_string());
        }
        ini
    }

    pub fn read(path: &Path) -> std::io::Result<Ini> {
        Ok(Ini::parse(&std::fs::read_to_string(path)?))
    }

    pub fn all(&self, section: &str, key: &str) -> Vec<String> {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .cloned()
            .unwrap_or_default()
    }

    /// The last value of `key` in any section, keys compared case-insensitively (lnd's ini).
    pub fn any_section_last(&self, key: &str) -> Option<String> {
        let mut found = None;
        for s in self.sections.values() {
            for (k, v) in s {
                if k.eq_ignore_ascii_case(key) {
                    found = v.last().cloned();
                }
            }
        }
        found
    }
}

/// Command-line options `-key=value`, `--key=value`, `-key` (= "1"); the rest are positional.
#[derive(Debug, Default, Clone)]
pub struct Args {
    pub opts: Vec<(String, String)>,
    pub positional: Vec<String>,
}

impl Args {
    pub fn parse(args: &[String]) -> Args {
        let mut out = Args::default();
        for a in args {
            if !out.positional.is_empty() || !a.starts_with('-') || a == "-" {
                out.positional.push(a.clone());
                continue;
            }
            let body = a.trim_start_matches('-');
            match body.split_once('=') {
                Some((k, v)) => out.opts.push((k.to_string(), v.to_string())),
                None => out.opts.push((body.to_string(), "1".to_string())),
            }
        }
        out
    }

    /// go-flags style (lnd, lncli): `--key=value` anywhere, `--key value` for `takes_value` keys.
    pub fn parse_anywhere(args: &[String], takes_value: &[&str]) -> Args {
        let mut out = Args::default();
        let mut iter = args.iter();
        while let Some(a) = iter.next() {
            if !a.starts_with('-') || a == "-" {
                out.positional.push(a.clone());
                continue;
            }
            let body = a.trim_start_matches('-');
            match body.split_once('=') {
                Some((k, v)) => out.opts.push((k.to_string(), v.to_string())),
                None if takes_value.contains(&body) => {
                    out.opts
                        .push((body.to_string(), iter.next().cloned().unwrap_or_default()));
                }
                None => out.opts.push((body.to_string(), "1".to_string())),
            }
        }
        out
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.opts
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            Some(v) => !matches!(v, "0" | "false"),
            None => self
                .get(&format!("no{key}"))
                .is_some_and(|v| matches!(v, "0" | "false")),
        }
    }
}
