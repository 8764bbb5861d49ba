//! A test-only reader of unit values the way quadlet and systemd read them, to check that what
//! archy writes comes back as the manifest's string, byte for byte.

/// Splits a word-list value (`Exec=`, `Environment=`, `ExecStart=`) into words: whitespace
/// separates words; double and single quotes group; C escapes (`\\`, `\"`, `\'`, `\t`, `\n`,
/// `\r`, `\xNN`, `\s`, ...) are resolved. Unknown escapes and unbalanced quotes are errors.
pub fn split_words(value: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| matches!(c, ' ' | '\t')) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        loop {
            let Some(c) = chars.next() else {
                if let Some(q) = quote {
                    return Err(format!("unbalanced {q} in {value:?}"));
                }
                break;
            };
            match (quote, c) {
                (None, ' ' | '\t') => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => {
                    let e = chars
                        .next()
                        .ok_or_else(|| format!("trailing backslash in {value:?}"))?;
                    word.push(match e {
                        '\\' => '\\',
                        '"' => '"',
                        '\'' => '\'',
                        't' => '\t',
                        'n' => '\n',
                        'r' => '\r',
                        's' => ' ',
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'v' => '\u{b}',
                        'x' => {
                            let hex: String = chars.by_ref().take(2).collect();
                            let n = u8::from_str_radix(&hex, 16)
                                .map_err(|e| format!("\\x{hex}: {e}"))?;
                            char::from(n)
                        }
                        other => return Err(format!("unknown escape \\{other} in {value:?}")),
                    });
                }
                (_, c) => word.push(c),
            }
        }
        words.push(word);
    }
}

/// Undoes systemd's specifier (`%%`) and variable (`$$`) escaping. Any other `%` or `$` would be
/// expanded by systemd, so it is an error here: the value would not be literal.
pub fn unescape_literal(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' | '$' => match chars.next() {
                Some(n) if n == c => out.push(c),
                other => {
                    return Err(format!(
                        "unescaped {c}{} in {s:?}",
                        other.map(String::from).unwrap_or_default()
                    ))
                }
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The words of an `Exec=`-like value as the container gets them.
pub fn exec_words(value: &str) -> Result<Vec<String>, String> {
    split_words(value)?
        .iter()
        .map(|w| unescape_literal(w))
        .collect()
}

/// `HealthCmd=` as quadlet reads it: one pair of outer double quotes stripped, no C escapes.
pub fn raw_value(value: &str) -> Result<String, String> {
    let inner = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|_| value.len() >= 2)
        .unwrap_or(value);
    unescape_literal(inner)
}

#[test]
fn the_parser_itself() {
    assert_eq!(
        split_words(r#"a "b c" 'd e' "f\"g" h\\i "" x"y"z"#).unwrap(),
        ["a", "b c", "d e", "f\"g", "h\\i", "", "xyz"]
    );
    assert_eq!(split_words("\"t\\tab\" \\x41").unwrap(), ["t\tab", "A"]);
    assert!(split_words("\"open").is_err());
    assert!(split_words("\\q").is_err());
    assert_eq!(exec_words("\"100%% $$HOME\"").unwrap(), ["100% $HOME"]);
    assert!(exec_words("%h").is_err());
    assert!(exec_words("$HOME").is_err());
    assert_eq!(raw_value("\"echo \"x\" \\\"").unwrap(), "echo \"x\" \\");
    assert_eq!(raw_value("\"\"").unwrap(), "");
}
