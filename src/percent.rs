//! Percent-encoding (RFC 3986): query values and URL path segments.

/// `s` decoded: `%XX` is a byte (a malformed escape stays as it is), `+`
/// a space when `plus_is_space` (query values); invalid UTF-8 is replaced.
pub fn decode(s: &str, plus_is_space: bool) -> String {
    let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16)).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], hex(b.get(i + 1)), hex(b.get(i + 2))) {
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 3;
            }
            (b'+', _, _) if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `s` as one query value (RFC 3986 unreserved characters kept).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(
            |b| match b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                true => (b as char).to_string(),
                false => format!("%{b:02X}"),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_and_encode() {
        assert_eq!(decode("Fran%C3%A7ais+(CC)", true), "Français (CC)");
        assert_eq!(decode("a+b%20c", false), "a+b c");
        assert_eq!(decode("100%", true), "100%");
        assert_eq!(decode("%zz%4", true), "%zz%4");
        let url = "http://h:1/embed/x?token=1-2-.ab&start=3";
        assert_eq!(decode(&encode(url), true), url);
        assert!(!encode(url).contains(['/', '?', '&', '=', ':']));
    }
}
