//! HTTP (http/http.go `NewHandler`, http/data.go `handle`, http/auth.go, http/resource.go,
//! files/file.go, files/listing.go): login, renew, resources, health and the index page.

use super::db::User;
use super::token::{check_token, make_token};
use super::{go_errno, DUMMY_HASH};
use crate::http::{self, Request, Response};
use crate::json::{self, num, obj, s, Value};
use crate::util::{percent_decode, utc};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(super) struct App {
    pub(super) key: Vec<u8>,
    pub(super) auth_method: String,
    pub(super) users: Vec<User>,
    pub(super) root: PathBuf,
    pub(super) base_url: String,
    pub(super) ttl: Duration,
    pub(super) file_mode: u32,
    pub(super) dir_mode: u32,
}

/// net/http's StatusText, of the statuses the handlers answer.
fn status_text(status: u16) -> &'static str {
    match status {
        409 => "Conflict",
        s => http::reason_phrase(s).unwrap_or("Internal Server Error"),
    }
}

/// net/http's http.Error
fn go_error(status: u16) -> Response {
    let mut r = Response::new(
        status,
        "text/plain; charset=utf-8",
        format!("{status} {}\n", status_text(status)),
    );
    r.headers
        .push(("X-Content-Type-Options".into(), "nosniff".into()));
    r
}

/// path.Clean of an absolute request path: "." and ".." resolved, never above "/"
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

fn client_ip(req: &Request) -> String {
    if let Some(ip) = req.header("X-Real-Ip").filter(|v| !v.is_empty()) {
        return ip.to_string();
    }
    if let Some(f) = req
        .header("X-Forwarded-For")
        .and_then(|v| v.split(',').next())
    {
        if !f.trim().is_empty() {
            return f.trim().to_string();
        }
    }
    // Go reports an IPv4 peer of a dual-stack socket as IPv4
    req.peer.ip().to_canonical().to_string()
}

/// http/data.go `handle`: a status >= 400 is logged and answered with http.Error
fn finish(req: &Request, path: &str, result: Result<Response, (u16, String)>) -> Response {
    match result {
        Ok(r) => r,
        Err((status, err)) => {
            fblog!("{path}: {status} {} {err}", client_ip(req));
            go_error(status)
        }
    }
}

impl App {
    pub(super) fn handle(&self, req: Request) -> Response {
        let raw = req.path.clone();
        let (raw_path, query) = raw.split_once('?').unwrap_or((&raw, ""));
        let mut path = percent_decode(raw_path);
        if !self.base_url.is_empty() {
            if path == self.base_url {
                let mut r = Response::new(301, "text/html; charset=utf-8", "");
                r.headers
                    .push(("Location".into(), format!("{}/", self.base_url)));
                return r;
            }
            if let Some(rest) = path.strip_prefix(&self.base_url) {
                path = rest.to_string();
            }
        }
        let mut resp = self.route(&req, &path, query);
        resp.headers.push((
            "Content-Security-Policy".into(),
            "default-src 'self'; style-src 'unsafe-inline';".into(),
        ));
        if req.method == "HEAD" {
            resp.body.clear();
        }
        resp
    }

