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

/// [`codecs_asked`] for a JSON body's `codecs` (the direct-upload and
/// import requests): `"h264,av1"` or `["h264", "av1"]`.
pub(crate) fn codecs_in_json(
    v: &serde_json::Value,
    allowed: &crate::config::Codecs,
) -> Result<crate::config::Codecs, Error> {
    let bad = || Error::BadRequest("codecs is \"h264,av1\" or [\"h264\", \"av1\"]".into());
    let asked = match v.get("codecs") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Array(a)) => {
            let names: Option<Vec<&str>> = a.iter().map(|c| c.as_str()).collect();
            Some(names.ok_or_else(bad)?.join(","))
        }
        Some(_) => return Err(bad()),
    };
    codecs_asked(asked.as_deref(), allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Codecs;

    #[test]
    fn json_codecs_are_a_list_or_a_string_within_the_servers() {
        let allowed = Codecs::parse("h264,av1").unwrap();
        let ask = |v: serde_json::Value| codecs_in_json(&v, &allowed).map(|c| c.to_string());
        assert_eq!(ask(serde_json::json!({})).unwrap(), "h264,av1");
        assert_eq!(ask(serde_json::json!({"codecs": "h264"})).unwrap(), "h264");
        assert_eq!(
            ask(serde_json::json!({"codecs": ["AV1"]})).unwrap(),
            "h264,av1"
        );
        for bad in [
            serde_json::json!({"codecs": ["hevc"]}),
            serde_json::json!({"codecs": [1]}),
            serde_json::json!({"codecs": true}),
            serde_json::json!({"codecs": "vp9"}),
        ] {
            assert!(ask(bad).is_err());
        }
    }
}
