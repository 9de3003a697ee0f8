//! Brokers with TLS for tests: certificate authorities and certificates made at test time with
//! the `openssl` command; Apache Kafka with a TLS listener of its own (PEM key store, client
//! certificates when asked), or a Tansu broker whose only advertised listener is a
//! TLS-terminating `stunnel` in front of it (Tansu's own TLS did not work in our trials).
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::apache_kafka::{ClientListener, KafkaSpec, ServerTls};
use crate::cluster::{free_loopback_port, spawn_tansu, wait_until_listening};
use crate::error::{Error, Result};
use crate::{Backend, KafkaCluster};

/// A certificate and its private key, as PEM files.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A throw-away certificate authority in a directory.
#[derive(Debug, Clone)]
pub struct CertAuthority {
    dir: PathBuf,
    name: String,
    pub cert: PathBuf,
    key: PathBuf,
}

fn openssl(args: &[&str]) -> Result<()> {
    let out = Command::new("openssl").args(args).stdin(Stdio::null()).output().map_err(|source| {
        Error::Spawn { binary: "openssl (install Debian's openssl package)".into(), source }
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Tls(format!("openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr))))
    }
}

/// A new P-256 key in `key` and, in `out`, a certificate request for it or (`self_signed`) a
/// self-signed certificate.
fn new_key(key: &Path, out: &Path, subject: &str, self_signed: bool) -> Result<()> {
    let mut args = vec!["req"];
    if self_signed {
        args.extend(["-x509", "-days", "2"]);
    }
    let subject = format!("/CN={subject}");
    args.extend(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]);
    args.extend(["-keyout", path_str(key)?, "-out", path_str(out)?, "-subj", &subject]);
    openssl(&args)
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| Error::Tls(format!("not a UTF-8 path: {}", path.display())))
}

impl CertAuthority {
    pub fn new(dir: &Path, name: &str) -> Result<Self> {
        let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
        new_key(&key, &cert, name, true)?;
        Ok(Self { dir: dir.to_path_buf(), name: name.to_string(), cert, key })
    }

    /// Issues a certificate for `subject_alt_names` (e.g. "DNS:localhost"), for a server or,
    /// with `client`, for a client.
    pub fn issue(&self, name: &str, subject_alt_names: &str, client: bool) -> Result<Identity> {
        let stem = format!("{}-{name}", self.name);
        let (cert, key, csr, ext) = (
            self.dir.join(format!("{stem}.pem")),
            self.dir.join(format!("{stem}.key")),
            self.dir.join(format!("{stem}.csr")),
            self.dir.join(format!("{stem}.ext")),
        );
        let usage = if client { "clientAuth" } else { "serverAuth" };
        std::fs::write(&ext, format!("subjectAltName={subject_alt_names}\nextendedKeyUsage={usage}\n"))?;
        new_key(&key, &csr, name, false)?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            path_str(&csr)?,
            "-CA",
            path_str(&self.cert)?,
            "-CAkey",
            path_str(&self.key)?,
            "-CAcreateserial",
            "-out",
            path_str(&cert)?,
            "-days",
            "2",
            "-extfile",
            path_str(&ext)?,
        ])?;
        Ok(Identity { cert, key })
    }
}

/// Kafka's PEM key store is one file: the key, then the certificate. Written into `dir`.
pub(crate) fn pem_keystore(dir: &Path, identity: &Identity) -> Result<PathBuf> {
    let keystore = dir.join(format!("keystore-{}.pem", crate::unique_suffix()));
    let mut pem = std::fs::read(&identity.key)?;
    pem.extend(std::fs::read(&identity.cert)?);
    std::fs::write(&keystore, pem)?;
    Ok(keystore)
}

/// How a TLS broker is set up.
pub struct TlsBroker<'a> {
    /// The certificate the proxy presents.
    pub server: &'a Identity,
    /// Clients must present a certificate signed by this CA, if set.
    pub client_ca: Option<&'a Path>,
    /// The host name clients use (and the broker advertises).
    pub host: &'a str,
    /// Settings the harness's own clients need to connect (CA, client certificate).
    pub client_properties: Vec<(String, String)>,
    /// Where the proxy's configuration is written.
    pub dir: &'a Path,
}

impl KafkaCluster {
    /// A cluster whose only client listener is TLS: Apache Kafka's own, or Tansu behind stunnel
    /// when `KMIRROR_TEST_BROKER=tansu`.
    pub fn start_tls(setup: TlsBroker<'_>) -> Result<Self> {
        if Backend::local()? == Backend::Tansu {
            return Self::start_tansu_tls(setup);
        }
        let tls = ServerTls {
            keystore: pem_keystore(setup.dir, setup.server)?,
            client_ca: setup.client_ca.map(Path::to_path_buf),
            host: setup.host.to_string(),
        };
        let spec = KafkaSpec {
            nodes: 1,
            listener: ClientListener::Tls(tls),
            users: Vec::new(),
            overrides: Vec::new(),
            client_round_trip: None,
            version: None,
        };
        Self::start_kafka_for(&spec, setup.client_properties)
    }

    /// A Tansu broker listening in plain TCP on one port and advertising `host:P`, where a
    /// stunnel proxy on P terminates TLS. Raw protocol reads of the harness use the plain port.
    pub fn start_tansu_tls(setup: TlsBroker<'_>) -> Result<Self> {
        let (plain, tls) = (free_loopback_port()?, free_loopback_port()?);
        let listener = format!("tcp://127.0.0.1:{plain}");
        let advertised = format!("tcp://{}:{tls}", setup.host);
        let child = spawn_tansu(plain, &listener, &advertised)?;
        let mut cluster = Self::handle(format!("{}:{tls}", setup.host), Backend::Tansu, Some(child));
        cluster.plain_address = Some(format!("127.0.0.1:{plain}"));
        cluster.client_properties = setup.client_properties;
        wait_until_listening(&format!("127.0.0.1:{plain}"))?;
        let mut conf = format!(
            "foreground = yes\npid =\ndebug = 3\n[kafka]\naccept = 127.0.0.1:{tls}\nconnect = 127.0.0.1:{plain}\ncert = {}\nkey = {}\n",
            path_str(&setup.server.cert)?,
            path_str(&setup.server.key)?,
        );
        if let Some(ca) = setup.client_ca {
            conf.push_str(&format!("CAfile = {}\nverifyChain = yes\nrequireCert = yes\n", path_str(ca)?));
        }
        let conf_path = setup.dir.join(format!("stunnel-{tls}.conf"));
        std::fs::write(&conf_path, conf)?;
        let mut stunnel = Command::new("stunnel4");
        stunnel.arg(&conf_path).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let proxy = crate::spawner::spawn_tied(stunnel)
            .map_err(|source| Error::Spawn { binary: "stunnel4 (run scripts/setup.sh)".into(), source })?;
        cluster.proxy = Some(proxy);
        wait_until_listening(&format!("127.0.0.1:{tls}"))?;
        Ok(cluster)
    }
}
