//! lnd's wallet as its clients see it: a wallet file whose password only its creator knows, the
//! seed it was created from (the node's identity follows from it), macaroons, and the static
//! channel backup. The file formats are the stand-in's own; what is mirrored is what can be
//! observed (lightningnetwork/lnd v0.21.2-beta):
//! - the wallet lives in `<lnddir>/data/chain/bitcoin/<network>/wallet.db`
//!   (lncfg/config.go, btcwallet's loader), the macaroons beside it: admin.macaroon (0640),
//!   readonly.macaroon and invoice.macaroon (0644) (lnd.go, adminMacaroonFilePermissions), made
//!   when the wallet is created unless stateless_init;
//! - a password shorter than 8 bytes is refused (walletunlocker/service.go ValidatePassword); a
//!   wrong one is "invalid passphrase for master public key" (btcwallet's waddrmgr ErrWrongPassphrase);
//! - the REST header `Grpc-Metadata-macaroon` carries the macaroon file's bytes in hex
//!   (docs/macaroons.md); without one lnd answers "expected 1 macaroon, got 0"
//!   (macaroons/service.go);
//! - channel.backup is rewritten by writing `temp-dont-use.backup` in the same directory and
//!   renaming it over, the old one copied first to `chan-backup-archives/` unless
//!   no-backup-archive (chanbackup/backupfile.go UpdateAndSwap).
//!
//! The seed's words come from a list of the stand-in's (not aezeed's 2048): what the hook sees is
//! aezeed's shape, 24 words and a 33-byte enciphered seed.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const WORDS: [&str; 64] = [
    "abandon", "ability", "able", "about", "above", "absent", "absorb", "abstract", "absurd",
    "abuse", "access", "accident", "account", "accuse", "achieve", "acid", "acoustic", "acquire",
    "across", "act", "action", "actor", "actress", "actual", "adapt", "add", "addict", "address",
    "adjust", "admit", "adult", "advance", "advice", "aerobic", "affair", "afford", "afraid",
    "again", "age", "agent", "agree", "ahead", "aim", "air", "airport", "aisle", "alarm", "album",
    "alcohol", "alert", "alien", "all", "alley", "allow", "almost", "alone", "alpha", "already",
    "also", "alter", "always", "amateur", "amazing", "among",
];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    hex(&h.finalize())
}

