//! Validated string types. Each one rejects what would be unsafe or meaningless in the unit it ends
//! up in, at deserialisation time, so that serde reports the offending line and column.

use serde::Deserialize;
use std::fmt;

/// Characters that must never reach a unit file: they would end a line or a C string there.
/// TAB is allowed (it is escaped where it matters); every other C0 control and DEL is refused.
pub fn forbidden_char(s: &str) -> Option<char> {
    s.chars()
        .find(|&c| (c.is_control() && c != '\t') || c == '\u{2028}' || c == '\u{2029}')
}

/// Describes a forbidden character for an error message.
pub fn describe_char(c: char) -> String {
    match c {
        '\n' => "a line feed (LF)".into(),
        '\r' => "a carriage return (CR)".into(),
        '\0' => "a NUL byte".into(),
        c => format!("the control character U+{:04X}", c as u32),
    }
}

/// `s` with control characters and line separators shown as Rust escapes (`\n`, `\u{2028}`), for
/// messages that quote input: a log line or a terminal must not be broken or steered by it.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Lower-case hex of `bytes` (digests, salts).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                if let Some(c) = forbidden_char(&s) {
                    return Err(format!("value contains {}", describe_char(c)));
                }
                let check: fn(&str) -> Result<(), String> = $check;
                check(&s)?;
                Ok(Self(s))
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Is `s` of the form `[a-z][a-z0-9-]*`?
pub fn is_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
}

fn check_id(s: &str) -> Result<(), String> {
    if s.len() > 64 {
        return Err(format!("`{s}` is longer than 64 characters"));
    }
    if is_id(s) {
        Ok(())
    } else {
        Err(format!("`{s}` is not a valid name: use [a-z][a-z0-9-]*"))
    }
}

validated_string!(
    /// An app id, a provided name or a secret name: `[a-z][a-z0-9-]*`, at most 64 characters.
    Id,
    check_id
);

validated_string!(
    /// Free text: any string without line breaks or control characters. It is escaped for
    /// whichever unit key it is written to.
    Text,
    |_| Ok(())
);

validated_string!(
    /// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
    EnvName,
    |s| {
        let mut chars = s.chars();
        let ok = matches!(chars.next(), Some('A'..='Z' | 'a'..='z' | '_'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            Ok(())
        } else {
            Err(format!("`{s}` is not a valid environment variable name"))
        }
    }
);

fn check_path_chars(s: &str) -> Result<(), String> {
    let ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '@'));
    if !ok {
        return Err(format!(
            "`{s}` has characters not allowed in a path here (use A-Z a-z 0-9 / . _ - + @)"
        ));
    }
    if s.split('/').any(|part| part == "..") {
        return Err(format!("`{s}` must not contain `..`"));
    }
    Ok(())
}

validated_string!(
    /// An absolute path without `..`, spaces, quotes, `%`, `$` or `:` (it becomes part of a
    /// `src:dst:opts` volume spec and a command line).
    AbsPath,
    |s| {
        if !s.starts_with('/') {
            return Err(format!("`{s}` must be an absolute path"));
        }
        check_path_chars(s)
    }
);

validated_string!(
    /// A relative path below a directory archy owns: no leading `/`, no `..`.
    SubPath,
    |s| {
        if s.starts_with('/') {
            return Err(format!("`{s}` must be relative"));
        }
        check_path_chars(s)
    }
);

validated_string!(
    /// The name of a per-network value in `[networks]`: `[a-z][a-z0-9_]*`, at most 32 characters.
    NetworkKey,
    |s| {
        let mut chars = s.chars();
        let ok = s.len() <= 32
            && matches!(chars.next(), Some('a'..='z'))
            && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'));
        if ok {
            Ok(())
        } else {
            Err(format!("`{s}` is not a valid key: use [a-z][a-z0-9_]*, at most 32 characters"))
        }
    }
);

validated_string!(
    /// A per-network value in `[networks]`: up to 64 of `A-Z a-z 0-9 . _ -` (empty: a setting
    /// the app leaves unset on that network). Placed into other strings (paths, environment
    /// values, port numbers), it cannot change their meaning.
    NetworkValue,
    |s| {
        let ok = s.len() <= 64
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(())
        } else {
            Err(format!("`{s}` is not a valid value here: up to 64 of A-Z a-z 0-9 . _ -"))
        }
    }
);

validated_string!(
    /// A container image reference such as `docker.io/library/nginx:1.29`.
    ImageRef,
    |s| {
        let ok = !s.is_empty()
            && s.len() <= 255
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | ':' | '@'))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !ok {
            Err(format!("`{s}` is not a valid image reference"))
        } else if s.ends_with(".image") || s.ends_with(".build") {
            // quadlet takes such an Image= for a reference to its own .image or .build unit
            Err(format!("`{s}` ends in .image or .build, which quadlet takes for one of its units"))
        } else {
            Ok(())
        }
    }
);

