//! The few libc calls std does not offer: signal handling (a container's PID 1 ignores SIGTERM
//! unless it installs a handler, and every stop would then cost podman's 10 s timeout), file
//! locks, setgroups; and the kernel's random bytes.

use std::ffi::{c_char, c_int, CString};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

extern "C" {
    fn signal(signum: c_int, handler: usize) -> usize;
    fn unlink(path: *const c_char) -> c_int;
    fn write(fd: c_int, buf: *const u8, n: usize) -> isize;
    fn _exit(code: c_int) -> !;
    fn setgroups(n: usize, list: *const u32) -> c_int;
    fn flock(fd: c_int, op: c_int) -> c_int;
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
    exit_on(&[SIGINT, SIGTERM, SIGQUIT]);
}

/// Exit 0 promptly on each of `signals` (removing the `remove_on_exit` file, printing the
/// `exit_on_signals` message if one was given).
pub fn exit_on(signals: &[c_int]) {
    // SAFETY: installing a handler that only makes async-signal-safe calls
    unsafe {
        for &s in signals {
            signal(s, on_signal as *const () as usize);
        }
    }
}

static SIGNAL_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn to_pipe(sig: c_int) {
    let b = sig as u8;
    // SAFETY: write(2) is async-signal-safe; the fd is a pipe kept open for the process's life
    unsafe {
        write(SIGNAL_FD.load(Ordering::SeqCst), &b, 1);
    }
}

/// Route `signals` to a pipe; the returned reader yields one byte (the signal number) each.
pub fn signal_pipe(signals: &[c_int]) -> std::io::PipeReader {
    let (r, w) = std::io::pipe().expect("pipe");
    SIGNAL_FD.store(w.as_raw_fd(), Ordering::SeqCst);
    std::mem::forget(w);
    for &sig in signals {
        // SAFETY: the handler only calls write(2)
        unsafe {
            signal(sig, to_pipe as *const () as usize);
        }
    }
    r
}

/// The next signal `signal_pipe` caught.
pub fn wait_signal(pipe: &mut std::io::PipeReader) -> c_int {
    use std::io::Read;
    let mut b = [0u8; 1];
    loop {
        if pipe.read_exact(&mut b).is_ok() {
            return c_int::from(b[0]);
        }
    }
}

/// flock(LOCK_EX | LOCK_NB): an exclusive lock on `file`, or the error at once.
pub fn lock_exclusive(file: &std::fs::File) -> std::io::Result<()> {
    // SAFETY: flock on an fd the caller's File keeps open
    if unsafe { flock(file.as_raw_fd(), 2 | 4) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A file the signal handler removes before exiting (bitcoind's cookie).
pub fn remove_on_exit(path: &std::path::Path) {
    if let Ok(c) = CString::new(path.as_os_str().as_encoded_bytes()) {
        REMOVE_ON_EXIT.store(c.into_raw(), Ordering::SeqCst);
    }
}

/// Random bytes from the kernel.
pub fn random_bytes(n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    buf
}

/// `n` random bytes from the kernel, in hex.
pub fn random_hex(n: usize) -> String {
    crate::util::hex(&random_bytes(n))
}

/// A random 64-bit number.
pub fn random_u64() -> u64 {
    let b = random_bytes(8);
    u64::from_be_bytes(b.try_into().unwrap_or_default())
}

/// A line on stderr (the journal, through podman).
#[macro_export]
macro_rules! log {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
