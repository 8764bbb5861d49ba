//! A unit file as data: ordered sections of key/value entries, serialised in one place. Keys and
//! section names are `&'static str` (chosen by code, never by input); values arrive escaped for
//! their key (see `escape`), and serialisation refuses any value or comment that could end a line,
//! so no input can add a line, key or section.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFile {
    comments: Vec<String>,
    sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    name: &'static str,
    entries: Vec<(&'static str, String)>,
}

/// A value that would have broken the unit file's line structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeValue {
    pub section: &'static str,
    pub key: &'static str,
}

impl std::fmt::Display for UnsafeValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refusing to write a line break in [{}] {}=",
            self.section, self.key
        )
    }
}

impl std::error::Error for UnsafeValue {}

impl UnitFile {
    pub fn new() -> Self {
        Self::default()
    }

    /// A `# ` comment line before the first section.
    pub fn comment(&mut self, text: impl Into<String>) {
        self.comments.push(text.into());
    }

    /// The section named `name`, created at the end if it does not exist yet.
    pub fn section(&mut self, name: &'static str) -> &mut Section {
        let index = match self.sections.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                self.sections.push(Section {
                    name,
                    entries: Vec::new(),
                });
                self.sections.len() - 1
            }
        };
        &mut self.sections[index]
    }

    pub fn get(&self, section: &str, key: &str) -> Vec<&str> {
        self.sections
            .iter()
            .filter(|s| s.name == section)
            .flat_map(|s| s.entries.iter())
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn to_text(&self) -> Result<String, UnsafeValue> {
        let mut out = String::with_capacity(1024);
        for c in &self.comments {
            if breaks_line(c) {
                return Err(UnsafeValue {
                    section: "",
                    key: "#",
                });
            }
            out.push_str("# ");
            out.push_str(c);
            out.push('\n');
        }
        for (i, section) in self.sections.iter().enumerate() {
            if i > 0 || !self.comments.is_empty() {
                out.push('\n');
            }
            out.push('[');
            out.push_str(section.name);
            out.push_str("]\n");
            for (key, value) in &section.entries {
                // a trailing backslash would continue the line into the next entry
                if breaks_line(value) || value.ends_with('\\') {
                    return Err(UnsafeValue {
                        section: section.name,
                        key,
                    });
                }
                out.push_str(key);
                out.push('=');
                out.push_str(value);
                out.push('\n');
            }
        }
        Ok(out)
    }
}

impl Section {
    pub fn set(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        self.entries.push((key, value.into()));
        self
    }

    /// Sets `key` to `value` alone, dropping what it had.
    pub fn replace(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        self.entries.retain(|(k, _)| *k != key);
        self.set(key, value)
    }

    /// Adds `key=value` only when there is a value.
    pub fn set_opt(&mut self, key: &'static str, value: Option<impl Into<String>>) -> &mut Self {
        if let Some(v) = value {
            self.set(key, v);
        }
        self
    }
}

fn breaks_line(s: &str) -> bool {
    s.contains(['\n', '\r', '\0', '\u{2028}', '\u{2029}', '\u{0b}', '\u{0c}'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_in_order() {
        let mut u = UnitFile::new();
        u.comment("generated");
        u.section("Unit").set("Description", "x");
        u.section("Service").set("Restart", "always");
        u.section("Unit").set("After", "y");
        assert_eq!(
            u.to_text().unwrap(),
            "# generated\n\n[Unit]\nDescription=x\nAfter=y\n\n[Service]\nRestart=always\n"
        );
        assert_eq!(u.get("Unit", "After"), ["y"]);
    }

    #[test]
    fn refuses_line_breaks_and_continuations() {
        for bad in ["a\nb", "a\rb", "a\0b", "trailing\\"] {
            let mut u = UnitFile::new();
            u.section("Unit").set("Description", bad);
            assert_eq!(
                u.to_text().unwrap_err(),
                UnsafeValue {
                    section: "Unit",
                    key: "Description"
                },
                "{bad:?}"
            );
        }
    }
}
