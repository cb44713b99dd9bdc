//! Receiver `tls` and `auth` with otelcol's keys, and the `bearertokenauth` extension: what
//! loads, what is an error at which key, and that no message shows a token.

use std::path::Path;

use otelspool_config::{ComponentId, ConfigError, ExtensionConfig, ReceiverConfig, load_str};

const TOKEN: &str = "tok-7f3a9c-SECRET";

fn errors_of(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<ConfigError> {
    match load_str(text, "t.yaml", env) {
        Ok(_) => panic!("should not load:\n{text}"),
        Err(e) => e.0,
    }
}

fn assert_error(errors: &[ConfigError], path: &str, text: &str) {
    assert!(
        errors
            .iter()
            .any(|e| e.path == path && e.message.contains(text)),
        "expected {path} containing {text:?} in:\n{}",
        all(errors)
    );
}

fn all(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A config whose otlp receiver has `grpc` and `http` bodies as given, `extensions` as given
/// and `service.extensions` as given.
fn config(grpc: &str, http: &str, extensions: &str, listed: &str) -> String {
    format!(
        "receivers:
  otlp:
    protocols:
      grpc:
{grpc}      http:
{http}exporters:
  debug:
extensions:
{extensions}service:
  extensions: [{listed}]
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [debug]
"
    )
}

const TLS: &str = "        tls:
          cert_file: /etc/otelspool/server.pem
          key_file: /etc/otelspool/server-key.pem
";
const MTLS: &str = "        tls:
          cert_file: /etc/otelspool/server.pem
          key_file: /etc/otelspool/server-key.pem
          client_ca_file: /etc/otelspool/clients-ca.pem
";
const AUTH: &str = "        auth:
          authenticator: bearertokenauth/agents
";

/// Scenario: TLS on gRPC, mTLS on HTTP, both behind one `bearertokenauth/agents` whose token
/// comes from `${env:OTLP_TOKEN}`; a second extension with `tokens:` and its own scheme.
/// Guarantees: everything loads with the files, the authenticator id and the tokens as
/// written; the config's `Debug` shows no token.
#[test]
fn tls_mtls_and_bearer_tokens_load_as_otelcol_writes_them() {
    let text = config(
        &format!("{TLS}{AUTH}"),
        &format!("{MTLS}{AUTH}"),
        "  bearertokenauth/agents:
    token: ${env:OTLP_TOKEN}
  bearertokenauth/rotating:
    scheme: Token
    header: X-Api-Key
    tokens: [one-old-token, one-new-token]
",
        "bearertokenauth/agents, bearertokenauth/rotating",
    );
    let env = |n: &str| (n == "OTLP_TOKEN").then(|| TOKEN.to_string());
    let loaded = load_str(&text, "t.yaml", &env).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let cfg = &loaded.config;
    let ReceiverConfig::Otlp(otlp) = &cfg.receivers[&ComponentId::new("otlp")];
    let grpc = otlp.protocols.grpc.as_ref().expect("grpc");
    let tls = grpc.tls.as_ref().expect("grpc tls");
    assert_eq!(tls.cert_file, Path::new("/etc/otelspool/server.pem"));
    assert_eq!(tls.key_file, Path::new("/etc/otelspool/server-key.pem"));
    assert_eq!(tls.client_ca_file, None);
    let http = otlp.protocols.http.as_ref().expect("http");
    assert_eq!(
        http.tls.as_ref().and_then(|t| t.client_ca_file.as_deref()),
        Some(Path::new("/etc/otelspool/clients-ca.pem"))
    );
    let agents = ComponentId::with_name("bearertokenauth", "agents");
    for auth in [&grpc.auth, &http.auth] {
        assert_eq!(auth.as_ref().map(|a| &a.authenticator), Some(&agents));
    }
    let Some(ExtensionConfig::BearerTokenAuth(b)) = cfg.extensions.get(&agents) else {
        panic!("no bearertokenauth/agents: {:?}", cfg.extensions.keys());
    };
    assert_eq!(
        (b.scheme.as_str(), b.header.as_str()),
        ("Bearer", "Authorization")
    );
    let tokens: Vec<&str> = b.accepted_tokens().iter().map(|t| t.expose()).collect();
    assert_eq!(tokens, [TOKEN]);
    let rotating = ComponentId::with_name("bearertokenauth", "rotating");
    let Some(ExtensionConfig::BearerTokenAuth(r)) = cfg.extensions.get(&rotating) else {
        panic!("no bearertokenauth/rotating");
    };
    assert_eq!(
        (r.scheme.as_str(), r.header.as_str()),
        ("Token", "X-Api-Key")
    );
    let tokens: Vec<&str> = r.accepted_tokens().iter().map(|t| t.expose()).collect();
    assert_eq!(tokens, ["one-old-token", "one-new-token"]);
    let debug = format!("{cfg:?}");
    for secret in [TOKEN, "one-old-token", "one-new-token"] {
        assert!(!debug.contains(secret), "Debug shows a token: {debug}");
    }
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

/// Scenario: `auth.authenticator` naming an undefined extension, one defined but not listed in
/// `service.extensions`, and a `health_check` (not an authenticator).
/// Guarantees: each is an error at the protocol's `auth.authenticator`, as otelcol refuses to
/// start with "authenticator not found".
#[test]
fn an_authenticator_must_exist_be_listed_and_be_an_authenticator() {
    let auth = |id: &str| format!("        auth:\n          authenticator: {id}\n");
    let text = config(
        &auth("bearertokenauth/missing"),
        &auth("bearertokenauth/unlisted"),
        "  bearertokenauth/unlisted:\n    token: abcdefgh\n  health_check:\n",
        "health_check",
    );
    let errors = errors_of(&text, &|_| None);
    assert_error(
        &errors,
        "receivers.otlp.protocols.grpc.auth.authenticator",
        "\"bearertokenauth/missing\" is not defined in extensions",
    );
    assert_error(
        &errors,
        "receivers.otlp.protocols.http.auth.authenticator",
        "\"bearertokenauth/unlisted\" must be listed in service.extensions",
    );
    assert_eq!(errors.len(), 2, "{}", all(&errors));

    let text = config(
        &auth("health_check"),
        "",
        "  health_check:\n",
        "health_check",
    );
    let errors = errors_of(&text, &|_| None);
    assert_error(
        &errors,
        "receivers.otlp.protocols.grpc.auth.authenticator",
        "\"health_check\" is not an authenticator (supported: bearertokenauth)",
    );
    assert_eq!(errors.len(), 1, "{}", all(&errors));
}

/// Scenario: `bearertokenauth` without a token, with both `token` and `tokens`, with a token
/// from an unset variable, with an empty entry in `tokens`, with `filename`, with a token that
/// ends in a line break, and with an invalid header name.
/// Guarantees: each is an error at its key (`filename` also leaves the extension without a
/// token); no message contains a token.
#[test]
fn a_bearertokenauth_needs_exactly_one_usable_token_source() {
    let ext = |name: &str, body: &str| format!("  bearertokenauth/{name}:\n{body}");
    let extensions = [
        ext("none", "    scheme: Bearer\n"),
        ext(
            "both",
            &format!("    token: {TOKEN}\n    tokens: [other-token-1]\n"),
        ),
        ext("unset", "    token: ${env:NOT_SET_TOKEN}\n"),
        ext("hole", "    tokens: [other-token-1, \"\"]\n"),
        ext("file", "    filename: /run/secrets/token\n"),
        ext("newline", &format!("    token: \"{TOKEN}\\n\"\n")),
        ext(
            "header",
            &format!("    token: {TOKEN}\n    header: \"X Token\"\n"),
        ),
    ]
    .concat();
    let listed = "bearertokenauth/none, bearertokenauth/both, bearertokenauth/unset, \
                  bearertokenauth/hole, bearertokenauth/file, bearertokenauth/newline, \
                  bearertokenauth/header";
    let text = config("", "", &extensions, listed);
    let errors = errors_of(&text, &|_| None);
    let e = "extensions.bearertokenauth";
    assert_error(
        &errors,
        &format!("{e}/none"),
        "\"token\" or \"tokens\" is required",
    );
    assert_error(
        &errors,
        &format!("{e}/both"),
        "either \"token\" or \"tokens\", not both",
    );
    assert_error(
        &errors,
        &format!("{e}/unset.token"),
        "is empty: ${env:NOT_SET_TOKEN} is not set",
    );
    assert_error(&errors, &format!("{e}/hole.tokens[1]"), "must not be empty");
    assert_error(
        &errors,
        &format!("{e}/file.filename"),
        "not supported by otelspool",
    );
    assert_error(
        &errors,
        &format!("{e}/file"),
        "\"token\" or \"tokens\" is required",
    );
    assert_error(&errors, &format!("{e}/newline.token"), "control characters");
    assert_error(
        &errors,
        &format!("{e}/header.header"),
        "not a valid HTTP header name",
    );
    assert_eq!(errors.len(), 8, "{}", all(&errors));
    let shown = all(&errors);
    for secret in [TOKEN, "other-token-1"] {
        assert!(!shown.contains(secret), "a token is printed:\n{shown}");
    }
}

/// Scenario: a token written as a number, and a token written as a list (a type error).
/// Guarantees: the number is a token; the list's error names its kind, not its items (and
/// the extension is then without a token).
#[test]
fn a_token_of_the_wrong_type_is_never_quoted() {
    let text = config(
        "",
        "",
        "  bearertokenauth/n:\n    token: 8675309123\n  bearertokenauth/l:\n    token: [tok-in-a-list]\n",
        "bearertokenauth/n, bearertokenauth/l",
    );
    let errors = errors_of(&text, &|_| None);
    assert_error(
        &errors,
        "extensions.bearertokenauth/l.token",
        "invalid type: sequence",
    );
    assert_error(&errors, "extensions.bearertokenauth/l", "is required");
    assert_eq!(errors.len(), 2, "{}", all(&errors));
    assert!(!all(&errors).contains("tok-in-a-list"), "{}", all(&errors));
}

/// Scenario: `tls:` with no value, and `tls:` with only a certificate or an empty CA file.
/// Guarantees: TLS without a certificate is an error at each missing key, not plaintext.
#[test]
fn tls_needs_a_certificate_and_its_key() {
    let text = config(
        "        tls:\n",
        "        tls:\n          cert_file: /c.pem\n          client_ca_file: \"\"\n",
        "",
        "",
    );
    let errors = errors_of(&text, &|_| None);
    let g = "receivers.otlp.protocols.grpc.tls";
    let h = "receivers.otlp.protocols.http.tls";
    assert_error(&errors, &format!("{g}.cert_file"), "must not be empty");
    assert_error(&errors, &format!("{g}.key_file"), "must not be empty");
    assert_error(&errors, &format!("{h}.key_file"), "must not be empty");
    assert_error(&errors, &format!("{h}.client_ca_file"), "must not be empty");
    assert_eq!(errors.len(), 4, "{}", all(&errors));
}
