//! The few libc calls std does not offer: signal handling (a container's PID 1 ignores SIGTERM
//! unless it installs a handler, and every stop would then cost podman's 10 s timeout).

use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicPtr, Ordering};

extern "C" {
    fn signal(signum: c_int, handler: usize) -> usize;
    fn unlink(path: *const c_char) -> c_int;
    fn write(fd: c_int, buf: *const u8, n: usize) -> isize;
    fn _exit(code: c_int) -> !;
    fn setgroups(n: usize, list: *const u32) -> c_int;
}

/// setgroups(2): like gosu, called even when not root, where it fails with EPERM.
pub fn set_groups(gids: &[u32]) -> std::io::Result<()> {
    // SAFETY: the pointer and length describe a live slice of gid_t (u32 on Linux)
    if unsafe { setgroups(gids.len(), gids.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;
const SIGQUIT: c_int = 3;

static REMOVE_ON_EXIT: AtomicPtr<c_char> = AtomicPtr::new(std::ptr::null_mut());
static EXIT_MESSAGE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_signal(_sig: c_int) {
    // only async-signal-safe calls here
    let path = REMOVE_ON_EXIT.load(Ordering::SeqCst);
    // SAFETY: both pointers are leaked, NUL-terminated strings that live forever
    unsafe {
        if !path.is_null() {
            unlink(path);
        }
        let msg = EXIT_MESSAGE.load(Ordering::SeqCst);
        if !msg.is_null() {
            let len = (0..).take_while(|&i| *msg.add(i) != 0).count();
            write(2, msg, len);
        }
        _exit(0);
    }
}

/// Exit 0 promptly on SIGTERM, SIGINT and SIGQUIT, printing `message` first.
pub fn exit_on_signals(message: &str) {
    let msg = CString::new(format!("{message}\n")).unwrap_or_default();
    EXIT_MESSAGE.store(msg.into_raw().cast(), Ordering::SeqCst);
    // SAFETY: installing a handler that only makes async-signal-safe calls
    unsafe {
        for s in [SIGINT, SIGTERM, SIGQUIT] {
            signal(s, on_signal as *const () as usize);
        }
    }
}

/// A file the signal handler removes before exiting (bitcoind's cookie).
pub fn remove_on_exit(path: &std::path::Path) {
    if let Ok(c) = CString::new(path.as_os_str().as_encoded_bytes()) {
        REMOVE_ON_EXIT.store(c.into_raw(), Ordering::SeqCst);
    }
}

/// Random bytes from the kernel.
pub fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A line on stderr (the journal, through podman).
#[macro_export]
macro_rules! log {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
