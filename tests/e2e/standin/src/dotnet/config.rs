//! StandardConfiguration (NicolasDorier.StandardConfiguration 2.0.1, NicolasDorier/NicolasDorier.Tools
//! `StandardConfiguration/DefaultConfiguration.cs`) over Microsoft.Extensions.Configuration: the
//! `<PREFIX>_*` variables, the ini file, the `--key=value` arguments, the listen addresses.

use super::{dlog, home, network_of, Exit, Net, CAT_CONF, MAIN};
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};

/// Settings from one source, in order: (key, value).
type Layer = Vec<(String, String)>;

/// Microsoft.Extensions.Configuration as StandardConfiguration layers it: keys are
/// case-insensitive, later layers win.
#[derive(Default, Clone)]
pub struct DotnetConf {
    layers: Vec<Vec<(String, String)>>,
    /// `--bind` values from the command line (they add to the `bind` key)
    cli_binds: Vec<String>,
}

impl DotnetConf {
    fn raw(&self, k: &str) -> Option<String> {
        for layer in self.layers.iter().rev() {
            if let Some((_, v)) = layer.iter().rev().find(|(lk, _)| lk == k) {
                return Some(v.clone());
            }
        }
        None
    }

    /// `configuration[key] ?? configuration[key without dots]` (ConfigurationExtensions.cs).
    pub fn get(&self, key: &str) -> Option<String> {
        let k = key.to_ascii_lowercase();
        self.raw(&k).or_else(|| self.raw(&k.replace('.', "")))
    }

