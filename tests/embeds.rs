//! Embeds and oEmbed (issue 29, item 1): `/embed/{id}` is a player page
//! that other sites may frame (the UI may not), with Open Graph, Twitter
//! and oEmbed discovery tags that lead to a `GET /oembed` answer meeting
//! the oEmbed 1.0 spec; a signed video's page and oEmbed need its token;
//! titles cannot inject markup; the API token is never in a page.
//! (The page playing in another site's frame: tests/browser.rs.)

use crate::common::*;

const TOKEN: &str = "api-token-0123456789abcdef";

/// `POST /upload` of a 2 s clip with the API token (and `title`): its id.
fn upload_with_token(s: &Server, title: &str) -> String {
    let file = format!("video=@{}", h264_mp4_path(2, "320x180", true).display());
    let (auth, title) = (
        format!("Authorization: Bearer {TOKEN}"),
        format!("title={title}"),
    );
    let url = format!("http://{}/upload", s.addr);
    let text = curl(&["-H", &auth, "-F", &file, "-F", &title, &url]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["id"].as_str().unwrap_or_else(|| panic!("{v}")).to_owned()
}

/// A `<meta … content="…">` or `<link … href="…">` value, by its name.
fn tag(html: &str, name: &str, attr: &str) -> Option<String> {
    let at = html.find(&format!("\"{name}\""))?;
    let line_start = html[..at].rfind('<')?;
    let line = &html[line_start..line_start + html[line_start..].find('>')?];
    let v = line.split(&format!("{attr}=\"")).nth(1)?;
    Some(v.split('"').next()?.replace("&amp;", "&"))
}

/// The oEmbed 1.0 rules for a `video` answer (spec §2.3.4).
fn check_oembed(v: &serde_json::Value) {
    assert_eq!(v["version"], "1.0", "{v}");
    assert_eq!(v["type"], "video", "{v}");
    for k in ["width", "height"] {
        assert!(v[k].as_u64().is_some_and(|n| n > 0), "{k}: {v}");
    }
    let html = v["html"].as_str().unwrap();
    assert!(
        html.starts_with("<iframe ") && html.ends_with("</iframe>"),
        "{v}"
    );
    let thumb = ["thumbnail_url", "thumbnail_width", "thumbnail_height"];
    let present = thumb.iter().filter(|k| !v[**k].is_null()).count();
    assert!(present == 0 || present == 3, "thumbnails all or none: {v}");
    for k in ["title", "provider_name", "provider_url"] {
        assert!(v[k].is_string(), "{k}: {v}");
    }
}

fn src_of(iframe: &str) -> String {
    let v = iframe.split("src=\"").nth(1).unwrap();
    v.split('"').next().unwrap().replace("&amp;", "&")
}

#[test]
fn the_embed_page_is_framable_discoverable_and_safe() {
    let s = Server::start(&["--api-token", TOKEN]);
    let title = "Talk <script>alert(1)</script> & 'quotes'";
    let id = upload_with_token(&s, title);
    let page = s.get(&format!("/embed/{id}?start=1&autoplay=1&captions=en"));
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(!html.contains(TOKEN), "the API token is never in a page");
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("Talk &lt;script&gt;"), "{html}");
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors *"), "{csp}");
    assert_eq!(page.header("x-frame-options"), None);
    // The management UI is never framed.
    let ui = s.get("/");
    assert!(ui
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(ui.header("x-frame-options"), Some("DENY"));
    // Open Graph and Twitter say it is a player at this URL.
    let own = tag(&html, "og:url", "content").unwrap();
    assert!(own.ends_with(&format!("/embed/{id}?start=1&autoplay=1&captions=en")));
    assert_eq!(tag(&html, "twitter:card", "content").unwrap(), "player");
    assert_eq!(tag(&html, "twitter:player", "content").unwrap(), own);
    assert_eq!(tag(&html, "og:video:width", "content").unwrap(), "320");
    let poster = tag(&html, "og:image", "content").unwrap();
    let poster_path = &poster[poster.find("/play/").unwrap()..];
    let auth = format!("Bearer {TOKEN}");
    wait_ready_with(&s, &id, &[("Authorization", &auth)]);
    assert_eq!(s.get(poster_path).status, 200, "{poster}");
    // Discovery leads to an oEmbed answer for the same page.
    let href = tag(&html, "application/json+oembed", "href").unwrap();
    let oembed = s.get(&href[href.find("/oembed").unwrap()..]);
    assert_eq!(oembed.status, 200, "{}", oembed.text());
    let v = oembed.json();
    check_oembed(&v);
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(180))
    );
    assert_eq!(src_of(v["html"].as_str().unwrap()), own);
    assert_eq!(v["title"], title);
    let thumb = v["thumbnail_url"].as_str().unwrap();
    assert_eq!(s.get(&thumb[thumb.find("/play/").unwrap()..]).status, 200);
    // Sizes fit maxwidth/maxheight with the video's aspect.
    let url = format!("http://{}/play/{id}/video.m3u8", s.addr);
    let q = |extra: &str| {
        format!(
            "/oembed?url={}{extra}",
            url.replace(':', "%3A").replace('/', "%2F")
        )
    };
    let small = s.get(&q("&maxwidth=160&maxheight=200")).json();
    check_oembed(&small);
    assert_eq!(
        (small["width"].as_u64(), small["height"].as_u64()),
        (Some(160), Some(90))
    );
    assert_eq!(s.get(&q("&format=xml")).status, 501);
    assert_eq!(s.get(&q("&maxwidth=-3")).status, 400);
    let gone = s.get("/oembed?url=http%3A%2F%2Fh%2Fembed%2FV1StGXR8_Z5jdHi6B-myT");
    assert_eq!(gone.status, 404);
    assert_eq!(s.get("/oembed").status, 400);
    // A poster at a time comes from the image API.
    let at = s.get(&format!("/embed/{id}?poster=1.5")).text();
    let src = at
        .split("poster=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let src = src.replace("&amp;", "&");
    assert!(
        src.ends_with(&format!("/play/{id}/thumbnail.jpg?time=1.5")),
        "{src}"
    );
    let r = s.get(&src);
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("image/jpeg"))
    );
    assert!(!s
        .get(&format!("/embed/{id}?poster=none"))
        .text()
        .contains("poster=\""));
    for bad in [
        "autoplay=maybe",
        "captions=%3Cx%3E",
        "start=9&end=2",
        "poster=later",
    ] {
        let r = s.get(&format!("/embed/{id}?{bad}"));
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    assert_eq!(s.get("/embed/V1StGXR8_Z5jdHi6B-myT").status, 404);
}

