//! archy-hook as a unit runs it: what the service manager hears from a failing hook.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

/// A failing hook gives the manager its reason as STATUS= (what `systemctl status` shows), then
/// waits for the manager with BARRIER=1, and does not hang when the manager answers.
#[test]
fn a_failing_hook_tells_the_manager_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut hook = Command::new(env!("CARGO_BIN_EXE_archy-hook"))
        .args(["ensure-image", "nosuch"])
        .env("ARCHY_ROOT", dir.path())
        .env("ARCHY_LOG", "stderr")
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("NOTIFY_SOCKET", &socket_path)
        .spawn()
        .expect("spawn archy-hook");
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a status message");
    let status = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert_eq!(
        status,
        "STATUS=archy-hook ensure-image: no manifest for app `nosuch`\n"
    );
    // the barrier carries a pipe's write end: receiving it without taking it closes it, which
    // is the manager's answer
    let n = socket.recv(&mut buf).expect("a barrier");
    assert_eq!(&buf[..n], b"BARRIER=1\n");
    let exit = hook.wait().expect("wait");
    assert_eq!(exit.code(), Some(1));
}
