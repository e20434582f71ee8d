//! Secrets for the expressions the server renders itself (a webhook's `key`, its conditions):
//! `secret('NAME')` is the environment variable `SECRET_NAME`, base64-encoded, as in Kestra's
//! open-source edition.

use base64::Engine as _;
use weft_flow::expr::ExprHost;

/// `secret()` from `SECRET_*` environment variables.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct EnvSecrets;

impl ExprHost for EnvSecrets {
    fn secret(&self, key: &str) -> Result<String, String> {
        let name = format!("SECRET_{key}");
        let encoded = std::env::var(&name)
            .map_err(|_| format!("secret `{key}` does not exist (set the environment variable {name}, base64-encoded)"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| format!("secret `{key}`: {name} is not base64: {e}"))?;
        String::from_utf8(bytes).map_err(|_| format!("secret `{key}`: {name} is not UTF-8 text"))
    }
}
