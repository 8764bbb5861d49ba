//! Secrets an app declares, created once with correct modes and never printed. They live in
//! `$XDG_STATE_HOME/archipelago/secrets/<name>/` (0700), one 0600 file per field, so containers get
//! them as read-only mounted files and templates as variables; never through a unit file, an
//! environment variable or a command line.

use crate::atomic;
use crate::manifest::SecretKind;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A secret's fields, as files and as template variables.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    pub fields: BTreeMap<&'static str, String>,
}

// never show values, even in debug output
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `n` random bytes from the kernel.
pub fn random_bytes(n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

/// bitcoind's `rpcauth=` value: `user:salt$hex(HMAC-SHA256(key = salt, message = password))`.
pub fn rpcauth(user: &str, salt_hex: &str, password: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(salt_hex.as_bytes()).expect("any key length");
    mac.update(password.as_bytes());
    format!(
        "{user}:{salt_hex}${}",
        crate::text::hex(&mac.finalize().into_bytes())
    )
}

/// A new secret `name` of `kind`: 256 bits of entropy for a password. An `rpcauth` secret's RPC
/// user is its name, so that bitcoind tells its users apart (each may have its own
/// `rpcwhitelist`).
pub fn generate(name: &str, kind: SecretKind) -> io::Result<Secret> {
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(32)?);
    let mut fields = BTreeMap::new();
    if kind == SecretKind::Rpcauth {
        let salt = crate::text::hex(&random_bytes(16)?);
        fields.insert("user", name.to_string());
        fields.insert("rpcauth", rpcauth(name, &salt, &password));
        fields.insert("cookie", format!("{name}:{password}"));
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
        fields.insert("basic", basic);
    }
    fields.insert("bcrypt", bcrypt_of(&password)?);
    fields.insert("password", password);
    Ok(Secret { fields })
}

/// The password as a bcrypt hash (cost 10), for apps that store their users' passwords so and
/// take the hash as configuration (File Browser).
fn bcrypt_of(password: &str) -> io::Result<String> {
    let salt: [u8; 16] = random_bytes(16)?.try_into().expect("16 bytes");
    bcrypt::hash_with_salt(password, 10, salt)
        .map(|h| h.format_for_version(bcrypt::Version::TwoB))
        .map_err(io::Error::other)
}

/// `<state>/secrets/<name>`.
pub fn dir(state: &Path, name: &str) -> PathBuf {
    crate::names::secret_dir(state, name)
}

