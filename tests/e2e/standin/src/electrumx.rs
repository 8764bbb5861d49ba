//! ElectrumX: `electrumx_server` and `electrumx_rpc`, as far as archy and its peers see them.
//! (Not written yet: exits 1.)

pub fn server(_argv: &[String]) -> i32 {
    crate::log!("electrumx_server: the stand-in is not written yet");
    1
}

pub fn rpc(_argv: &[String]) -> i32 {
    crate::log!("electrumx_rpc: the stand-in is not written yet");
    1
}
