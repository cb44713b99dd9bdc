//! The `bearertokenauth` server authenticator: a request is let in only when its token header
//! (default `Authorization`) is exactly `"<scheme> <token>"` for one of the configured tokens,
//! as otelcol-contrib's `Authenticate` decides (the first value of the header counts).
//!
//! The check runs before anything of the request's body is read or charged; a refused request
//! is answered `Unauthenticated` / 401, counted, and never queued (see the receivers).
//!
//! Comparison is in constant time and independent of the token's length: both sides are
//! hashed with SHA-256 and the digests compared with `subtle`, against every configured token
//! without stopping at a match. Neither the expected values nor the received header are kept
//! in a form that `Debug` or an error could print.

use http::{HeaderMap, HeaderName};
use otelspool_config::BearerTokenAuthConfig;
use ring::digest::{SHA256, digest};
use subtle::{Choice, ConstantTimeEq};

/// Why the authenticator could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AuthBuildError {
    /// `header` is not a valid HTTP header name (validation should have caught it).
    #[error("bearertokenauth header is not a valid HTTP header name")]
    Header,
}

/// Why a request was not let in. Says nothing of what the client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// The token header is absent or empty.
    #[error("missing or empty authorization header")]
    Missing,
    /// The header does not hold `scheme token` for an accepted token.
    #[error("scheme or token does not match")]
    Mismatch,
}

/// A `bearertokenauth` extension, ready to check requests.
#[derive(Clone)]
pub struct BearerTokenAuth {
    header: HeaderName,
    /// SHA-256 of each accepted header value.
    accepted: Vec<[u8; 32]>,
}

impl std::fmt::Debug for BearerTokenAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerTokenAuth")
            .field("header", &self.header)
            .field("tokens", &self.accepted.len())
            .finish()
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

impl BearerTokenAuth {
    /// The authenticator `config` describes.
    pub fn new(config: &BearerTokenAuthConfig) -> Result<Self, AuthBuildError> {
        let header =
            HeaderName::from_bytes(config.header.as_bytes()).map_err(|_| AuthBuildError::Header)?;
        let accepted = config
            .accepted_tokens()
            .into_iter()
            .map(|t| {
                let value = if config.scheme.is_empty() {
                    t.expose().to_string()
                } else {
                    format!("{} {}", config.scheme, t.expose())
                };
                sha256(value.as_bytes())
            })
            .collect();
        Ok(BearerTokenAuth { header, accepted })
    }

    /// Lets the request with `headers` in, or says why not.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), AuthFailure> {
        let value = headers
            .get(&self.header)
            .map(|v| v.as_bytes())
            .filter(|v| !v.is_empty())
            .ok_or(AuthFailure::Missing)?;
        let got = sha256(value);
        let matched = self
            .accepted
            .iter()
            .fold(Choice::from(0), |any, want| any | want.ct_eq(&got));
        if bool::from(matched) {
            Ok(())
        } else {
            Err(AuthFailure::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use otelspool_config::Secret;

    use super::*;

    fn auth(scheme: &str, tokens: &[&str]) -> BearerTokenAuth {
        BearerTokenAuth::new(&BearerTokenAuthConfig {
            scheme: scheme.into(),
            tokens: tokens.iter().map(|t| Secret::new(*t)).collect(),
            ..Default::default()
        })
        .expect("auth")
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    /// Scenario: requests with the right token (any header-name case), a rotated second token,
    /// the wrong token, the wrong scheme, no scheme, no header, an empty header.
    /// Guarantees: only `scheme token` for a configured token is let in; the failure says
    /// missing or mismatch and nothing of what was sent; `Debug` shows no token.
    #[test]
    fn only_the_scheme_and_a_configured_token_let_a_request_in() {
        let a = auth("Bearer", &["t0k-one", "t0k-two"]);
        assert_eq!(
            a.check(&headers(&[("authorization", "Bearer t0k-one")])),
            Ok(())
        );
        assert_eq!(
            a.check(&headers(&[("Authorization", "Bearer t0k-two")])),
            Ok(())
        );
        let mismatch = [
            "Bearer t0k-three",
            "Basic t0k-one",
            "bearer t0k-one",
            "t0k-one",
            "Bearer t0k-one ",
        ];
        for sent in mismatch {
            let got = a.check(&headers(&[("authorization", sent)]));
            assert_eq!(got, Err(AuthFailure::Mismatch), "{sent:?}");
        }
        assert_eq!(a.check(&headers(&[])), Err(AuthFailure::Missing));
        assert_eq!(
            a.check(&headers(&[("authorization", "")])),
            Err(AuthFailure::Missing)
        );
        assert!(!format!("{a:?}").contains("t0k"), "{a:?}");
    }

    /// Scenario: an empty scheme and a custom header, as otelcol allows.
    /// Guarantees: the header must then hold the bare token, in the configured header.
    #[test]
    fn an_empty_scheme_means_the_bare_token_in_the_configured_header() {
        let a = BearerTokenAuth::new(&BearerTokenAuthConfig {
            scheme: String::new(),
            token: Some(Secret::new("k3y")),
            header: "X-Api-Key".into(),
            ..Default::default()
        })
        .expect("auth");
        assert_eq!(a.check(&headers(&[("x-api-key", "k3y")])), Ok(()));
        assert_eq!(
            a.check(&headers(&[("authorization", "k3y")])),
            Err(AuthFailure::Missing)
        );
        assert_eq!(
            a.check(&headers(&[("x-api-key", " k3y")])),
            Err(AuthFailure::Mismatch)
        );
    }
}
