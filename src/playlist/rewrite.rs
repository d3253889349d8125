//! Rewriting every URI of a playlist (signed playback URLs carry their
//! token on every segment, variant, key and map URI).

/// Rewrites each URI in `text` with `f`: URI lines, and `URI="…"`
/// attributes of tags (`EXT-X-KEY`, `EXT-X-MAP`, `EXT-X-MEDIA`,
/// `EXT-X-I-FRAME-STREAM-INF`). Everything else is kept as it is.
pub fn rewrite_uris(text: &str, f: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4 + 64);
    for line in text.lines() {
        if line.is_empty() {
        } else if !line.starts_with('#') {
            out.push_str(&f(line.trim()));
        } else if let Some(start) = line.find("URI=\"") {
            let value_start = start + 5;
            match line[value_start..].find('"') {
                Some(len) => {
                    out.push_str(&line[..value_start]);
                    out.push_str(&f(&line[value_start..value_start + len]));
                    out.push_str(&line[value_start + len..]);
                }
                None => out.push_str(line),
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// `uri` with `name=value` added to its query.
pub fn with_query(uri: &str, name: &str, value: &str) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{name}={value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_uri_is_rewritten() {
        let pl = "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/x/k0.key\",IV=0x01\n#EXTINF:6,\nseg_00000.ts\n#EXT-X-MAP:URI=\"init.mp4\"\nlow/index.m3u8?x=1\n#EXT-X-ENDLIST\n";
        let out = rewrite_uris(pl, |u| with_query(u, "token", "T"));
        assert!(out.contains("URI=\"/keys/x/k0.key?token=T\",IV=0x01"));
        assert!(out.contains("\nseg_00000.ts?token=T\n"));
        assert!(out.contains("URI=\"init.mp4?token=T\""));
        assert!(out.contains("low/index.m3u8?x=1&token=T"));
        assert!(out.contains("#EXTINF:6,\n"));
        assert!(out.ends_with("#EXT-X-ENDLIST\n"));
    }
}
