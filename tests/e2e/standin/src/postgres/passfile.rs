//! Where Npgsql finds the password (`Internal/NpgsqlConnector.Auth.cs` GetPassword,
//! `PgPassFile.cs`): Password, PGPASSWORD, then `Passfile`/PGPASSFILE/~/.pgpass, the first
//! matching `host:port:db:user:password` line, no permission check.

use super::Pg;

impl Pg {
    /// GetPassword's order; Err is what reading the pass file threw (only raised if the
    /// server asks for a password).
    pub(super) fn password(&self, user: &str) -> Result<Option<String>, String> {
        if let Some(p) = &self.cs.password {
            return Ok(Some(p.clone()));
        }
        if let Ok(p) = std::env::var("PGPASSWORD") {
            return Ok(Some(p));
        }
        let file = self
            .cs
            .passfile
            .clone()
            .or_else(|| std::env::var("PGPASSFILE").ok())
            .or_else(|| {
                let d = crate::dotnet::home().join(".pgpass");
                d.exists().then(|| d.to_string_lossy().into_owned())
            });
        let Some(file) = file else { return Ok(None) };
        let bytes = std::fs::read(&file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("System.IO.FileNotFoundException: Could not find file '{file}'.")
            }
            std::io::ErrorKind::PermissionDenied => {
                format!(
                    "System.UnauthorizedAccessException: Access to the path '{file}' is denied."
                )
            }
            _ => format!("System.IO.IOException: {file}: {e}"),
        })?;
        let text = String::from_utf8_lossy(&bytes);
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let e = pgpass_entry(line)?;
            let host = self.cs.host.clone();
            let port = self.cs.port.to_string();
            let m = |q: &Option<String>, a: &Option<String>| q.is_none() || a.is_none() || q == a;
            if m(&host, &e[0])
                && m(&Some(port), &e[1])
                && m(&self.cs.database, &e[2])
                && m(&Some(user.to_string()), &e[3])
            {
                return Ok(e[4].clone());
            }
        }
        Ok(None)
    }
}

/// A `host:port:database:username:password` line (PgPassFile.cs): `*` matches anything, `\:`
/// and `\\` are escapes.
fn pgpass_entry(line: &str) -> Result<[Option<String>; 5], String> {
    let mut parts: Vec<Option<String>> = Vec::new();
    let mut cur = String::new();
    let mut it = line.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' if it.peek().is_some() => {
                let n = it.next().unwrap_or('\\');
                if n != ':' && n != '\\' {
                    cur.push('\\');
                }
                cur.push(n);
            }
            ':' => {
                parts.push(if cur == "*" { None } else { Some(cur.clone()) });
                cur.clear();
            }
            c => cur.push(c),
        }
    }
    parts.push(if cur == "*" { None } else { Some(cur) });
    if parts.len() != 5 {
        return Err("System.FormatException: pgpass entry was not well-formed. Please ensure all non-comment entries are formatted as hostname:port:database:username:password. If colon is included, it must be escaped like \\:.".into());
    }
    if let Some(p) = &parts[1] {
        if p.parse::<u16>().is_err() {
            return Err(
                "System.FormatException: pgpass entry was not formatted correctly. Port must be a valid integer."
                    .into(),
            );
        }
    }
    Ok([
        parts[0].take(),
        parts[1].take(),
        parts[2].take(),
        parts[3].take(),
        parts[4].take(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_lines() {
        let e = pgpass_entry("*:*:*:nbxplorer:pa\\:ss").unwrap();
        assert_eq!(e[3].as_deref(), Some("nbxplorer"));
        assert_eq!(e[4].as_deref(), Some("pa:ss"));
        assert!(e[0].is_none());
        assert!(pgpass_entry("a:b").is_err());
    }
}
