//! Npgsql 10.0.3's connection strings (npgsql/npgsql `src/Npgsql/NpgsqlConnectionStringBuilder.cs`):
//! keywords and synonyms, "Couldn't set X" for an unknown one.

#[derive(Clone, Debug, Default)]
pub struct ConnString {
    pub host: Option<String>,
    pub port: u16,
    pub database: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub passfile: Option<String>,
    pub application_name: Option<String>,
    pub timeout: u64,
    pub ssl_mode: Option<String>,
}

/// Npgsql's keywords (display names, property names, synonyms), upper case.
const KNOWN: &[&str] = &[
    "ENLIST",
    "SEARCH PATH",
    "SEARCHPATH",
    "CLIENT ENCODING",
    "CLIENTENCODING",
    "ENCODING",
    "TIMEZONE",
    "SSL NEGOTIATION",
    "SSLNEGOTIATION",
    "GSS ENCRYPTION MODE",
    "GSSENCRYPTIONMODE",
    "SSL CERTIFICATE",
    "SSLCERTIFICATE",
    "SSL KEY",
    "SSLKEY",
    "SSL PASSWORD",
    "SSLPASSWORD",
    "ROOT CERTIFICATE",
    "ROOTCERTIFICATE",
    "CHECK CERTIFICATE REVOCATION",
    "CHECKCERTIFICATEREVOCATION",
    "KERBEROS SERVICE NAME",
    "KERBEROSSERVICENAME",
    "KRBSRVNAME",
    "INCLUDE REALM",
    "INCLUDEREALM",
    "PERSIST SECURITY INFO",
    "PERSISTSECURITYINFO",
    "LOG PARAMETERS",
    "LOGPARAMETERS",
    "INCLUDE ERROR DETAIL",
    "INCLUDEERRORDETAIL",
    "INCLUDE FAILED BATCHED COMMAND",
    "INCLUDEFAILEDBATCHEDCOMMAND",
    "CHANNEL BINDING",
    "CHANNELBINDING",
    "REQUIRE AUTH",
    "REQUIREAUTH",
    "POOLING",
    "MINIMUM POOL SIZE",
    "MINPOOLSIZE",
    "MAXIMUM POOL SIZE",
    "MAXPOOLSIZE",
    "CONNECTION IDLE LIFETIME",
    "CONNECTIONIDLELIFETIME",
    "CONNECTION PRUNING INTERVAL",
    "CONNECTIONPRUNINGINTERVAL",
    "CONNECTION LIFETIME",
    "CONNECTIONLIFETIME",
    "LOAD BALANCE TIMEOUT",
    "COMMAND TIMEOUT",
    "COMMANDTIMEOUT",
    "CANCELLATION TIMEOUT",
    "CANCELLATIONTIMEOUT",
    "TARGET SESSION ATTRIBUTES",
    "TARGETSESSIONATTRIBUTES",
    "LOAD BALANCE HOSTS",
    "LOADBALANCEHOSTS",
    "HOST RECHECK SECONDS",
    "HOSTRECHECKSECONDS",
    "KEEPALIVE",
    "TCP KEEPALIVE",
    "TCPKEEPALIVE",
    "TCP KEEPALIVE TIME",
    "TCPKEEPALIVETIME",
    "TCP KEEPALIVE INTERVAL",
    "TCPKEEPALIVEINTERVAL",
    "READ BUFFER SIZE",
    "READBUFFERSIZE",
    "WRITE BUFFER SIZE",
    "WRITEBUFFERSIZE",
    "SOCKET RECEIVE BUFFER SIZE",
    "SOCKETRECEIVEBUFFERSIZE",
    "SOCKET SEND BUFFER SIZE",
    "SOCKETSENDBUFFERSIZE",
    "MAX AUTO PREPARE",
    "MAXAUTOPREPARE",
    "AUTO PREPARE MIN USAGES",
    "AUTOPREPAREMINUSAGES",
    "NO RESET ON CLOSE",
    "NORESETONCLOSE",
    "REPLICATION MODE",
    "REPLICATIONMODE",
    "OPTIONS",
    "ARRAY NULLABILITY MODE",
    "ARRAYNULLABILITYMODE",
    "MULTIPLEXING",
    "WRITE COALESCING BUFFER THRESHOLD BYTES",
    "WRITECOALESCINGBUFFERTHRESHOLDBYTES",
    "LOAD TABLE COMPOSITES",
    "LOADTABLECOMPOSITES",
    "SERVER COMPATIBILITY MODE",
    "SERVERCOMPATIBILITYMODE",
    "TRUST SERVER CERTIFICATE",
    "TRUSTSERVERCERTIFICATE",
    "INTERNAL COMMAND TIMEOUT",
    "INTERNALCOMMANDTIMEOUT",
];

