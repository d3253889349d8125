//! The checks of a configuration: flag parsers, and what `finalize` refuses
//! or warns about (settings that protect nothing or cannot work).

use super::*;

pub(super) fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("`{s}`: say on or off")),
    }
}

/// True for an absolute `http://` or `https://` URL with a host.
fn is_http_url(s: &str) -> bool {
    s.parse::<http::Uri>()
        .ok()
        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")))
        .is_some_and(|u| u.host().is_some())
}

pub(super) fn parse_node_name(s: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    match ok {
        true => Ok(s.to_owned()),
        false => Err(format!(
            "`{s}`: a node name is 1 to 64 of A-Z a-z 0-9 - _ ."
        )),
    }
}

impl Config {
    /// This node's name: `--node-name`, else the host name.
    pub fn node(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            let host: String = host
                .trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                .take(64)
                .collect();
            if host.is_empty() {
                "hlsd".to_owned()
            } else {
                host
            }
        })
    }
}

pub(super) fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{s}` is not a whole number above 0")),
    }
}

impl Config {
    /// Reads the token and key files into `api_tokens` / `signing_key` and
    /// refuses settings that protect nothing or cannot work. Returns the
    /// warnings to log; an error is one line for the operator.
    pub fn finalize(&mut self) -> Result<Vec<String>, String> {
        self.load_secrets()?;
        self.validate()
    }

    fn load_secrets(&mut self) -> Result<(), String> {
        self.webhook_urls.retain(|u| !u.trim().is_empty());
        if let Some(path) = &self.api_token_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --api-token-file {}: {e}", path.display()))?;
            self.api_tokens
                .extend(text.lines().map(str::trim).map(str::to_owned));
        }
        self.api_tokens.retain(|t| !t.trim().is_empty());
        if let Some(path) = &self.signing_key_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --signing-key-file {}: {e}", path.display()))?;
            self.signing_key = Some(text.lines().next().unwrap_or("").trim().to_owned());
        }
        Ok(())
    }

    fn validate(&self) -> Result<Vec<String>, String> {
        let mut warnings = Vec::new();
        if self
            .signing_key
            .as_deref()
            .is_some_and(|k| k.trim().is_empty())
        {
            return Err(
                "the signing key is empty: give --signing-key (or a --signing-key-file) \
                        a long random secret"
                    .into(),
            );
        }
        if let Some(short) = self.api_tokens.iter().find(|t| t.len() < MIN_TOKEN_BYTES) {
            return Err(format!(
                "an API token of {} bytes is too easy to guess: use at least {MIN_TOKEN_BYTES} \
                 (e.g. `openssl rand -hex 32`)",
                short.len()
            ));
        }
        if !(1..=MAX_TOKEN_TTL_SECS).contains(&self.playback_token_ttl_secs) {
            return Err(format!(
                "--playback-token-ttl-secs must be between 1 and {MAX_TOKEN_TTL_SECS} (10 years)"
            ));
        }
        if self.signing_key.is_some() && self.api_tokens.is_empty() {
            let why = "--signing-key without --api-token: anyone can mint playback tokens \
                       through the open API, so signing protects nothing";
            if !self.allow_open_api {
                return Err(format!(
                    "{why}; set an --api-token, or --allow-open-api to run so anyway"
                ));
            }
            warnings.push(format!("{why} (--allow-open-api)"));
        }
        self.validate_webhooks()?;
        self.validate_store()?;
        self.validate_embed_origins()?;
        if self.encrypt && self.signing_key.is_none() {
            warnings
                .push("--encrypt without --signing-key: keys are served to anyone who asks".into());
        }
        warnings.extend(self.exposure());
        if self.allowed_hosts.iter().any(|h| h.trim() == "*") {
            warnings.push(
                "--allowed-host '*': any Host is answered, so a web page whose DNS name is \
                 rebound to this server can use its API"
                    .into(),
            );
        }
        Ok(warnings)
    }

    /// What an open API (no `--api-token`) exposes, said plainly: the
    /// first log lines and `/readyz` carry it. `None` when the API needs
    /// a token, or only this machine can reach it.
    pub fn exposure(&self) -> Option<String> {
        if !self.api_tokens.is_empty() {
            return None;
        }
        let why = if !self.trusted_proxies.is_empty() {
            "it sits behind --trusted-proxy (whoever reaches the proxy reaches it)".to_owned()
        } else if let Some(u) = &self.public_url {
            format!("it is published at --public-url {u}")
        } else if !self.listen.ip().is_loopback() {
            format!("it listens on {} (beyond this machine)", self.listen)
        } else {
            return None;
        };
        Some(format!(
            "the API is open (no --api-token) and {why}: anyone who can reach it can upload, \
             list and delete videos"
        ))
    }

    /// `--embed-origins`: CSP sources (`*`, `'self'`, `'none'`, an origin
    /// like `https://blog.example` or `https://*.example`), nothing that
    /// could end or extend the header.
    fn validate_embed_origins(&self) -> Result<(), String> {
        for o in &self.embed_origins {
            let o = o.trim();
            let keyword = ["*", "'self'", "'none'"].contains(&o);
            let origin = (o.starts_with("https://") || o.starts_with("http://"))
                && o.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b":/.-*[]".contains(&b));
            if !keyword && !origin {
                return Err(format!(
                    "--embed-origins: `{o}` is not `*`, `'self'`, `'none'` or an origin \
                     such as https://blog.example"
                ));
            }
        }
        Ok(())
    }

    fn validate_webhooks(&self) -> Result<(), String> {
        for url in &self.webhook_urls {
            if !is_http_url(url) {
                return Err(format!(
                    "--webhook-url `{url}` is not an http:// or https:// URL"
                ));
            }
        }
        let secret = self.webhook_secret.as_deref().unwrap_or("");
        if !self.webhook_urls.is_empty() && secret.len() < MIN_TOKEN_BYTES {
            return Err(format!(
                "--webhook-url needs a --webhook-secret of at least {MIN_TOKEN_BYTES} bytes \
                 (receivers check events with it)"
            ));
        }
        Ok(())
    }

    fn validate_store(&self) -> Result<(), String> {
        if self.store == StoreKind::File {
            if self.s3_endpoint.is_some() || self.s3_path_style || self.media_base_url.is_some() {
                return Err(
                    "--s3-endpoint, --s3-path-style and --media-base-url need --store s3://BUCKET"
                        .into(),
                );
            }
            return Ok(());
        }
        if self.media_base_url.is_some() && self.signing_key.is_some() {
            return Err(
                "--media-base-url with --signing-key: signed playback presigns segment URLs on \
                 the bucket instead; a public base would open every video (keys aside) to anyone"
                    .into(),
            );
        }
        if let Some(b) = &self.media_base_url {
            if !is_http_url(b) || b.contains('?') {
                return Err(format!(
                    "--media-base-url `{b}` is not an http:// or https:// URL"
                ));
            }
        }
        if let Some(e) = &self.s3_endpoint {
            if !is_http_url(e) {
                return Err(format!(
                    "--s3-endpoint `{e}` is not an http:// or https:// URL"
                ));
            }
        }
        let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
        if !set("AWS_ACCESS_KEY_ID") || !set("AWS_SECRET_ACCESS_KEY") {
            return Err(
                "--store s3://… needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the \
                 environment"
                    .into(),
            );
        }
        Ok(())
    }

    /// The defaults, as `hlsd` with no flags and no environment would run.
    pub fn with_storage(storage: PathBuf) -> Self {
        use clap::Parser;
        let mut c = Config::parse_from(["hlsd"]);
        c.storage = storage;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embed_origins_are_csp_sources_and_nothing_more() {
        let mut c = Config::with_storage("/tmp".into());
        for ok in [
            vec!["*"],
            vec!["'self'"],
            vec!["https://blog.example", " https://*.forum.example:8443 "],
        ] {
            c.embed_origins = ok.iter().map(|s| s.to_string()).collect();
            assert!(c.validate_embed_origins().is_ok(), "{ok:?}");
        }
        for bad in [
            "https://a.example; script-src *",
            "https://a.example script-src",
            "javascript:alert(1)",
            "a.example",
            "",
        ] {
            c.embed_origins = vec![bad.to_owned()];
            assert!(c.validate_embed_origins().is_err(), "{bad}");
        }
    }
}
