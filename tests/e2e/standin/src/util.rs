//! Small helpers several stand-ins share: the clock and UTC dates, percent-encoding, hex,
//! base64 and the text of an OS error.

use base64::Engine as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time since the Unix epoch (zero for a clock set before it).
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Whole seconds since the Unix epoch.
pub fn unix_secs() -> u64 {
    unix_now().as_secs()
}

/// Civil UTC date and time (year, month, day, hour, minute, second) of a Unix time.
pub fn utc(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    // Howard Hinnant's civil_from_days
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// `%XX` decoding; a `%` not followed by two hex digits stays as it is.
pub fn percent_decode(s: &str) -> String {
    decode(s, false)
}

/// `%XX` decoding of a query's key or value, where a `+` (not an escaped one) is a space.
pub fn query_decode(s: &str) -> String {
    decode(s, true)
}

fn decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && b[i] == b'+' {
            b' '
        } else {
            b[i]
        });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `%XX` encoding of everything but RFC 3986's unreserved characters.
pub fn percent_encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The bytes of a hex string; None if its length is odd or a pair is not hex.
pub fn unhex(h: &str) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// Standard base64, padded.
pub fn base64(data: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// The bytes of standard, padded base64.
pub fn unbase64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// An `Authorization` header's value for HTTP Basic auth with `user:password`.
pub fn basic_auth(credentials: &str) -> String {
    format!("Basic {}", base64(credentials))
}

/// An OS error's text without std's " (os error N)": "Permission denied".
pub fn os_error_text(e: &std::io::Error) -> String {
    let t = e.to_string();
    t.split(" (os error").next().unwrap_or(&t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(utc(1_709_210_096), (2024, 2, 29, 12, 34, 56));
        assert_eq!(utc(-1), (1969, 12, 31, 23, 59, 59));
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_decode("a%20b+c%2"), "a b+c%2");
        assert_eq!(query_decode("a%20b+c%2B"), "a b c+");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_encode("xpub-[p2sh] ~"), "xpub-%5Bp2sh%5D%20~");
        assert_eq!(unhex(&hex(b"\x00\xff")), Some(vec![0, 255]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(basic_auth("u:p"), "Basic dTpw");
        assert_eq!(unbase64("dTpw").as_deref(), Some(&b"u:p"[..]));
    }
}
