//! Just enough JSON for JSON-RPC: a parser and two printers.

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// kept as written: ids and amounts pass through unchanged
    Num(String),
    Str(String),
    Arr(Vec<Value>),
    Obj(Vec<(String, Value)>),
}

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Num(n) => n.parse().ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Num(n) => n.parse().ok(),
            _ => None,
        }
    }

    pub fn is_array(&self) -> bool {
        matches!(self, Value::Arr(_))
    }

    pub fn compact(&self) -> String {
        self.styled(&COMPACT)
    }

    /// Indented like bitcoin-cli and lncli print results.
    pub fn pretty(&self, indent: usize) -> String {
        self.styled(&Style {
            indent: Some(indent),
            ..COMPACT
        })
    }

    pub fn styled(&self, style: &Style) -> String {
        let mut s = String::new();
        self.write(&mut s, style, 0);
        s
    }

    fn write(&self, out: &mut String, st: &Style, depth: usize) {
        let nl = |out: &mut String, d: usize| {
            if let Some(n) = st.indent {
                out.push('\n');
                out.push_str(&" ".repeat(n * d));
            }
        };
        let (comma, colon) = if st.indent.is_some() {
            (",", ": ")
        } else {
            (st.comma, st.colon)
        };
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Num(n) => match st.number {
                Some(f) => out.push_str(&f(n)),
                None => out.push_str(n),
            },
            Value::Str(s) => quote(out, s, st.ascii),
            Value::Arr(a) if a.is_empty() => out.push_str("[]"),
            Value::Obj(m) if m.is_empty() => out.push_str("{}"),
            Value::Arr(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(comma);
                    }
                    nl(out, depth + 1);
                    v.write(out, st, depth + 1);
                }
                nl(out, depth);
                out.push(']');
            }
            Value::Obj(m) => {
                let mut members: Vec<&(String, Value)> = m.iter().collect();
                if st.sort_keys {
                    members.sort_by(|a, b| a.0.cmp(&b.0));
                }
                out.push('{');
                for (i, (k, v)) in members.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(comma);
                    }
                    nl(out, depth + 1);
                    quote(out, k, st.ascii);
                    out.push_str(colon);
                    v.write(out, st, depth + 1);
                }
                nl(out, depth);
                out.push('}');
            }
        }
    }
}

/// How `Value::styled` prints: `compact` and `pretty` as serde and bitcoin-cli do, or (with
/// its own `number`) as Python's `json.dumps`.
#[derive(Clone, Copy)]
pub struct Style {
    /// spaces per level, each member on its own line (then "," and ": " separate); None: one line
    pub indent: Option<usize>,
    /// between members on one line: "," or Python's ", "
    pub comma: &'static str,
    /// between a key and its value on one line: ":" or Python's ": "
    pub colon: &'static str,
    pub sort_keys: bool,
    /// nothing but printable ASCII out, as Python's `ensure_ascii` escapes
    pub ascii: bool,
    /// how a number is printed; None: as it was written
    pub number: Option<fn(&str) -> String>,
}

const COMPACT: Style = Style {
    indent: None,
    comma: ",",
    colon: ":",
    sort_keys: false,
    ascii: false,
    number: None,
};

fn quote(out: &mut String, s: &str, ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' if ascii => out.push_str("\\b"),
            '\u{c}' if ascii => out.push_str("\\f"),
            c if (c as u32) < 0x20 || ascii && (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("trailing characters at {}", p.i));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, lit: &str) -> Result<(), String> {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(format!("expected {lit} at {}", self.i))
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        match self.peek().ok_or("unexpected end")? {
            b'n' => self.eat("null").map(|_| Value::Null),
            b't' => self.eat("true").map(|_| Value::Bool(true)),
            b'f' => self.eat("false").map(|_| Value::Bool(false)),
            b'"' => self.string().map(Value::Str),
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Value::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Arr(a));
                        }
                        _ => return Err(format!("expected , or ] at {}", self.i)),
                    }
                }
            }
            b'{' => {
                self.i += 1;
                let mut m = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Value::Obj(m));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.ws();
                    self.eat(":")?;
                    let v = self.value()?;
                    m.push((k, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Value::Obj(m));
                        }
                        _ => return Err(format!("expected , or }} at {}", self.i)),
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                Ok(Value::Num(
                    String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
                ))
            }
            c => Err(format!("unexpected {:?} at {}", c as char, self.i)),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat("\"")?;
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("unterminated escape")?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = std::str::from_utf8(
                                self.s.get(self.i..self.i + 4).ok_or("bad \\u")?,
                            )
                            .map_err(|e| e.to_string())?;
                            self.i += 4;
                            let cp = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                            let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                            out.extend_from_slice(ch.to_string().as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }
}

/// Build an object from pairs.
pub fn obj(pairs: Vec<(&str, Value)>) -> Value {
    Value::Obj(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

pub fn num(n: impl std::fmt::Display) -> Value {
    Value::Num(n.to_string())
}

pub fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = r#"{"jsonrpc":"1.0","id":"curl\"x","method":"getblockchaininfo","params":[1,-2.5e3,true,null,{}]}"#;
        let v = parse(t).unwrap();
        assert_eq!(v.compact(), t);
        assert_eq!(
            v.get("method").and_then(Value::as_str),
            Some("getblockchaininfo")
        );
    }

    #[test]
    fn styles() {
        let v = parse(r#"{"b":[1,"\u0008é"],"a":{}}"#).unwrap();
        assert_eq!(v.compact(), "{\"b\":[1,\"\\u0008é\"],\"a\":{}}");
        assert_eq!(
            v.pretty(2),
            "{\n  \"b\": [\n    1,\n    \"\\u0008é\"\n  ],\n  \"a\": {}\n}"
        );
        let python = Style {
            comma: ", ",
            colon: ": ",
            sort_keys: true,
            ascii: true,
            ..COMPACT
        };
        assert_eq!(v.styled(&python), "{\"a\": {}, \"b\": [1, \"\\b\\u00e9\"]}");
    }
}