    pub fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or_else(|| default.to_string())
    }

    /// GetOrDefault<bool>: 1/true/0/false, anything else a FormatException (not caught: a crash).
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, Exit> {
        match self.get(key) {
            None => Ok(default),
            Some(v) if v == "1" || v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v == "0" || v.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(Exit::Crash(
                "System.FormatException: One of the identified items was in an invalid format."
                    .into(),
            )),
        }
    }

    pub fn int(&self, key: &str, default: i64) -> Result<i64, Exit> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                Exit::Crash(format!(
                    "System.FormatException: The input string '{v}' was not in a correct format."
                ))
            }),
        }
    }

    fn env_layer(prefix: &str) -> Vec<(String, String)> {
        std::env::vars()
            .filter_map(|(k, v)| {
                let head = k.get(..prefix.len())?;
                (k.len() > prefix.len() && head.eq_ignore_ascii_case(prefix))
                    .then(|| (k[prefix.len()..].replace("__", ":").to_ascii_lowercase(), v))
            })
            .collect()
    }

    /// Microsoft.Extensions.Configuration.Ini: `key=value`, `[section]`, `;`/`#`/`/` comments.
    fn ini_layer(path: &Path) -> Result<Vec<(String, String)>, Exit> {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(String, String)> = Vec::new();
        let mut section = String::new();
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty()
                || line.starts_with(';')
                || line.starts_with('#')
                || line.starts_with('/')
            {
                continue;
            }
            if line.starts_with('[') && line.ends_with(']') {
                section = format!("{}:", line[1..line.len() - 1].trim());
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(Exit::Crash(format!(
                    "System.FormatException: Unrecognized line format: '{line}'."
                )));
            };
            let key = format!("{section}{}", k.trim()).to_ascii_lowercase();
            let mut v = v.trim();
            if v.len() > 1 && v.starts_with('"') && v.ends_with('"') {
                v = &v[1..v.len() - 1];
            }
            if out.iter().any(|(k2, _)| *k2 == key) {
                return Err(Exit::Crash(format!(
                    "System.FormatException: A duplicate key '{key}' was found."
                )));
            }
            out.push((key, v.to_string()));
        }
        Ok(out)
    }

    fn cli_layer(args: &[String]) -> Result<(Layer, Vec<String>), Exit> {
        let mut out = Vec::new();
        let mut binds = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if matches!(a.as_str(), "-?" | "-h" | "--help") {
                println!("Usage: dotnet <App>.dll [options] (the archy e2e stand-in: options are --key=value)");
                return Err(Exit::Config(String::new()));
            }
            let Some(body) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
                return Err(Exit::Config(format!(
                    "Unrecognized command or argument '{a}'"
                )));
            };
            let (k, v) = match body.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => match args.get(i + 1) {
                    Some(next) if !next.starts_with('-') => {
                        i += 1;
                        (body.to_string(), next.clone())
                    }
                    _ => (body.to_string(), "true".to_string()),
                },
            };
            let k = match k.as_str() {
                "c" => "conf",
                "p" => "port",
                "b" => "bind",
                "d" => "datadir",
                "n" => "network",
                "v" => "verbose",
                other => other,
            }
            .to_ascii_lowercase();
            if k == "bind" {
                binds.extend(v.split(';').map(str::to_string));
            }
            out.push((k, v));
            i += 1;
        }
        Ok((out, binds))
    }

    /// The variables and arguments alone: what picks the network before the file is read.
    pub fn early(prefix: &str, args: &[String]) -> DotnetConf {
        DotnetConf {
            layers: vec![
                Self::env_layer(prefix),
                Self::cli_layer(args).map(|c| c.0).unwrap_or_default(),
            ],
            cli_binds: vec![],
        }
    }

    /// StandardConfiguration's CreateConfigurationBuilder: `datadir_of` and `conf_file_of` are
    /// the program's GetDefaultDataDir and GetDefaultConfigurationFile.
    pub fn load(
        prefix: &str,
        args: &[String],
        datadir_of: &dyn Fn(&DotnetConf) -> Result<PathBuf, Exit>,
        conf_file_of: &dyn Fn(&DotnetConf) -> Result<PathBuf, Exit>,
        template: &str,
    ) -> Result<DotnetConf, Exit> {
        let env = Self::env_layer(prefix);
        let (cli, cli_binds) = Self::cli_layer(args)?;
        let mut conf = DotnetConf {
            layers: vec![env.clone(), cli.clone()],
            cli_binds: cli_binds.clone(),
        };
        if let Some(c) = conf.raw("conf") {
            if Path::new(&c).exists() {
                conf.layers = vec![env.clone(), Self::ini_layer(Path::new(&c))?, cli.clone()];
            }
        }
        let datadir = match conf.raw("datadir") {
            Some(d) => PathBuf::from(d),
            None => datadir_of(&conf)?,
        };
        if let Err(e) = std::fs::create_dir_all(&datadir) {
            return Err(Exit::Crash(format!(
                "System.UnauthorizedAccessException: Access to the path '{}' is denied. ({e})",
                datadir.display()
            )));
        }
        dlog(
            "info",
            CAT_CONF,
            &format!("Data Directory: {}", absolute(&datadir).display()),
        );
        let conf_file = match conf.raw("conf") {
            Some(c) => PathBuf::from(c),
            None => conf_file_of(&conf)?,
        };
        dlog(
            "info",
            CAT_CONF,
            &format!("Configuration File: {}", absolute(&conf_file).display()),
        );
        if !conf_file.exists() {
            dlog("info", CAT_CONF, "Creating configuration file");
            if let Err(e) = std::fs::write(&conf_file, template) {
                return Err(Exit::Crash(format!(
                    "System.IO.IOException: {}: {e}",
                    conf_file.display()
                )));
            }
        }
        let ini = Self::ini_layer(&conf_file)?;
        Ok(DotnetConf {
            layers: vec![env, ini, cli],
            cli_binds,
        })
    }

    /// The listen addresses StandardConfiguration puts in `urls`: `--bind`s and `bind`, each
    /// `host[:port]` (the port defaults to `port`, then the program's); a host that is neither an
    /// IP nor resolvable is "Invalid IP Endpoint" (a crash).
    pub fn binds(&self, default_ip: &str, default_port: u16) -> Result<Vec<String>, Exit> {
        let mut binds = self.cli_binds.clone();
        if let Some(b) = self.get("bind").filter(|b| !b.is_empty()) {
            binds.push(b);
        }
        if self.get("port").is_none() && binds.is_empty() {
            // no `urls` from StandardConfiguration: Kestrel takes ASPNETCORE_URLS
            if let Ok(urls) = std::env::var("ASPNETCORE_URLS").map(|u| u.trim().to_string()) {
                if !urls.is_empty() {
                    return Ok(urls
                        .split(';')
                        .filter_map(|u| {
                            u.trim()
                                .strip_prefix("http://")
                                .map(|h| h.trim_end_matches('/').replace(['*', '+'], "0.0.0.0"))
                        })
                        .collect());
                }
            }
        }
        let port = self
            .get("port")
            .and_then(|p| p.trim().parse::<u16>().ok())
            .unwrap_or(default_port);
        if binds.is_empty() {
            binds.push(format!("{default_ip}:{port}"));
        }
        binds.iter().map(|b| convert_to_endpoint(b, port)).collect()
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// StandardConfiguration's ConvertToEndpoint.
fn convert_to_endpoint(spec: &str, default_port: u16) -> Result<String, Exit> {
    let mut host = spec.to_string();
    let mut port = default_port;
    if let Some(colon) = spec.rfind(':') {
        let bracketed = spec.starts_with('[') && colon > 0 && spec.as_bytes()[colon - 1] == b']';
        let multi = spec[..colon].contains(':');
        if colon == 0 || bracketed || !multi {
            if let Ok(n) = spec[colon + 1..].parse::<u32>() {
                if n > 0 && n < 0x10000 {
                    host = spec[..colon].to_string();
                    port = n as u16;
                }
            }
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        host = host[1..host.len() - 1].to_string();
    }
    let ip = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip,
        Err(_) => match (host.as_str(), 0u16)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
        {
            Some(a) => a.ip(),
            None => {
                return Err(Exit::Crash(
                    "System.FormatException: Invalid IP Endpoint".into(),
                ))
            }
        },
    };
    Ok(match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        v4 => format!("{v4}:{port}"),
    })
}

