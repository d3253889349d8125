//! The codec groups an upload asks for.

use crate::Error;

/// The codec groups an upload asks for (`codecs`: `h264,av1`, any case,
/// H.264 always made), within what the server makes (`--codecs`), which
/// is also what a silent upload gets; anything else is a 400.
pub(crate) fn codecs_asked(
    asked: Option<&str>,
    allowed: &crate::config::Codecs,
) -> Result<crate::config::Codecs, Error> {
    let Some(asked) = asked else {
        return Ok(allowed.clone());
    };
    let codecs = crate::config::Codecs::parse(asked).map_err(Error::BadRequest)?;
    if !codecs.within(allowed) {
        return Err(Error::BadRequest(format!(
            "codecs: this server makes {allowed} (--codecs)"
        )));
    }
    Ok(codecs)
}