/// A fresh seed: 24 words, and the enciphered seed's 33 bytes.
pub fn new_seed() -> (Vec<String>, Vec<u8>) {
    let entropy = crate::sys::random_hex(24);
    let bytes: Vec<u8> = (0..24)
        .map(|i| u8::from_str_radix(&entropy[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    let words = bytes
        .iter()
        .map(|b| WORDS[(*b as usize) % WORDS.len()].to_string())
        .collect();
    let enciphered = (0..33).map(|i| bytes[i % 24] ^ (i as u8)).collect();
    (words, enciphered)
}

/// Why a mnemonic is not one lnd would take, if it is not.
pub fn check_mnemonic(words: &[String]) -> Result<(), String> {
    if words.len() != 24 {
        return Err(format!(
            "wrong cipher seed mnemonic length: got {} words, expecting 24 words",
            words.len()
        ));
    }
    match words.iter().find(|w| !WORDS.contains(&w.as_str())) {
        Some(w) => Err(format!("word {w} isn't a part of default word list")),
        None => Ok(()),
    }
}

pub fn check_password(pw: &[u8]) -> Result<(), String> {
    if pw.len() < 8 {
        return Err("password must have at least 8 characters".into());
    }
    Ok(())
}

/// The wallet of one network: `<lnddir>/data/chain/bitcoin/<network>/`.
pub struct Wallet {
    pub dir: PathBuf,
}

impl Wallet {
    pub fn at(lnddir: &Path, network: &str) -> Wallet {
        Wallet {
            dir: lnddir.join("data/chain/bitcoin").join(network),
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.join("wallet.db")
    }

    pub fn exists(&self) -> bool {
        self.file().is_file()
    }

    fn fields(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.file())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect()
    }

    fn field(&self, key: &str) -> Option<String> {
        self.fields()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Creates the wallet from the seed, locked by the password.
    pub fn create(&self, password: &[u8], words: &[String]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let salt = crate::sys::random_hex(16);
        let seed = words.join(" ");
        let text = format!(
            "format=archy-standin-wallet-1\nsalt={salt}\npwhash={}\nseedhash={}\n",
            sha(&[salt.as_bytes(), password]),
            sha(&[b"seed", seed.as_bytes()])
        );
        let tmp = self.dir.join("wallet.db.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(tmp, self.file())
    }

    pub fn unlock(&self, password: &[u8]) -> Result<(), String> {
        let (Some(salt), Some(hash)) = (self.field("salt"), self.field("pwhash")) else {
            return Err("unable to open wallet: wallet.db is not a wallet".into());
        };
        if sha(&[salt.as_bytes(), password]) == hash {
            Ok(())
        } else {
            Err("invalid passphrase for master public key".into())
        }
    }

    /// The node's public key: the seed decides it, so the same seed is the same node.
    pub fn identity(&self) -> String {
        let seed = self.field("seedhash").unwrap_or_default();
        format!("02{}", sha(&[b"node-key", seed.as_bytes()]))
    }

    fn root_key(&self) -> std::io::Result<Vec<u8>> {
        let path = self.dir.join("macaroons.db");
        if let Ok(k) = std::fs::read(&path) {
            return Ok(k);
        }
        let k = crate::sys::random_hex(32).into_bytes();
        std::fs::create_dir_all(&self.dir)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(&k)?;
        Ok(k)
    }

    fn macaroon(&self, permission: &str) -> std::io::Result<Vec<u8>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.root_key()?).expect("any key");
        mac.update(permission.as_bytes());
        let mut m = format!("archy-standin-macaroon\0{permission}\0").into_bytes();
        m.extend_from_slice(&mac.finalize().into_bytes());
        Ok(m)
    }

    /// The macaroon files, made if missing; the admin one's bytes.
    pub fn ensure_macaroons(&self, write_files: bool) -> std::io::Result<Vec<u8>> {
        let admin = self.macaroon("admin")?;
        if write_files {
            for (name, perm, mode) in [
                ("admin", "admin", 0o640),
                ("readonly", "readonly", 0o644),
                ("invoice", "invoice", 0o644),
            ] {
                let path = self.dir.join(format!("{name}.macaroon"));
                if !path.exists() {
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(mode)
                        .open(&path)?;
                    f.write_all(&self.macaroon(perm)?)?;
                }
            }
        }
        Ok(admin)
    }

    /// The permission a macaroon (as the hex of its bytes) grants, if it is one of this wallet's.
    pub fn check_macaroon(&self, hex_text: &str) -> Result<String, String> {
        let bytes: Vec<u8> = (0..hex_text.len() / 2)
            .filter_map(|i| u8::from_str_radix(hex_text.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        let perm = bytes
            .strip_prefix(b"archy-standin-macaroon\0".as_slice())
            .and_then(|rest| rest.split(|b| *b == 0).next())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .ok_or("cannot get macaroon: invalid macaroon")?;
        match self.macaroon(&perm) {
            Ok(m) if m == bytes => Ok(perm),
            _ => Err("verification failed: signature mismatch after caveat verification".into()),
        }
    }

    /// The static channel backup's path: backupfilepath, else channel.backup beside the wallet.
    pub fn backup_path(&self, backupfilepath: Option<String>) -> PathBuf {
        backupfilepath.map_or_else(|| self.dir.join("channel.backup"), PathBuf::from)
    }

    /// Rewrites the channel backup for `channels` channels as lnd does: the old one archived,
    /// the new one written to a temporary file beside it and renamed over it.
    pub fn write_backup(&self, path: &Path, channels: u64, archive: bool) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        if archive && path.exists() {
            let archives = dir.join("chan-backup-archives");
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&archives)?;
            let stamp = crate::sys::random_hex(4);
            std::fs::copy(path, archives.join(format!("channel.backup-{stamp}")))?;
        }
        let tmp = dir.join("temp-dont-use.backup");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::File::create(&tmp)?;
        // an encrypted multi-channel backup, in the real file: here a header, the count, noise
        writeln!(
            f,
            "archy-standin-scb v1 channels={channels} node={}",
            self.identity()
        )?;
        f.write_all(crate::sys::random_hex(64 * channels.max(1) as usize).as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("standin-wallet-{}", crate::sys::random_hex(6)));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_wallet_opens_with_its_password_only_and_keeps_its_identity() {
        let root = dir();
        let w = Wallet::at(&root, "mainnet");
        assert!(!w.exists());
        let (words, _) = new_seed();
        check_mnemonic(&words).unwrap();
        w.create(b"correct horse", &words).unwrap();
        assert!(w.exists());
        assert!(w.unlock(b"correct horse").is_ok());
        assert_eq!(
            w.unlock(b"wrong").unwrap_err(),
            "invalid passphrase for master public key"
        );
        let id = w.identity();
        assert_eq!(id.len(), 66);
        // the same files, the same node
        assert_eq!(Wallet::at(&root, "mainnet").identity(), id);
        assert!(check_password(b"short").is_err());
        assert!(check_mnemonic(&words[..23]).is_err());
    }

    #[test]
    fn macaroons_verify_and_backups_swap() {
        let w = Wallet::at(&dir(), "mainnet");
        let admin = w.ensure_macaroons(true).unwrap();
        let hex_text: String = admin.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(w.check_macaroon(&hex_text).unwrap(), "admin");
        assert!(w.check_macaroon("00ff").is_err());
        let ro = std::fs::read(w.dir.join("readonly.macaroon")).unwrap();
        let ro_hex: String = ro.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(w.check_macaroon(&ro_hex).unwrap(), "readonly");
        let p = w.backup_path(None);
        w.write_backup(&p, 1, true).unwrap();
        let first = std::fs::read(&p).unwrap();
        w.write_backup(&p, 2, true).unwrap();
        assert_ne!(std::fs::read(&p).unwrap(), first);
        assert_eq!(
            std::fs::read_dir(w.dir.join("chan-backup-archives"))
                .unwrap()
                .count(),
            1
        );
        assert!(!w.dir.join("temp-dont-use.backup").exists());
    }
}
