//! packaging/setup-service-user, run by the packages as root: handing the data dir to the
//! service user never changes the owner of what a symbolic link there points at. Its functions
//! are read without the part that acts on the system (subordinate ids, lingering), so the test
//! changes nothing outside its temp dir.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

#[test]
fn the_data_dir_is_handed_over_without_following_a_link() {
    if !nix::unistd::getuid().is_root() {
        eprintln!("SKIPPED: needs root (chown), as the packages run it");
        return;
    }
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/setup-service-user"
    ))
    .expect("the script");
    // its functions only: everything from the first use of node.toml's user on acts
    let functions = &script[..script
        .find("\nuser=$(node_setting user)")
        .expect("its main part")];
    let dir = tempfile::tempdir().expect("tempdir");
    let root_owned = dir.path().join("elsewhere");
    std::fs::create_dir(&root_owned).expect("mkdir");
    let data = dir.path().join("data");
    std::os::unix::fs::symlink(&root_owned, &data).expect("symlink");
    let node = dir.path().join("node.toml");
    std::fs::write(
        &node,
        format!("user = \"nobody\"\ndata_dir = \"{}\"\n", data.display()),
    )
    .expect("node.toml");
    let run = || {
        Command::new("sh")
            .arg("-c")
            .arg(format!("{functions}\nown_data_dir nobody 65534\n"))
            .env("ARCHY_NODE_TOML", &node)
            .output()
            .expect("sh")
    };
    let out = run();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is a symbolic link: not changing its owner"),
        "{out:?}"
    );
    assert_eq!(std::fs::metadata(&root_owned).expect("stat").uid(), 0);
    // the control: a data dir that does not exist is made, the service user's
    std::fs::remove_file(&data).expect("rm");
    assert!(run().status.success());
    let meta = std::fs::symlink_metadata(&data).expect("made");
    assert!(meta.is_dir());
    assert_eq!((meta.uid(), meta.mode() & 0o777), (65534, 0o750));
}
