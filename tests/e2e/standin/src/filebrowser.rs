//! File Browser, as far as archy and its peers see it.
//! (Not written yet: exits 1.)

pub fn filebrowser(_argv: &[String]) -> i32 {
    crate::log!("filebrowser: the stand-in is not written yet");
    1
}
