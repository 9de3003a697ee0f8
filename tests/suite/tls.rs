//! TLS end to end: a source that requires a client certificate (CA A) mirrored to a target with
//! another CA (B), on the brokers' own TLS listeners with certificates made at test time; a wrong
//! CA, a wrong host name or a missing client certificate is a one-line TLS error naming the side,
//! and nothing is written.

use std::path::Path;

use crate::common::*;
use kmirror_testcontainers::tls::{CertAuthority, Identity, TlsBroker};
use kmirror_testcontainers::{audit_mirror, KafkaCluster};

struct Clusters {
    dir: tempfile::TempDir,
    source: KafkaCluster,
    target: KafkaCluster,
    source_ca: CertAuthority,
    target_ca: CertAuthority,
    client: Identity,
}

fn props(pairs: &[(&str, &Path)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.display().to_string())).collect()
}

fn tls_clusters() -> Clusters {
    let dir = tempfile::tempdir().expect("tempdir");
    let source_ca = CertAuthority::new(dir.path(), "source-ca").expect("CA");
    let target_ca = CertAuthority::new(dir.path(), "target-ca").expect("CA");
    let source_server = source_ca.issue("broker", "DNS:localhost", false).expect("cert");
    let target_server = target_ca.issue("broker", "DNS:localhost", false).expect("cert");
    let client = source_ca.issue("kmirror", "DNS:kmirror", true).expect("client cert");
    let mut source_props = props(&[
        ("ssl.ca.location", &source_ca.cert),
        ("ssl.certificate.location", &client.cert),
        ("ssl.key.location", &client.key),
    ]);
    source_props.push(("security.protocol".into(), "SSL".into()));
    let source = KafkaCluster::start_tls(TlsBroker {
        server: &source_server,
        client_ca: Some(&source_ca.cert),
        host: "localhost",
        client_properties: source_props,
        dir: dir.path(),
    })
    .expect("TLS source");
    let mut target_props = props(&[("ssl.ca.location", &target_ca.cert)]);
    target_props.push(("security.protocol".into(), "SSL".into()));
    let target = KafkaCluster::start_tls(TlsBroker {
        server: &target_server,
        client_ca: None,
        host: "localhost",
        client_properties: target_props,
        dir: dir.path(),
    })
    .expect("TLS target");
    Clusters { dir, source, target, source_ca, target_ca, client }
}

impl Clusters {
    fn mirror_args(
        &self,
        topic: &str,
        target_bootstrap: &str,
        target_ca: &Path,
        with_client_cert: bool,
    ) -> Vec<String> {
        let state = self.dir.path().join(format!("state-{}", kmirror_testcontainers::unique_suffix()));
        let mut args: Vec<String> = [
            "mirror",
            "--source",
            self.source.bootstrap(),
            "--target",
            target_bootstrap,
            "--name",
            "tls",
            "--topics",
            topic,
            "--until-caught-up",
            "--connect-timeout",
            "5",
            "--transaction-max-ms",
            "100",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(["--state-dir".to_string(), state.display().to_string()]);
        let mut set = vec![
            "source.security.protocol=SSL".to_string(),
            format!("source.ssl.ca.location={}", self.source_ca.cert.display()),
            "target.security.protocol=SSL".to_string(),
            format!("target.ssl.ca.location={}", target_ca.display()),
        ];
        if with_client_cert {
            set.push(format!("source.ssl.certificate.location={}", self.client.cert.display()));
            set.push(format!("source.ssl.key.location={}", self.client.key.display()));
        }
        for s in set {
            args.extend(["--set".to_string(), s]);
        }
        args
    }
}

fn one_line_tls_error(out: &std::process::Output, side: &str) {
    assert!(!out.status.success(), "must fail: {}", stderr(out));
    let line =
        stderr(out).lines().find(|l| l.starts_with("kmirror: error:")).map(String::from).unwrap_or_default();
    assert!(line.contains(&format!("{side} cluster")) && line.contains("TLS failed"), "{}", stderr(out));
}

#[test]
fn mirrors_from_a_mutual_tls_source_to_a_tls_target_and_names_the_side_of_a_tls_fault() {
    let c = tls_clusters();
    let t = topic("tls");
    c.source.create_topic(&t, 2, &[]).expect("topic");
    for p in 0..2 {
        c.source.produce(&t, p, &keyed(&format!("p{p}"), 0..300)).expect("produce over TLS");
    }

    // The CA of the other cluster: refused before anything is written.
    let out = run(
        &c.mirror_args(&t, c.target.bootstrap(), &c.source_ca.cert, true),
        std::time::Duration::from_secs(60),
    );
    one_line_tls_error(&out, "target");
    // A host name the target's certificate does not name.
    let by_ip = c.target.bootstrap().replace("localhost", "127.0.0.1");
    let out = run(&c.mirror_args(&t, &by_ip, &c.target_ca.cert, true), std::time::Duration::from_secs(60));
    one_line_tls_error(&out, "target");
    // No client certificate for a source that requires one.
    let out = run(
        &c.mirror_args(&t, c.target.bootstrap(), &c.target_ca.cert, false),
        std::time::Duration::from_secs(60),
    );
    one_line_tls_error(&out, "source");
    assert_eq!(c.target.partition_count(&t).expect("metadata"), None, "nothing written after TLS faults");

    let out = run(
        &c.mirror_args(&t, c.target.bootstrap(), &c.target_ca.cert, true),
        std::time::Duration::from_secs(90),
    );
    assert_success(&out);
    for audit in audit_mirror(&c.source, &t, &c.target, &t, 2).expect("audit") {
        assert_eq!((audit.duplicates, audit.missing), (0, 0), "{audit:?}");
        assert!(audit.identical && audit.source_records == 300, "{audit:?}");
    }
}