validated_string!(
    /// A Linux capability name without the `CAP_` prefix, e.g. `NET_BIND_SERVICE`.
    Capability,
    |s| {
        let name = s.strip_prefix("CAP_").unwrap_or(s);
        if name == "ALL" {
            // podman would add every capability: name each one needed, so it can be granted
            Err(format!("`{s}` would add every capability: name each one the app needs"))
        } else if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            Ok(())
        } else {
            Err(format!("`{s}` is not a capability name such as NET_BIND_SERVICE"))
        }
    }
);

validated_string!(
    /// The numeric user a container's process runs as: `uid` or `uid:gid` (gid defaults to the
    /// uid), each below 65536. Numeric, because archy maps the service user to it (podman's
    /// `keep-id`), which a name known only to the image cannot be.
    UserSpec,
    |s| {
        let ok = match s.split_once(':') {
            Some((u, g)) => small_id(u) && small_id(g),
            None => small_id(s),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{s}` is not a numeric user such as 1000 or 1000:1000 (each below 65536): give \
                 the uid:gid the image runs as"
            ))
        }
    }
);

impl Capability {
    /// The name without its `CAP_` prefix, as podman and grants compare it.
    pub fn bare(&self) -> &str {
        self.0.strip_prefix("CAP_").unwrap_or(&self.0)
    }
}

fn small_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>().is_ok_and(|n| n < 65536)
}

impl UserSpec {
    /// The uid and gid.
    pub fn ids(&self) -> (u32, u32) {
        let parse = |x: &str| x.parse::<u32>().expect("validated");
        match self.0.split_once(':') {
            Some((u, g)) => (parse(u), parse(g)),
            None => (parse(&self.0), parse(&self.0)),
        }
    }
}

validated_string!(
    /// A podman user namespace mode, e.g. `keep-id:uid=101,gid=101` or `auto`.
    UserNs,
    |s| {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '=' | ',' | '-' | '_' | '/' | '.'));
        if ok {
            Ok(())
        } else {
            Err(format!("`{s}` is not a user namespace mode such as keep-id:uid=101,gid=101"))
        }
    }
);

validated_string!(
    /// A file name of a config template (no directories).
    FileName,
    |s| {
        let ok = !s.is_empty()
            && s != "."
            && s != ".."
            && s.len() <= 128
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(())
        } else {
            Err(format!("`{s}` is not a plain file name (A-Z a-z 0-9 . _ -)"))
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(Id::try_from("bitcoin-core".to_string()).is_ok());
        for bad in ["", "Bitcoin", "1abc", "a_b", "a b", "a\nb", "-a", "a.b"] {
            assert!(Id::try_from(bad.to_string()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn text_refuses_line_breaks_and_nul() {
        for bad in ["a\nb", "a\rb", "a\0b", "\u{1b}[0m", "a\u{2028}b"] {
            let err = Text::try_from(bad.to_string()).unwrap_err();
            assert!(err.contains("contains"), "{err}");
        }
        assert!(Text::try_from("tab\tand % and $ and \"q\"".to_string()).is_ok());
    }

    #[test]
    fn paths() {
        assert!(AbsPath::try_from("/home/bitcoin/.bitcoin".to_string()).is_ok());
        for bad in [
            "relative", "/a/../b", "/a b", "/a:b", "/a%b", "/a$b", "/a\"b",
        ] {
            assert!(
                AbsPath::try_from(bad.to_string()).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(SubPath::try_from("files/db".to_string()).is_ok());
        assert!(SubPath::try_from("/abs".to_string()).is_err());
        assert!(SubPath::try_from("../up".to_string()).is_err());
    }

    #[test]
    fn images_env_caps() {
        assert!(ImageRef::try_from("docker.io/lightninglabs/lnd:v0.21.2-beta".to_string()).is_ok());
        assert!(ImageRef::try_from("nginx --privileged".to_string()).is_err());
        for unit in ["local/app.image", "app.build"] {
            let e = ImageRef::try_from(unit.to_string()).unwrap_err();
            assert!(e.contains("quadlet"), "{e}");
        }
        assert!(EnvName::try_from("FB_PORT".to_string()).is_ok());
        assert!(EnvName::try_from("A=B".to_string()).is_err());
        assert!(Capability::try_from("NET_BIND_SERVICE".to_string()).is_ok());
        assert!(Capability::try_from("all".to_string()).is_err());
        for every in ["ALL", "CAP_ALL"] {
            let e = Capability::try_from(every.to_string()).unwrap_err();
            assert!(e.contains("every capability"), "{e}");
        }
        assert_eq!(
            Capability::try_from("CAP_NET_RAW".to_string())
                .unwrap()
                .bare(),
            "NET_RAW"
        );
    }
}