/// The configuration of a program that keeps it in `$HOME/<app_dir>/<network folder>` (both
/// apps' GetDefaultDataDir and GetDefaultConfigurationFile), its file written from `template`
/// when missing.
pub fn load_conf(
    prefix: &str,
    app_dir: &str,
    argv: &[String],
    template: fn(&Net) -> String,
) -> Result<DotnetConf, Exit> {
    let datadir_of = |c: &DotnetConf| -> Result<PathBuf, Exit> {
        Ok(home().join(app_dir).join(network_of(c)?.folder))
    };
    let conf_file = |c: &DotnetConf| -> Result<PathBuf, Exit> {
        let net = network_of(c)?;
        let dir = match c.get("datadir") {
            Some(d) => PathBuf::from(d).join(net.folder),
            None => home().join(app_dir).join(net.folder),
        };
        let _ = std::fs::create_dir_all(&dir);
        Ok(dir.join("settings.config"))
    };
    // the template needs the network: read it from the variables and arguments alone
    let pre = network_of(&DotnetConf::early(prefix, argv)).unwrap_or(MAIN);
    DotnetConf::load(prefix, argv, &datadir_of, &conf_file, &template(&pre))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            convert_to_endpoint("0.0.0.0:32838", 24444).ok(),
            Some("0.0.0.0:32838".to_string())
        );
        assert_eq!(
            convert_to_endpoint("127.0.0.1", 24444).ok(),
            Some("127.0.0.1:24444".to_string())
        );
        assert_eq!(
            convert_to_endpoint("[::]:1234", 1).ok(),
            Some("[::]:1234".to_string())
        );
        assert!(convert_to_endpoint("no-such-host.invalid", 1).is_err());
    }
}
