//! URLs as fedimint's SafeUrl over the url crate parses and shows them (credentials redacted).

#[derive(Clone, Debug)]
pub(super) struct Url {
    pub(super) scheme: String,
    pub(super) user: String,
    pub(super) pass: Option<String>,
    pub(super) host: String,
    pub(super) port: Option<u16>,
    pub(super) path: String,
}

impl Url {
    pub(super) fn parse(t: &str) -> Result<Url, String> {
        let (scheme, rest) = t.split_once("://").ok_or("relative URL without a base")?;
        let mut sc = scheme.chars();
        if !sc.next().is_some_and(|c| c.is_ascii_alphabetic())
            || !sc.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err("relative URL without a base".into());
        }
        let scheme = scheme.to_ascii_lowercase();
        let special = matches!(scheme.as_str(), "http" | "https" | "ws" | "wss" | "ftp");
        let (authority, path) = rest
            .find(['/', '?', '#'])
            .map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .map_or((None, authority), |(u, h)| (Some(u), h));
        let (user, pass) = match userinfo {
            Some(u) => u
                .split_once(':')
                .map_or((u, None), |(a, b)| (a, Some(b.to_string()))),
            None => ("", None),
        };
        let (host, port) = if hostport.starts_with('[') {
            let end = hostport.find(']').ok_or("invalid IPv6 address")?;
            (&hostport[..=end], hostport[end + 1..].strip_prefix(':'))
        } else {
            hostport
                .rsplit_once(':')
                .map_or((hostport, None), |(h, p)| (h, Some(p)))
        };
        if host.is_empty() && special {
            return Err("empty host".into());
        }
        let port = match port.filter(|p| !p.is_empty()) {
            Some(p) => Some(p.parse::<u16>().map_err(|_| "invalid port number")?),
            None => None,
        };
        let default = match scheme.as_str() {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        };
        Ok(Url {
            port: if port == default { None } else { port },
            path: if path.is_empty() && special {
                "/".into()
            } else {
                path.into()
            },
            scheme,
            user: user.into(),
            pass,
            host: host.to_ascii_lowercase(),
        })
    }

    /// SafeUrl's Display: credentials redacted
    pub(super) fn safe(&self) -> String {
        let mut out = format!("{}://", self.scheme);
        if !self.user.is_empty() {
            out.push_str("REDACTEDUSER");
            if self.pass.is_some() {
                out.push_str(":REDACTEDPASS");
            }
            out.push('@');
        }
        out.push_str(&self.host);
        if let Some(p) = self.port {
            out.push_str(&format!(":{p}"));
        }
        out.push_str(&self.path);
        out
    }

    pub(super) fn without_auth(&self) -> Url {
        Url {
            user: String::new(),
            pass: None,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://user:pw@Bitcoind:8332").unwrap();
        assert_eq!(u.safe(), "http://REDACTEDUSER:REDACTEDPASS@bitcoind:8332/");
        assert_eq!(u.without_auth().safe(), "http://bitcoind:8332/");
        assert_eq!(Url::parse("http://h:80/x").unwrap().safe(), "http://h/x");
        assert_eq!(
            Url::parse("fedimint://g.example:8173").unwrap().safe(),
            "fedimint://g.example:8173"
        );
        assert!(Url::parse("bitcoind:8332").is_err());
        assert!(Url::parse("http://h:99999").is_err());
    }
}
