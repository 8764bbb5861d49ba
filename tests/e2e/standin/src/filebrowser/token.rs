//! Tokens: golang-jwt HS256 as printToken signs them and withUser checks them, and the
//! durations tokenExpirationTime takes (Go's time.ParseDuration).

use super::db::{User, PERMS};
use crate::json::{self, num, obj, s, Value};
use crate::util::unix_now;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

type HmacSha256 = Hmac<Sha256>;

fn sign(key: &[u8], msg: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("hmac takes any key length");
    mac.update(msg.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

pub(super) fn make_token(key: &[u8], user: &User, ttl: Duration) -> String {
    let now = unix_now().as_secs();
    let perm = obj(PERMS
        .iter()
        .zip(user.perm)
        .map(|(k, v)| (*k, Value::Bool(v)))
        .collect());
    let claims = obj(vec![
        (
            "user",
            obj(vec![
                ("id", num(user.id)),
                ("locale", s(&user.locale)),
                ("viewMode", s("list")),
                ("singleClick", Value::Bool(false)),
                ("redirectAfterCopyMove", Value::Bool(true)),
                ("perm", perm),
                ("commands", Value::Arr(vec![])),
                ("lockPassword", Value::Bool(user.lock_password)),
                ("hideDotfiles", Value::Bool(false)),
                ("dateFormat", Value::Bool(false)),
                ("username", s(&user.username)),
                ("aceEditorTheme", s("")),
            ]),
        ),
        ("iss", s("File Browser")),
        ("exp", num(now + ttl.as_secs())),
        ("iat", num(now)),
    ]);
    let head = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.compact());
    let signed = format!("{head}.{body}");
    let sig = sign(key, &signed);
    format!("{signed}.{sig}")
}

/// The user id of a valid, unexpired HS256 token (jwt.WithValidMethods, WithExpirationRequired).
pub(super) fn check_token(key: &[u8], token: &str) -> Option<u64> {
    let mut parts = token.split('.');
    let (h, b, sig) = (parts.next()?, parts.next()?, parts.next()?);
    let head = json::parse(&String::from_utf8(URL_SAFE_NO_PAD.decode(h).ok()?).ok()?).ok()?;
    if head.get("alg").and_then(Value::as_str) != Some("HS256")
        || sign(key, &format!("{h}.{b}")) != sig
    {
        return None;
    }
    let claims = json::parse(&String::from_utf8(URL_SAFE_NO_PAD.decode(b).ok()?).ok()?).ok()?;
    let exp = claims.get("exp")?.as_i64()?;
    if exp <= unix_now().as_secs() as i64 {
        return None;
    }
    claims.get("user")?.get("id")?.as_i64().map(|id| id as u64)
}

/// time.ParseDuration for the forms tokenExpirationTime takes (2h, 90m, 1h30m, 45s)
pub(super) fn go_duration(t: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut numtext = String::new();
    let mut chars = t.chars().peekable();
    if t.is_empty() {
        return None;
    }
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            numtext.push(c);
            continue;
        }
        let n: f64 = numtext.parse().ok()?;
        numtext.clear();
        let unit = match (c, chars.peek()) {
            ('h', _) => 3600.0,
            ('m', Some('s')) => {
                chars.next();
                0.001
            }
            ('m', _) => 60.0,
            ('s', _) => 1.0,
            _ => return None,
        };
        total += n * unit;
    }
    numtext.is_empty().then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filebrowser::db::hash_password;

    #[test]
    fn tokens() {
        let u = User {
            id: 1,
            username: "admin".into(),
            ..User::default()
        };
        let t = make_token(b"k", &u, Duration::from_secs(60));
        assert_eq!(check_token(b"k", &t), Some(1));
        assert_eq!(check_token(b"other", &t), None);
        assert_eq!(go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert!(bcrypt::verify("x", &hash_password("x").unwrap()).unwrap());
        assert!(hash_password("x").unwrap().starts_with("$2a$10$"));
    }
}
