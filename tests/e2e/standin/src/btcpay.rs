//! BTCPay Server (`dotnet BTCPayServer.dll`), as far as archy and its peers see it.
//! (Not written yet: exits 1.)

pub fn btcpay(_argv: &[String]) -> i32 {
    crate::log!("btcpay: the stand-in is not written yet");
    1
}