fn couldnt_set(kw: &str, inner: &str) -> String {
    format!("System.ArgumentException: Couldn't set {kw} (Parameter '{kw}')\n ---> {inner}")
}

/// DbConnectionStringBuilder's `key=value;...` (values may be quoted with ' or ").
pub fn parse(text: &str) -> Result<ConnString, String> {
    let mut cs = ConnString {
        port: 5432,
        timeout: 15,
        ..Default::default()
    };
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && (chars[i] == ';' || chars[i].is_whitespace()) {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && chars[i] != ';' {
            i += 1;
        }
        if i >= chars.len() || chars[i] != '=' {
            return Err(format!(
                "System.ArgumentException: Format of the initialization string does not conform to specification starting at index {start}."
            ));
        }
        let key: String = chars[start..i]
            .iter()
            .collect::<String>()
            .trim()
            .to_string();
        i += 1;
        while i < chars.len() && chars[i] == ' ' {
            i += 1;
        }
        let value: String = if i < chars.len() && (chars[i] == '\'' || chars[i] == '"') {
            let q = chars[i];
            i += 1;
            let mut v = String::new();
            while i < chars.len() {
                if chars[i] == q {
                    if chars.get(i + 1) == Some(&q) {
                        v.push(q);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                v.push(chars[i]);
                i += 1;
            }
            while i < chars.len() && chars[i] != ';' {
                i += 1;
            }
            v
        } else {
            let vs = i;
            while i < chars.len() && chars[i] != ';' {
                i += 1;
            }
            chars[vs..i].iter().collect::<String>().trim().to_string()
        };
        let kw = key.to_uppercase();
        match kw.as_str() {
            "HOST" | "SERVER" => cs.host = Some(value),
            "PORT" => {
                cs.port = value.parse().map_err(|_| {
                    couldnt_set(
                        &key,
                        &format!("System.FormatException: The input string '{value}' was not in a correct format."),
                    )
                })?
            }
            "DATABASE" | "DB" => cs.database = Some(value),
            "USERNAME" | "USER NAME" | "USERID" | "USER ID" | "UID" => cs.username = Some(value),
            "PASSWORD" | "PSW" | "PWD" => cs.password = Some(value),
            "PASSFILE" => cs.passfile = Some(value),
            "APPLICATION NAME" | "APPLICATIONNAME" => cs.application_name = Some(value),
            "TIMEOUT" => {
                cs.timeout = value.parse().map_err(|_| {
                    couldnt_set(
                        &key,
                        &format!("System.FormatException: The input string '{value}' was not in a correct format."),
                    )
                })?
            }
            "SSL MODE" | "SSLMODE" => cs.ssl_mode = Some(value),
            k if KNOWN.contains(&k) => {}
            _ => return Err(couldnt_set(
                &key,
                "System.Collections.Generic.KeyNotFoundException: The given key was not present in the dictionary.",
            )),
        }
    }
    Ok(cs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings() {
        let cs = parse("Host=archy-btcpay-postgres;Port=5432;Username=nbxplorer;Database=nbxplorer;Passfile=/etc/nbxplorer/pgpass").unwrap();
        assert_eq!(cs.host.as_deref(), Some("archy-btcpay-postgres"));
        assert_eq!(cs.username.as_deref(), Some("nbxplorer"));
        assert_eq!(cs.passfile.as_deref(), Some("/etc/nbxplorer/pgpass"));
        let cs = parse(
            "User ID=postgres;Server=pg;Application Name=nbxplorer;MaxPoolSize=20;Password='a;b'",
        )
        .unwrap();
        assert_eq!(cs.username.as_deref(), Some("postgres"));
        assert_eq!(cs.password.as_deref(), Some("a;b"));
        assert!(parse("Host=x;Frobnicate=1")
            .unwrap_err()
            .contains("Couldn't set Frobnicate"));
        assert!(parse("Host=x;Port=abc").is_err());
    }
}
