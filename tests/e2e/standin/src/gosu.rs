//! gosu, as the bitcoin image's entrypoint uses it: `gosu USER[:GROUP] COMMAND [ARGS...]` drops
//! from root to USER and execs COMMAND. Like gosu it always calls setgroups(2), so it fails
//! unless it runs as root with CAP_SETGID/CAP_SETUID ("error: failed switching to ...").

use std::os::unix::process::CommandExt;
use std::process::Command;

fn lookup(file: &str, name: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
        .find(|f| {
            f.first().map(String::as_str) == Some(name)
                || f.get(2).map(String::as_str) == Some(name)
        })
}

pub fn gosu(argv: &[String]) -> i32 {
    if argv.len() < 2 {
        eprintln!("Usage: gosu user-spec command [args]");
        return 1;
    }
    let spec = &argv[0];
    let (user, group) = spec
        .split_once(':')
        .map_or((spec.as_str(), None), |(u, g)| (u, Some(g)));
    let pw = lookup("/etc/passwd", user);
    let uid = match (user.parse::<u32>(), &pw) {
        (Ok(n), _) => n,
        (_, Some(f)) => f.get(2).and_then(|v| v.parse().ok()).unwrap_or(0),
        _ => {
            eprintln!("error: failed switching to {spec:?}: unable to find user {user}: no matching entries in passwd file");
            return 1;
        }
    };
    let mut gid = pw
        .as_ref()
        .and_then(|f| f.get(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(uid);
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                match lookup("/etc/group", g).and_then(|f| f.get(2).and_then(|v| v.parse().ok())) {
                    Some(n) => n,
                    None => {
                        eprintln!("error: failed switching to {spec:?}: unable to find group {g}");
                        return 1;
                    }
                }
            }
        };
    }
    let fail = |e: std::io::Error| {
        let msg = if e.raw_os_error() == Some(1) {
            "operation not permitted".to_string()
        } else {
            e.to_string()
        };
        eprintln!("error: failed switching to {spec:?}: {msg}");
        1
    };
    if let Err(e) = crate::sys::set_groups(&[gid]) {
        return fail(e);
    }
    let mut cmd = Command::new(&argv[1]);
    cmd.args(&argv[2..]).uid(uid).gid(gid);
    if std::env::var_os("HOME").is_none_or(|h| h.is_empty()) {
        cmd.env(
            "HOME",
            pw.as_ref()
                .and_then(|f| f.get(5))
                .cloned()
                .unwrap_or_else(|| "/".into()),
        );
    }
    fail(cmd.exec())
}