#[test]
fn a_signed_videos_embed_and_oembed_need_its_token() {
    let s = Server::start(&[
        "--signing-key",
        "embed-key",
        "--api-token",
        TOKEN,
        "--embed-origins",
        "https://blog.example, https://*.forum.example",
    ]);
    let auth = format!("Bearer {TOKEN}");
    let id = upload_with_token(&s, "Signed");
    let denied = s.get(&format!("/embed/{id}"));
    assert_eq!(denied.status, 403);
    assert_eq!(denied.json()["error"]["code"], "invalid_token");
    let path = format!("/videos/{id}/playback-token");
    let t = request(s.addr, "POST", &path, &[("Authorization", &auth)], b"");
    let embed = t.json()["embed_url"].as_str().unwrap().to_owned();
    let token = t.json()["token"].as_str().unwrap().to_owned();
    let page = s.get(&embed[embed.find("/embed/").unwrap()..]);
    assert_eq!(page.status, 200, "{}", page.text());
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("frame-ancestors https://blog.example https://*.forum.example"),
        "{csp}"
    );
    // The page's player, poster and oEmbed link all carry the token.
    let html = page.text();
    assert!(
        html.contains(&format!("/play/{id}/video.m3u8?token={token}")),
        "{html}"
    );
    assert!(!html.contains(TOKEN));
    let enc = |u: &str| {
        u.replace(':', "%3A")
            .replace('/', "%2F")
            .replace('?', "%3F")
            .replace('=', "%3D")
    };
    let bare = format!("http://{}/embed/{id}", s.addr);
    let r = s.get(&format!("/oembed?url={}", enc(&bare)));
    assert_eq!(r.status, 401, "{}", r.text());
    let r = s.get(&format!("/oembed?url={}", enc(&embed)));
    assert_eq!(r.status, 200, "{}", r.text());
    check_oembed(&r.json());
    assert_eq!(src_of(r.json()["html"].as_str().unwrap()), embed);
    let forged = embed.replace(&token, &format!("1{token}"));
    assert_eq!(s.get(&format!("/oembed?url={}", enc(&forged))).status, 401);
}
