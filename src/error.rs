//! Errors about manifests and node settings. They always name the file, and the line and column or
//! the key where there is one, because an operator has to find and fix them.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the text.
    pub position: Option<(usize, usize)>,
    /// The key concerned, as `[section] key`, when known and not obvious from the position.
    pub key: Option<String>,
    pub message: String,
}

impl InputError {
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            position: None,
            key: None,
            message: message.into(),
        }
    }

    pub fn at_key(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: Some(key.into()),
            ..Self::new(file, message)
        }
    }

    /// From a TOML error, with the position of its span in `text`.
    pub fn from_toml(file: &Path, text: &str, err: &toml::de::Error) -> Self {
        let position = err.span().map(|span| line_col(text, span.start));
        Self {
            position,
            ..Self::new(file, err.message().trim().to_string())
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{}: ", crate::text::one_line(key))?;
        }
        // parser messages quote the input, which may hold control characters
        f.write_str(&crate::text::one_line(&self.message))
    }
}

impl std::error::Error for InputError {}