/// Reads a secret's fields; None when it was never created.
pub fn read(state: &Path, name: &str) -> io::Result<Option<Secret>> {
    let d = dir(state, name);
    if !d.join("password").exists() {
        return Ok(None);
    }
    let mut fields = BTreeMap::new();
    for key in ["user", "password", "rpcauth", "cookie", "basic", "bcrypt"] {
        match fs::read_to_string(d.join(key)) {
            Ok(v) => {
                fields.insert(key, v.trim_end_matches('\n').to_string());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(Secret { fields }))
}

/// Writes every field atomically, 0600, in a 0700 directory.
pub fn write(state: &Path, name: &str, secret: &Secret) -> io::Result<()> {
    let d = dir(state, name);
    create_private_dir(&d)?;
    // the password last: its presence is what marks the secret as complete
    for (key, value) in secret.fields.iter().filter(|(k, _)| **k != "password") {
        atomic::write(&d.join(key), value.as_bytes(), 0o600)?;
    }
    if let Some(p) = secret.fields.get("password") {
        atomic::write(&d.join("password"), p.as_bytes(), 0o600)?;
    }
    Ok(())
}

/// Creates the secret if it does not exist. Returns whether it was created. A new secret counts
/// as applied: nothing runs with an older one.
pub fn ensure(state: &Path, name: &str, kind: SecretKind) -> io::Result<bool> {
    if let Some(mut s) = read(state, name)? {
        // a secret from before a field existed gets it, derived from the same password
        if !s.fields.contains_key("bcrypt") {
            let hash = bcrypt_of(&s.fields["password"])?;
            atomic::write(&dir(state, name).join("bcrypt"), hash.as_bytes(), 0o600)?;
            s.fields.insert("bcrypt", hash);
        }
        return Ok(false);
    }
    let secret = generate(name, kind)?;
    write(state, name, &secret)?;
    mark_applied(state, name, &secret)?;
    Ok(true)
}

/// Whether archy may replace secret `name`, given how each app using it declares it: not when
/// one of them keeps it on its own once given (`rotate = false`: a database created with it),
/// since the apps would then get a password the other side does not take.
pub fn may_rotate<'a>(
    name: &str,
    decls: impl Iterator<Item = (&'a str, crate::manifest::SecretDecl)>,
) -> Result<(), String> {
    let keepers: Vec<&str> = decls.filter(|(_, d)| !d.rotate).map(|(id, _)| id).collect();
    if keepers.is_empty() {
        return Ok(());
    }
    Err(format!(
        "secret `{name}` cannot be rotated by archy: {} keep{} the value {} was set up with \
         (rotate = false in [secrets]); change it there first, then in the secret's files",
        keepers.join(", "),
        if keepers.len() == 1 { "s" } else { "" },
        if keepers.len() == 1 { "it" } else { "they" },
    ))
}

/// Replaces the secret with a new one of `kind`. The apps using it pick it up when the change is
/// applied (`archy-secret@<name>.path` does that).
pub fn rotate(state: &Path, name: &str, kind: SecretKind) -> io::Result<()> {
    write(state, name, &generate(name, kind)?)
}

/// A digest of the secret's password, safe to store beside it: which version was last applied.
fn fingerprint(secret: &Secret) -> String {
    use sha2::Digest;
    let password = secret.fields.get("password").map_or("", String::as_str);
    crate::text::hex(&Sha256::digest(password.as_bytes()))
}

const APPLIED: &str = ".applied";

/// Records that the apps using the secret now run with this version of it.
pub fn mark_applied(state: &Path, name: &str, secret: &Secret) -> io::Result<()> {
    atomic::write(
        &dir(state, name).join(APPLIED),
        fingerprint(secret).as_bytes(),
        0o600,
    )
}

/// Whether this version of the secret was already applied.
pub fn is_applied(state: &Path, name: &str, secret: &Secret) -> bool {
    fs::read_to_string(dir(state, name).join(APPLIED)).is_ok_and(|f| f == fingerprint(secret))
}

/// Creates `path` and its parents with mode 0700 (parents that exist are left as they are). The
/// mode is set on the directory opened, never through a link at `path` (refused, as is a FIFO or
/// How many times `archy-hook secret-changed` applies a secret that keeps changing meanwhile
/// before it gives up (visibly: its unit fails, and the next rotation runs it again).
pub const APPLY_ROUNDS: usize = 10;

/// What `archy-hook secret-changed` does next about a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeStep {
    /// Nothing (left) to apply.
    Done,
    /// Re-render the users' configs, queue their restarts, mark the value applied.
    Apply,
    /// It kept changing for `APPLY_ROUNDS` rounds.
    GiveUp,
}

/// `current`: None when the secret does not exist, else whether its value is the applied one;
/// `rounds`: how many times it was applied in this run.
pub fn change_step(current: Option<bool>, rounds: usize) -> ChangeStep {
    match current {
        None | Some(true) => ChangeStep::Done,
        Some(false) if rounds >= APPLY_ROUNDS => ChangeStep::GiveUp,
        Some(false) => ChangeStep::Apply,
    }
}

/// anything else there).
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    crate::nofollow::open_dir(path, path)?.set_permissions(fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_steps() {
        use ChangeStep::*;
        let table = [
            (None, 0, Done),
            (None, APPLY_ROUNDS, Done),
            (Some(true), 0, Done),
            (Some(true), APPLY_ROUNDS, Done),
            (Some(false), 0, Apply),
            (Some(false), APPLY_ROUNDS - 1, Apply),
            (Some(false), APPLY_ROUNDS, GiveUp),
        ];
        for (current, rounds, want) in table {
            assert_eq!(
                change_step(current, rounds),
                want,
                "{current:?} after {rounds}"
            );
        }
    }

    #[test]
    fn rpcauth_matches_bitcoind_share_rpcauth_py() {
        // computed independently with Python's hmac module:
        // hmac.new(b"salt", b"password", "sha256").hexdigest()
        assert_eq!(
            rpcauth("u", "salt", "password"),
            "u:salt$84ec44c7d6fc41917953a1dafca3c7d7856f7a9d0328b991b76f0d36be1224b9"
        );
    }

    #[test]
    fn ensure_creates_once_with_private_modes() {
        let state = tempfile::tempdir().unwrap();
        assert!(ensure(state.path(), "rpc", SecretKind::Rpcauth).unwrap());
        let first = read(state.path(), "rpc").unwrap().unwrap();
        assert!(!ensure(state.path(), "rpc", SecretKind::Rpcauth).unwrap());
        assert_eq!(read(state.path(), "rpc").unwrap().unwrap(), first);
        let pw = &first.fields["password"];
        assert!(pw.len() >= 43, "256 bits in base64");
        assert!(first.fields["rpcauth"].starts_with("rpc:"));
        assert_eq!(first.fields["user"], "rpc");
        assert_eq!(first.fields["cookie"], format!("rpc:{pw}"));
        let d = dir(state.path(), "rpc");
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        for f in fs::read_dir(&d).unwrap() {
            let m = f.unwrap().metadata().unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600);
        }
        assert!(!format!("{first:?}").contains(pw.as_str()));
        assert!(bcrypt::verify(pw, &first.fields["bcrypt"]).unwrap());
        assert!(first.fields["bcrypt"].starts_with("$2b$10$"));
    }

    #[test]
    fn an_older_secret_gets_its_bcrypt_hash() {
        let state = tempfile::tempdir().unwrap();
        ensure(state.path(), "old", SecretKind::Password).unwrap();
        let d = dir(state.path(), "old");
        fs::remove_file(d.join("bcrypt")).unwrap();
        assert!(!ensure(state.path(), "old", SecretKind::Password).unwrap());
        let s = read(state.path(), "old").unwrap().unwrap();
        assert!(bcrypt::verify(&s.fields["password"], &s.fields["bcrypt"]).unwrap());
    }

    #[test]
    fn a_secret_a_database_keeps_is_not_rotated() {
        use crate::manifest::SecretDecl;
        let free = SecretDecl {
            kind: SecretKind::Password,
            rotate: true,
        };
        let kept = SecretDecl {
            kind: SecretKind::Password,
            rotate: false,
        };
        assert!(may_rotate("db", [("app", free), ("other", free)].into_iter()).is_ok());
        let why = may_rotate("db", [("app", free), ("mariadb", kept)].into_iter()).unwrap_err();
        assert!(
            why.contains("`db`") && why.contains("mariadb keeps"),
            "{why}"
        );
    }

    #[test]
    fn a_private_dir_is_never_made_through_a_link_or_a_fifo() {
        let d = tempfile::tempdir().unwrap();
        let other = d.path().join("other");
        fs::create_dir(&other).unwrap();
        fs::set_permissions(&other, fs::Permissions::from_mode(0o755)).unwrap();
        let link = d.path().join("config");
        std::os::unix::fs::symlink(&other, &link).unwrap();
        let e = create_private_dir(&link).unwrap_err();
        assert!(e.to_string().contains("config is a symbolic link"), "{e}");
        let mode = fs::metadata(&other).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "chmodded through the link");
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(create_private_dir(&fifo).is_err());
        let ok = d.path().join("a/b");
        create_private_dir(&ok).unwrap();
        let mode = fs::metadata(&ok).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn rotation_changes_the_password_and_is_not_applied_until_marked() {
        let state = tempfile::tempdir().unwrap();
        ensure(state.path(), "rpc", SecretKind::Rpcauth).unwrap();
        let old = read(state.path(), "rpc").unwrap().unwrap();
        assert!(is_applied(state.path(), "rpc", &old));
        rotate(state.path(), "rpc", SecretKind::Rpcauth).unwrap();
        let new = read(state.path(), "rpc").unwrap().unwrap();
        assert_ne!(old.fields["password"], new.fields["password"]);
        assert_ne!(old.fields["rpcauth"], new.fields["rpcauth"]);
        assert!(!is_applied(state.path(), "rpc", &new));
        mark_applied(state.path(), "rpc", &new).unwrap();
        assert!(is_applied(state.path(), "rpc", &new));
        let marker = fs::read_to_string(dir(state.path(), "rpc").join(APPLIED)).unwrap();
        assert!(!marker.contains(new.fields["password"].as_str()));
    }
}
