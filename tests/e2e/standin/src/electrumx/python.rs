//! Python as upstream's texts show it: `json.dumps`, `repr`, `int()`, truthiness, and
//! `electrumx.lib.util`'s number and time formats.

use crate::json::{Style, Value};

/// Python's `f'{n:,d}'`.
pub(super) fn commas(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// `electrumx.lib.util.formatted_time`.
pub(super) fn formatted_time(t: i64, sep: &str) -> String {
    let mut t = t.max(0);
    let mut parts: Vec<String> = Vec::new();
    for (unit, n) in [("d", 86400), ("h", 3600), ("m", 60)] {
        let val = t / n;
        if !parts.is_empty() || val > 0 {
            parts.push(if unit == "d" {
                format!("{val}d")
            } else {
                format!("{val:02}{unit}")
            });
        }
        t %= n;
    }
    if parts.len() < 3 {
        parts.push(format!("{t:02}s"));
    }
    parts.join(sep)
}

/// A JSON number as Python would print it after `json.loads`: ints unchanged, floats as `repr`.
pub(super) fn py_num(n: &str) -> String {
    if !n.contains(['.', 'e', 'E']) {
        return n.to_string();
    }
    let Ok(x) = n.parse::<f64>() else {
        return n.to_string();
    };
    py_float(x)
}

fn py_float(x: f64) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "NaN".into()
        } else if x > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    // shortest round-trip digits and the decimal exponent
    let e = format!("{:e}", x.abs());
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if x < 0.0 { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let m = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let es = if exp < 0 {
            format!("-{:02}", -exp)
        } else {
            format!("+{exp:02}")
        };
        return format!("{sign}{m}e{es}");
    }
    let n = digits.len() as i32;
    let point = exp + 1; // digits before the decimal point
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point >= n {
        format!("{digits}{}.0", "0".repeat((point - n) as usize))
    } else {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    };
    format!("{sign}{body}")
}

/// `json.dumps(v)`: separators ", " and ": ", ASCII only.
pub(super) fn py_dumps(v: &Value) -> String {
    v.styled(&PYTHON)
}

/// `json.dumps(v, separators=(',', ':'))`: aiorpcX 0.25's payloads.
pub(super) fn py_dumps_compact(v: &Value) -> String {
    v.styled(&Style {
        comma: ",",
        colon: ":",
        ..PYTHON
    })
}

/// `json.dumps(v, indent=4, sort_keys=True)`.
pub(super) fn py_dumps_pretty(v: &Value) -> String {
    v.styled(&Style {
        indent: Some(4),
        sort_keys: true,
        ..PYTHON
    })
}

const PYTHON: Style = Style {
    indent: None,
    comma: ", ",
    colon: ": ",
    sort_keys: false,
    ascii: true,
    number: Some(py_num),
};

/// Python's `repr` of a value loaded from JSON (for DaemonError texts).
pub(super) fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Num(n) => py_num(n),
        Value::Str(x) => py_repr_str(x),
        Value::Arr(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Obj(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, x)| format!("{}: {}", py_repr_str(k), py_repr(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub(super) fn py_repr_str(x: &str) -> String {
    let q = if x.contains('\'') && !x.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(q);
    for c in x.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// `str(value)` as an f-string prints a JSON-loaded value.
pub(super) fn py_fstr(v: &Value) -> String {
    match v {
        Value::Str(x) => x.clone(),
        other => py_repr(other),
    }
}

/// Python's `int(str)`: surrounding whitespace, a sign, digits with single underscores.
pub(super) fn py_int(v: &str) -> Option<i64> {
    let t = v.trim();
    let (neg, d) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if d.is_empty()
        || d.starts_with('_')
        || d.ends_with('_')
        || d.contains("__")
        || !d.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let n: i64 = d.replace('_', "").parse().ok()?;
    Some(if neg { -n } else { n })
}

pub(super) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Obj(m) => !m.is_empty(),
        Value::Arr(a) => !a.is_empty(),
        Value::Str(x) => !x.is_empty(),
        Value::Num(n) => n.parse::<f64>() != Ok(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn python_floats() {
        assert_eq!(py_num("0.00001000"), "1e-05");
        assert_eq!(py_num("0.00012000"), "0.00012");
        assert_eq!(py_num("0.0001"), "0.0001");
        assert_eq!(py_num("126982285146989.3"), "126982285146989.3");
        assert_eq!(py_num("1e16"), "1e+16");
        assert_eq!(py_num("123.0"), "123.0");
        assert_eq!(py_num("42"), "42");
    }

    #[test]
    fn python_dumps() {
        let v = json::parse(
            r#"{"b": [1, 2.5], "a": {"x": null, "y": true}, "db height": 5, "db_flush_count": 1}"#,
        )
        .unwrap();
        assert_eq!(
            py_dumps(&v),
            r#"{"b": [1, 2.5], "a": {"x": null, "y": true}, "db height": 5, "db_flush_count": 1}"#
        );
        assert_eq!(
            py_dumps_pretty(&v),
            "{\n    \"a\": {\n        \"x\": null,\n        \"y\": true\n    },\n    \"b\": [\n        1,\n        2.5\n    ],\n    \"db height\": 5,\n    \"db_flush_count\": 1\n}"
        );
        assert_eq!(
            py_repr(&json::parse(r#"{"code": -32601, "message": "Method not found"}"#).unwrap()),
            "{'code': -32601, 'message': 'Method not found'}"
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(commas(900000), "900,000");
        assert_eq!(commas(-1), "-1");
        assert_eq!(formatted_time(5, " "), "05s");
        assert_eq!(formatted_time(3700, " "), "01h 01m 40s");
        assert_eq!(formatted_time(90000, " "), "1d 01h 00m");
        assert_eq!(py_int(" 1_000 "), Some(1000));
        assert_eq!(py_int("1.5"), None);
    }
}
