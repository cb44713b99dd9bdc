//! Receiver security from the config: each protocol's `tls` files loaded (off the async
//! workers) and its `auth.authenticator` resolved to a ready [`BearerTokenAuth`].

use std::sync::Arc;

use otelspool_config as cfg;

use super::error::BuildError;
use crate::receivers::auth::BearerTokenAuth;
use crate::receivers::tls::ServerTls;

/// ALPN of the gRPC receiver: HTTP/2 only.
pub(super) const GRPC_ALPN: &[&[u8]] = &[b"h2"];
/// ALPN of the HTTP receiver: HTTP/2 and HTTP/1.1.
pub(super) const HTTP_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// The TLS and the authenticator of one receiver protocol.
pub(super) async fn protocol_security(
    config: &cfg::Config,
    receiver: &cfg::ComponentId,
    protocol: &'static str,
    tls: Option<&cfg::TlsServerConfig>,
    auth: Option<&cfg::ServerAuthConfig>,
    alpn: &'static [&'static [u8]],
) -> Result<(Option<ServerTls>, Option<Arc<BearerTokenAuth>>), BuildError> {
    let tls = match tls.cloned() {
        None => None,
        Some(t) => {
            let load = move || {
                ServerTls::load(&t.cert_file, &t.key_file, t.client_ca_file.as_deref(), alpn)
            };
            let loaded = tokio::task::spawn_blocking(load)
                .await
                .map_err(|e| BuildError::Invalid(format!("loading TLS files: {e}")))?;
            Some(loaded.map_err(|source| BuildError::ReceiverTls {
                id: receiver.to_string(),
                protocol,
                source,
            })?)
        }
    };
    let auth = match auth {
        None => None,
        Some(a) => {
            let id = &a.authenticator;
            let Some(cfg::ExtensionConfig::BearerTokenAuth(b)) = config
                .service
                .extensions
                .contains(id)
                .then(|| config.extensions.get(id))
                .flatten()
            else {
                return Err(BuildError::Invalid(format!(
                    "receiver {receiver} ({protocol}): authenticator {id} not found"
                )));
            };
            let auth = BearerTokenAuth::new(b).map_err(|e| {
                BuildError::Invalid(format!("receiver {receiver} ({protocol}): {e}"))
            })?;
            Some(Arc::new(auth))
        }
    };
    Ok((tls, auth))
}
