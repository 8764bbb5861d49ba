//! The digest label: a hash of an app's rendered definition, put on its container, so reconcile
//! restarts exactly the apps whose definition changed. Written into the `.container` and read back
//! from it here only, by the unit-file rules rather than by the text it happens to have: a change
//! of quoting cannot make reconcile blind to changed apps.

use crate::escape;
use crate::unit::UnitFile;
use sha2::{Digest as _, Sha256};

/// The container label holding the digest.
pub const LABEL: &str = "archy.digest";

/// The digest of a definition's text.
pub fn of(definition: &str) -> String {
    crate::text::hex(&Sha256::digest(definition.as_bytes()))
}

/// Adds the label, ending the `[Container]` section of `unit`.
pub fn insert(unit: &mut UnitFile, digest: &str) {
    insert_quoted(unit, digest, escape::word);
}

fn insert_quoted(unit: &mut UnitFile, digest: &str, quote: impl Fn(&str) -> String) {
    unit.section("Container")
        .set("Label", quote(&format!("{LABEL}={digest}")));
}

/// The digest in a rendered `.container`'s text, if it has one.
pub fn in_container_file(text: &str) -> Option<String> {
    let mut section = "";
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name;
            continue;
        }
        let Some(value) = line.strip_prefix("Label=") else {
            continue;
        };
        if section != "Container" {
            continue;
        }
        let found = escape::split_words(value)?
            .into_iter()
            .find_map(|w| w.strip_prefix(&format!("{LABEL}=")).map(str::to_string));
        if found.is_some() {
            return found;
        }
    }
    None
}

/// The digest label of a container, as podman reports it; None without one or without the
/// container.
pub fn of_container(name: &str) -> Option<String> {
    crate::podman::label(name, LABEL).filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit() -> UnitFile {
        let mut u = UnitFile::new();
        u.section("Unit").set("Description", "x");
        u.section("Container")
            .set("Image", "i")
            .set("Label", escape::assignment("archy.app", "x"));
        u.section("Service")
            .set("Label", "\"archy.digest=not-this\"");
        u
    }

    #[test]
    fn round_trip_whatever_the_quoting() {
        let quotings: [fn(&str) -> String; 4] = [
            escape::word,
            |s| s.to_string(),
            |s| format!("'{s}'"),
            |s| format!("\"extra=1\" {}", escape::word(s)),
        ];
        for quote in quotings {
            let mut u = unit();
            let d = of("definition");
            insert_quoted(&mut u, &d, quote);
            let text = u.to_text().unwrap();
            assert_eq!(in_container_file(&text), Some(d), "{text}");
            // a changed definition is seen as changed
            let mut v = unit();
            insert_quoted(&mut v, &of("definition, changed"), quote);
            let changed = in_container_file(&v.to_text().unwrap()).unwrap();
            assert_ne!(Some(changed), in_container_file(&text));
        }
    }

    #[test]
    fn ends_the_container_section() {
        let mut u = unit();
        insert(&mut u, "abc");
        let text = u.to_text().unwrap();
        assert!(
            text.contains("Label=\"archy.app=x\"\nLabel=\"archy.digest=abc\"\n\n[Service]"),
            "{text}"
        );
        assert_eq!(in_container_file("[Unit]\nDescription=x\n"), None);
        // only [Container]'s labels are the container's
        assert_eq!(
            in_container_file("[Service]\nLabel=archy.digest=abc\n"),
            None
        );
    }
}