    fn route(&self, req: &Request, path: &str, query: &str) -> Response {
        if path == "/health" {
            return Response::new(200, "text/plain; charset=utf-8", r#"{"status":"OK"}"#);
        }
        let mut r = if path == "/api/login" {
            finish(req, path, self.login(req))
        } else if path == "/api/renew" {
            let r = self.user(req).map(|u| {
                let mut r = Response::new(200, "text/plain", make_token(&self.key, &u, self.ttl));
                r.headers.push(("X-Renew-Token".into(), "false".into()));
                r
            });
            finish(req, path, r)
        } else if let Some(sub) = path.strip_prefix("/api/resources") {
            if sub.is_empty() {
                let mut r = Response::new(301, "text/html; charset=utf-8", "");
                r.headers
                    .push(("Location".into(), "/api/resources/".into()));
                return r;
            }
            finish(req, sub, self.resources(req, sub, query))
        } else if req.method == "GET" || req.method == "HEAD" {
            let mut r = Response::new(200, "text/html; charset=utf-8", INDEX_HTML);
            r.headers
                .push(("X-Content-Type-Options".into(), "nosniff".into()));
            r
        } else {
            go_error(404)
        };
        r.headers.push((
            "Cache-Control".into(),
            "no-cache, no-store, must-revalidate".into(),
        ));
        r
    }

    fn login(&self, req: &Request) -> Result<Response, (u16, String)> {
        let user = if self.auth_method == "noauth" {
            self.users.iter().find(|u| u.id == 1).cloned()
        } else {
            let cred = std::str::from_utf8(&req.body)
                .ok()
                .and_then(|t| json::parse(t.trim()).ok());
            let Some(cred @ Value::Obj(_)) = cred else {
                return Err((403, "<nil>".into()));
            };
            let field = |k: &str| {
                cred.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let (name, pwd) = (field("username"), field("password"));
            let found = self.users.iter().find(|u| u.username == name).cloned();
            let hash = found
                .as_ref()
                .map_or(DUMMY_HASH.to_string(), |u| u.password.clone());
            if !bcrypt::verify(&pwd, &hash).unwrap_or(false) {
                return Err((403, "<nil>".into()));
            }
            found
        };
        let user = user.ok_or((403, "<nil>".to_string()))?;
        Ok(Response::new(
            200,
            "text/plain",
            make_token(&self.key, &user, self.ttl),
        ))
    }

    /// withUser: the X-Auth header, or for GET the `auth` cookie; a JWT has two dots
    fn user(&self, req: &Request) -> Result<User, (u16, String)> {
        let two_dots = |t: &&str| t.matches('.').count() == 2;
        let header = req.header("X-Auth").filter(two_dots);
        let cookie = (req.method == "GET")
            .then(|| req.header("Cookie"))
            .flatten()
            .and_then(|c| {
                c.split(';')
                    .map(str::trim)
                    .find_map(|kv| kv.strip_prefix("auth="))
            })
            .filter(two_dots);
        let id = header
            .or(cookie)
            .and_then(|t| check_token(&self.key, t))
            .ok_or((401, "<nil>".to_string()))?;
        self.users
            .iter()
            .find(|u| u.id == id)
            .cloned()
            .ok_or((500, "the resource does not exist".into()))
    }

    fn resources(&self, req: &Request, sub: &str, query: &str) -> Result<Response, (u16, String)> {
        let user = self.user(req)?;
        let vpath = clean(sub);
        let scope = self.root.join(user.scope.trim_start_matches('/'));
        let real = scope.join(vpath.trim_start_matches('/'));
        let io_err = |op: &str, e: std::io::Error| {
            let status = match e.kind() {
                std::io::ErrorKind::NotFound => 404,
                std::io::ErrorKind::PermissionDenied => 403,
                std::io::ErrorKind::AlreadyExists => 409,
                _ => 500,
            };
            (status, format!("{op} {vpath}: {}", go_errno(&e)))
        };
        match req.method.as_str() {
            "GET" => {
                let meta = std::fs::symlink_metadata(&real).map_err(|e| io_err("lstat", e))?;
                let mut info = file_info(&real, &vpath, &meta, true);
                if meta.is_dir() {
                    let mut names: Vec<String> = std::fs::read_dir(&real)
                        .map_err(|e| io_err("open", e))?
                        .filter_map(|e| {
                            e.ok().map(|e| e.file_name().to_string_lossy().into_owned())
                        })
                        .collect();
                    names.sort();
                    let (mut dirs, mut files) = (0, 0);
                    let mut items = Vec::new();
                    for n in names {
                        let p = real.join(&n);
                        let Ok(m) =
                            std::fs::metadata(&p).or_else(|_| std::fs::symlink_metadata(&p))
                        else {
                            continue;
                        };
                        if m.is_dir() {
                            dirs += 1;
                        } else {
                            files += 1;
                        }
                        items.push(file_info(
                            &p,
                            &format!("{}/{n}", vpath.trim_end_matches('/')),
                            &m,
                            false,
                        ));
                    }
                    // the embedded Listing's fields come first
                    let mut fields = vec![
                        ("items".to_string(), Value::Arr(items)),
                        ("numDirs".to_string(), num(dirs)),
                        ("numFiles".to_string(), num(files)),
                        (
                            "sorting".to_string(),
                            obj(vec![("by", s("")), ("asc", Value::Bool(false))]),
                        ),
                    ];
                    if let Value::Obj(rest) = info {
                        fields.extend(rest);
                    }
                    info = Value::Obj(fields);
                }
                Ok(Response::new(
                    200,
                    "application/json; charset=utf-8",
                    info.compact(),
                ))
            }
            "POST" => {
                if !user.perm[2] {
                    return Err((403, "<nil>".into()));
                }
                let mut dirb = std::fs::DirBuilder::new();
                dirb.recursive(true).mode(self.dir_mode);
                if sub.ends_with('/') {
                    dirb.create(&real).map_err(|e| io_err("mkdir", e))?;
                    return Ok(go_error(200));
                }
                if real.exists() {
                    if !query.split('&').any(|kv| kv == "override=true") {
                        return Err((409, "<nil>".into()));
                    }
                    if !user.perm[4] {
                        return Err((403, "<nil>".into()));
                    }
                }
                if let Some(dir) = real.parent() {
                    dirb.create(dir).map_err(|e| io_err("mkdir", e))?;
                }
                let mut f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(self.file_mode)
                    .open(&real)
                    .map_err(|e| io_err("open", e))?;
                f.write_all(&req.body)
                    .and_then(|_| f.sync_all())
                    .map_err(|e| io_err("write", e))?;
                let m = f.metadata().map_err(|e| io_err("stat", e))?;
                let mut r = go_error(200);
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .unwrap_or_default();
                r.headers.push((
                    "ETag".into(),
                    format!("\"{:x}{:x}\"", mtime.as_nanos(), m.len()),
                ));
                Ok(r)
            }
            _ => Err((405, "<nil>".into())),
        }
    }
}

/// files.FileInfo as JSON; `content` for a text file asked for by itself
fn file_info(real: &Path, vpath: &str, m: &std::fs::Metadata, with_content: bool) -> Value {
    let name = if vpath == "/" {
        String::new()
    } else {
        vpath.rsplit('/').next().unwrap_or_default().to_string()
    };
    let ext = match name.rfind('.') {
        Some(i) => name[i..].to_string(),
        None => String::new(),
    };
    // os.FileMode: permission bits plus ModeDir (1<<31) / ModeSymlink (1<<27)
    let mut mode = u64::from(m.mode() & 0o777);
    if m.is_dir() {
        mode |= 1 << 31;
    }
    if m.file_type().is_symlink() {
        mode |= 1 << 27;
    }
    let mut fields = vec![
        ("path", s(vpath)),
        ("name", s(&name)),
        ("size", num(m.len())),
        ("extension", s(&ext)),
        (
            "modified",
            s(&m.modified().map(rfc3339_nano).unwrap_or_default()),
        ),
        ("mode", num(mode)),
        ("isDir", Value::Bool(m.is_dir())),
        ("isSymlink", Value::Bool(m.file_type().is_symlink())),
    ];
    if m.is_dir() {
        fields.push(("type", s("")));
        return obj(fields);
    }
    let ty = match ext.to_lowercase().as_str() {
        ".png" | ".jpg" | ".jpeg" | ".gif" | ".webp" | ".svg" | ".bmp" => "image",
        ".mp4" | ".mkv" | ".webm" | ".avi" | ".mov" => "video",
        ".mp3" | ".flac" | ".ogg" | ".wav" | ".m4a" => "audio",
        ".pdf" => "pdf",
        _ => {
            let mut head = vec![0u8; 512];
            let n = File::open(real)
                .and_then(|mut f| f.read(&mut head))
                .unwrap_or(0);
            let binary = head[..n].contains(&0) || std::str::from_utf8(&head[..n]).is_err();
            if !binary && m.len() <= 10 << 20 {
                "text"
            } else {
                "blob"
            }
        }
    };
    fields.push(("type", s(ty)));
    if with_content && ty == "text" {
        if let Ok(c) = std::fs::read_to_string(real) {
            fields.push(("content", s(&c)));
        }
    }
    obj(fields)
}

const INDEX_HTML: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>File Browser</title></head>\
<body><div id=\"app\">File Browser (archy e2e stand-in)</div></body></html>\n";

fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (y, mo, da, h, mi, se) = utc(d.as_secs() as i64);
    let mut out = format!("{y:04}-{mo:02}-{da:02}T{h:02}:{mi:02}:{se:02}");
    if d.subsec_nanos() != 0 {
        // Go's RFC3339Nano drops trailing zeros
        out.push_str(format!(".{:09}", d.subsec_nanos()).trim_end_matches('0'));
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_dates() {
        assert_eq!(clean("/a/../../etc/./passwd"), "/etc/passwd");
        assert_eq!(
            rfc3339_nano(UNIX_EPOCH + Duration::from_millis(1500)),
            "1970-01-01T00:00:01.5Z"
        );
        assert_eq!(
            rfc3339_nano(UNIX_EPOCH + Duration::from_secs(1_709_210_096)),
            "2024-02-29T12:34:56Z"
        );
    }
}
