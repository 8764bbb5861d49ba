//! The mempool backend (`node /backend/package/index.js`), as far as archy and its peers see it.
//! (Not written yet: exits 1.)

pub fn node(_argv: &[String]) -> i32 {
    crate::log!("mempool: the stand-in is not written yet");
    1
}
