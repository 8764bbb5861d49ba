//! NBXplorer (`dotnet NBXplorer.dll`), as far as archy and its peers see it.
//! (Not written yet: exits 1.)

pub fn nbxplorer(_argv: &[String]) -> i32 {
    crate::log!("nbxplorer: the stand-in is not written yet");
    1
}
