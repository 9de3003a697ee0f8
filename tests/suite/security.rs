//! Credentials: per-side settings, secrets from the environment or files, never printed, and a
//! warning for a credentials file every user can read.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use crate::common::*;
use kmirror_testcontainers::scram::Mechanism;
use kmirror_testcontainers::scram_broker::{ScramBroker, ScramTls};
use kmirror_testcontainers::tls::CertAuthority;
use kmirror_testcontainers::{audit_mirror, Backend, KafkaCluster};

const SOURCE_PW: &str = "src-Pa55word-from-file";
const TARGET_PW: &str = "dst-Pa55word-from-env";
const INLINE_PW: &str = "inline-Pa55word";

fn kmirror(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = kmirror_command();
    command
        .args(args)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command.spawn().expect("kmirror starts");
    child.wait_with_output().expect("output")
}

fn all_output(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn assert_no_secret(text: &str) {
    for secret in [SOURCE_PW, TARGET_PW, INLINE_PW] {
        assert!(!text.contains(secret), "a password was printed:\n{text}");
    }
}

/// A properties file for the source user `reader` (SCRAM-SHA-256) whose password is read from a
/// second file, `${file:...}`; returns (password file, properties file).
fn source_credentials(dir: &std::path::Path, protocol: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let secret_file = dir.join("source.pw");
    std::fs::write(&secret_file, format!("{SOURCE_PW}\n")).expect("write");
    let props = dir.join("source.properties");
    std::fs::write(
        &props,
        format!(
            "security.protocol={protocol}\nsasl.mechanism=SCRAM-SHA-256\nsasl.username=reader\nsasl.password=${{file:{}}}\n",
            secret_file.display()
        ),
    )
    .expect("write");
    (secret_file, props)
}

#[test]
fn print_config_resolves_references_redacts_secrets_and_warns_about_readable_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, props) = source_credentials(dir.path(), "SASL_SSL");
    std::fs::set_permissions(&props, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let args = [
        "mirror",
        "--source",
        "src:9092",
        "--target",
        "dst:9092",
        "--name",
        "sec",
        "--topics",
        "orders",
        "--source-config",
        props.to_str().expect("path"),
        "--set",
        "target.security.protocol=SASL_PLAINTEXT",
        "--set",
        "target.sasl.mechanism=SCRAM-SHA-512",
        "--set",
        "target.sasl.username=writer",
        "--set",
        "target.sasl.password=${env:KMIRROR_TEST_TARGET_SECRET}",
        "--print-config",
    ];
    let out = kmirror(&args, &[("KMIRROR_TEST_TARGET_SECRET", TARGET_PW)]);
    assert!(out.status.success(), "{}", all_output(&out));
    let text = all_output(&out);
    assert_no_secret(&text);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let config: toml::Value = toml::from_str(&stdout).expect("the printed configuration is TOML");
    let side = |s: &str, k: &str| config[s]["properties"].get(k).and_then(|v| v.as_str()).map(String::from);
    assert_eq!(side("source", "sasl.username").as_deref(), Some("reader"));
    assert_eq!(side("source", "sasl.mechanism").as_deref(), Some("SCRAM-SHA-256"));
    assert_eq!(side("source", "sasl.password").as_deref(), Some("[redacted]"));
    assert_eq!(side("target", "sasl.username").as_deref(), Some("writer"));
    assert_eq!(side("target", "sasl.mechanism").as_deref(), Some("SCRAM-SHA-512"));
    assert_eq!(side("target", "sasl.password").as_deref(), Some("[redacted]"));
    assert_eq!(side("target", "security.protocol").as_deref(), Some("SASL_PLAINTEXT"), "sides never mix");
    assert!(
        stderr(&out).contains("chmod 600"),
        "a readable credentials file is warned about: {}",
        stderr(&out)
    );

    // A missing reference is named, without any value.
    let out = kmirror(&args, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    assert!(stderr(&out).contains("KMIRROR_TEST_TARGET_SECRET is not set"), "{}", stderr(&out));
    assert_no_secret(&all_output(&out));
}

#[test]
fn a_run_that_fails_authentication_never_logs_the_password() {
    let setup = Setup::new();
    let t = topic("auth");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    // The test brokers take no SASL: the handshake fails, as with a wrong password.
    let set_pw = format!("source.sasl.password={INLINE_PW}");
    let target_pw = format!("target.sasl.password={INLINE_PW}");
    let mut args = setup.args(
        &t,
        &[
            "--connect-timeout",
            "3",
            "--set",
            "source.security.protocol=SASL_PLAINTEXT",
            "--set",
            "source.sasl.mechanism=PLAIN",
            "--set",
            "source.sasl.username=alice",
            "--set",
            &set_pw,
            "--set",
            "target.security.protocol=SASL_PLAINTEXT",
            "--set",
            "target.sasl.mechanism=SCRAM-SHA-256",
            "--set",
            "target.sasl.username=bob",
            "--set",
            &target_pw,
            "--set",
            "source.debug=security,broker",
        ],
    );
    args.push("--until-caught-up".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = kmirror(&args, &[]);
    assert!(!out.status.success(), "authentication cannot succeed: {}", all_output(&out));
    let text = all_output(&out);
    assert!(text.contains("target cluster"), "the error names the side: {text}");
    assert_no_secret(&text);
    assert_eq!(setup.target.partition_count(&t).expect("metadata"), None, "nothing written on the target");
}

const WRONG_PW: &str = "not-the-password";

fn one_line_auth_error(out: &std::process::Output, side: &str) {
    assert!(!out.status.success(), "must fail: {}", all_output(out));
    let line =
        stderr(out).lines().find(|l| l.starts_with("kmirror: error:")).map(String::from).unwrap_or_default();
    assert!(
        line.contains(&format!("{side} cluster")) && line.contains("authentication failed"),
        "one line naming the {side} side: {}",
        stderr(out)
    );
}

/// The target login of the SCRAM test as `--set` flags: user `writer`, password from the
/// environment, over TLS (SASL_SSL) when `ca` names the target's CA.
fn target_login(mechanism: &str, ca: Option<&std::path::Path>) -> Vec<String> {
    let mut settings = vec![
        format!("target.sasl.mechanism={mechanism}"),
        "target.sasl.username=writer".to_string(),
        "target.sasl.password=${env:KMIRROR_TEST_TARGET_SECRET}".to_string(),
    ];
    match ca {
        Some(ca) => {
            settings.push("target.security.protocol=SASL_SSL".into());
            settings.push(format!("target.ssl.ca.location={}", ca.display()));
        }
        None => settings.push("target.security.protocol=SASL_PLAINTEXT".into()),
    }
    settings.into_iter().flat_map(|setting| ["--set".to_string(), setting]).collect()
}

/// SCRAM end to end on the broker's own SASL listeners: a source that enables only
/// SCRAM-SHA-256 (user reader) mirrored to a target that enables only SCRAM-SHA-512 (user
/// writer), users created by Kafka's own storage tool (Tansu behind a SCRAM front when
/// `KMIRROR_TEST_BROKER=tansu`). See [`scram_case`].
#[test]
fn scram_on_each_side_mirrors_exactly_once_and_a_bad_login_names_its_side() {
    scram_case(KafkaCluster::start_scram).expect("SCRAM test brokers start");
}

/// The source password comes from a file named in a properties file, the target's from the
/// environment. A wrong password, the other side's mechanism or no SASL at all fails with one
/// line naming the side, writes nothing and prints no password; the right settings mirror
/// every record exactly once (transaction-aware audit). Errs only when the clusters cannot start.
fn scram_case(
    start: fn(ScramBroker<'_>) -> kmirror_testcontainers::Result<KafkaCluster>,
) -> kmirror_testcontainers::Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = start(ScramBroker {
        mechanisms: &[Mechanism::ScramSha256],
        users: &[("reader".into(), SOURCE_PW.into())],
        tls: None,
        authorizer: false,
    })?;
    // The target's SCRAM runs over TLS (SASL_SSL) where the broker has its own TLS.
    let ca = CertAuthority::new(dir.path(), "target-ca").expect("CA");
    let server = ca.issue("broker", "DNS:localhost", false).expect("certificate");
    let over_tls = Backend::local().expect("broker choice") == Backend::ApacheKafka;
    let tls =
        over_tls.then_some(ScramTls { server: &server, ca: &ca.cert, host: "localhost", dir: dir.path() });
    let target = start(ScramBroker {
        mechanisms: &[Mechanism::ScramSha512],
        users: &[("writer".into(), TARGET_PW.into())],
        tls,
        authorizer: false,
    })?;
    let target_ca = over_tls.then_some(ca.cert.as_path());
    let t = topic("scram");
    source.create_topic(&t, 2, &[]).expect("topic over SCRAM");
    for p in 0..2 {
        source.produce(&t, p, &keyed(&format!("p{p}"), 0..300)).expect("produce over SCRAM");
    }

    let (secret_file, props) = source_credentials(dir.path(), "SASL_PLAINTEXT");
    for file in [&secret_file, &props] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let args = |source_sasl: bool, target_mechanism: &str| -> Vec<String> {
        let state = dir.path().join(format!("state-{}", kmirror_testcontainers::unique_suffix()));
        let mut args: Vec<String> = [
            "mirror",
            "--source",
            source.bootstrap(),
            "--target",
            target.bootstrap(),
            "--name",
            "scram",
            "--topics",
            &t,
            "--until-caught-up",
            "--connect-timeout",
            "5",
            "--transaction-max-ms",
            "100",
            "--state-dir",
            &state.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(target_login(target_mechanism, target_ca));
        if source_sasl {
            args.extend(["--source-config".to_string(), props.display().to_string()]);
        }
        args
    };
    let run_with = |args: &[String], target_password: &str| {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = kmirror(&argv, &[("KMIRROR_TEST_TARGET_SECRET", target_password)]);
        let text = all_output(&out);
        assert_no_secret(&text);
        assert!(!text.contains(WRONG_PW), "a password was printed:\n{text}");
        out
    };

    // The broker's own word that it refused the login (Apache Kafka's server log).
    let broker_refusals = || target.broker_log_count("Failed authentication");
    let kafka = *target.backend() == kmirror_testcontainers::Backend::ApacheKafka;
    let refusals_before = broker_refusals();
    let out = run_with(&args(true, "SCRAM-SHA-512"), WRONG_PW);
    one_line_auth_error(&out, "target");
    let refused = target.sasl_proxy().map(|front| front.refused());
    assert_ne!(refused, Some(0), "the target's front refused the wrong password");
    let refusals_wrong_password = broker_refusals();
    assert!(
        !kafka || refusals_wrong_password > refusals_before,
        "the target broker refused the wrong password"
    );
    let out = run_with(&args(true, "SCRAM-SHA-256"), TARGET_PW);
    one_line_auth_error(&out, "target");
    if let (Some(before), Some(front)) = (refused, target.sasl_proxy()) {
        assert!(front.refused() > before, "the target's front refused SCRAM-SHA-256");
    }
    assert!(!kafka || broker_refusals() > refusals_wrong_password, "the target broker refused SCRAM-SHA-256");
    // Without SASL the front closes the connection at the first request after ApiVersions.
    let closed_before = source.sasl_proxy().map(|front| front.unauthenticated());
    let out = run_with(&args(false, "SCRAM-SHA-512"), TARGET_PW);
    assert!(!out.status.success(), "a source without SASL settings cannot be read: {}", all_output(&out));
    assert!(stderr(&out).contains("source cluster"), "the error names the source: {}", stderr(&out));
    if let (Some(before), Some(front)) = (closed_before, source.sasl_proxy()) {
        assert!(front.unauthenticated() > before, "the source's front closed the unauthenticated client");
    }
    assert_eq!(target.partition_count(&t).expect("metadata"), None, "nothing written after failed logins");

    let logins_before = target.sasl_proxy().map(|front| front.authenticated());
    let out = run_with(&args(true, "SCRAM-SHA-512"), TARGET_PW);
    assert!(out.status.success(), "{}", all_output(&out));
    if let (Some(before), Some(front)) = (logins_before, target.sasl_proxy()) {
        assert!(front.authenticated() > before, "kmirror logged in to the target's front");
    }

    // The one-shot commands name a login failure the same way.
    let mut status: Vec<String> =
        ["status", "--target", target.bootstrap(), "--name", "scram"].iter().map(|s| s.to_string()).collect();
    status.extend(target_login("SCRAM-SHA-512", target_ca));
    one_line_auth_error(&run_with(&status, WRONG_PW), "target");
    let out = run_with(&status, TARGET_PW);
    assert!(out.status.success(), "status with the right password: {}", all_output(&out));
    for audit in audit_mirror(&source, &t, &target, &t, 2).expect("audit") {
        assert_eq!((audit.duplicates, audit.missing), (0, 0), "{audit:?}");
        assert!(audit.identical && audit.source_records == 300, "{audit:?}");
    }
    Ok(())
}
