//! Escaping manifest strings for the Quadlet key they are written to, so that they reach the
//! container byte for byte. Three facts drive it (podman's quadlet parser, checked on the test bed):
//! - `Exec=`, `Environment=` and `Label=` are split into words with quotes and C escapes removed;
//! - `HealthCmd=` and most other keys are taken raw, minus one pair of surrounding double quotes;
//! - quadlet copies every value into the service's `ExecStart=`, where systemd expands `%`
//!   specifiers and `$` variables: a literal `%` must be `%%` and a literal `$` must be `$$`.

/// `%` → `%%` and `$` → `$$`: what systemd's `ExecStart=` turns back into `%` and `$`.
fn push_literal(out: &mut String, c: char) {
    match c {
        '%' => out.push_str("%%"),
        '$' => out.push_str("$$"),
        c => out.push(c),
    }
}

/// One word for a word-split key (`Exec=`, `Environment=`, `Label=`): always double-quoted, with
/// `\` and `"` escaped, so spaces stay inside the word and nothing is unescaped twice.
pub fn word(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\t' => out.push_str("\\t"),
            c => push_literal(&mut out, c),
        }
    }
    out.push('"');
    out
}

/// Several words, for `Exec=`.
pub fn words<S: AsRef<str>>(args: &[S]) -> String {
    args.iter()
        .map(|a| word(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `KEY=value` as one word, for `Environment=` and `Label=`.
pub fn assignment(key: &str, value: &str) -> String {
    word(&format!("{key}={value}"))
}

/// A value for a raw key that quadlet passes on to `ExecStart=` (`HealthCmd=`): wrapped in one
/// pair of double quotes, which quadlet strips, so leading/trailing spaces, inner quotes and a
/// trailing backslash survive; inside, no C escapes apply.
pub fn raw_exec(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_literal(&mut out, c);
    }
    out.push('"');
    out
}

/// Human text for a systemd key that expands specifiers but no escapes (`Description=`).
/// Backslashes could continue the line, so they are shown as `/`; this text is for display only.
pub fn description(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.trim().chars() {
        match c {
            '%' => out.push_str("%%"),
            '\\' => out.push('/'),
            '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The words of a word-split key's value (`Label=`, `Environment=`, `Exec=`), as quadlet and
/// systemd read them back: double or single quotes grouping, C escapes inside double quotes and
/// bare words, `%%` and `$$` as one `%` and `$`. None for an unterminated quote.
pub fn split_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Some(words);
        }
        let mut word = String::new();
        let mut quote = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, c) if c.is_whitespace() => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (Some('\''), c) => word.push(c),
                (_, '\\') => match chars.next()? {
                    't' => word.push('\t'),
                    'n' => word.push('\n'),
                    c => word.push(c),
                },
                (_, '%' | '$') if chars.peek() == Some(&c) => {
                    chars.next();
                    word.push(c);
                }
                (_, c) => word.push(c),
            }
        }
        if quote.is_some() {
            return None;
        }
        words.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_and_escaped() {
        assert_eq!(word("plain"), "\"plain\"");
        assert_eq!(word("a b"), "\"a b\"");
        assert_eq!(word(""), "\"\"");
        assert_eq!(word(r#"say "hi"\n"#), r#""say \"hi\"\\n""#);
        assert_eq!(word("100% $HOME ${X}"), "\"100%% $$HOME $${X}\"");
        assert_eq!(word("tab\there"), "\"tab\\there\"");
        assert_eq!(words(&["a", "b c"]), "\"a\" \"b c\"");
        assert_eq!(assignment("K", "v=1 2"), "\"K=v=1 2\"");
    }

    #[test]
    fn split_words_reads_back_what_word_writes() {
        for w in [
            "plain",
            "a b",
            "",
            r#"say "hi"\n"#,
            "100% $HOME",
            "tab\there",
        ] {
            assert_eq!(split_words(&word(w)), Some(vec![w.to_string()]), "{w:?}");
        }
        assert_eq!(
            split_words(" a 'b c' \"d\\\"e\" "),
            Some(vec!["a".into(), "b c".into(), "d\"e".into()])
        );
        assert_eq!(split_words("\"open"), None);
    }

    #[test]
    fn raw_values_keep_quotes_and_backslashes() {
        assert_eq!(raw_exec(r#"grep -q "x" \"#), r#""grep -q "x" \""#);
        assert_eq!(raw_exec("echo $x 5%"), "\"echo $$x 5%%\"");
    }

    #[test]
    fn descriptions() {
        assert_eq!(description(" 100% \\ done "), "100%% / done");
    }
}
