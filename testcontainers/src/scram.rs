//! The server side of SCRAM (RFC 5802, RFC 7677) for the SASL front of test brokers. The test
//! broker's own SCRAM does not work, so this checks what matters for kmirror: that each side's
//! clients authenticate with the mechanism, user and password that side was given. librdkafka
//! checks the server's signature in turn, so a mistake here fails the tests rather than hiding.
//! The primitives (HMAC, SHA-2, PBKDF2) come from RustCrypto; no maintained crate offers a
//! SCRAM-SHA-512 server, so the message exchange is written here.
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// Kafka's default iteration count for SCRAM credentials.
pub const ITERATIONS: u32 = 4096;

/// A SCRAM mechanism Kafka supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    /// The SASL name clients ask for in `sasl.mechanism`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::ScramSha256, Self::ScramSha512].into_iter().find(|m| m.name() == name)
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length, so creating it cannot fail.
        match self {
            Self::ScramSha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Self::ScramSha512 => {
                let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC accepts any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::ScramSha256 => Sha256::digest(data).to_vec(),
            Self::ScramSha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::ScramSha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
                out.to_vec()
            }
            Self::ScramSha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// What the server stores for a user: never the password itself.
#[derive(Debug, Clone)]
pub struct Credential {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl Credential {
    pub fn new(mechanism: Mechanism, password: &str, salt: &[u8], iterations: u32) -> Self {
        let salted = mechanism.salted_password(password, salt, iterations);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        Self {
            salt: salt.to_vec(),
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(&salted, b"Server Key"),
        }
    }
}

/// The credentials of one mechanism, by user name.
pub type Credentials = HashMap<String, Credential>;

/// Builds the credentials of `users` (name, password) for `mechanism`, each with its own salt.
pub fn credentials(mechanism: Mechanism, users: &[(String, String)]) -> Credentials {
    users
        .iter()
        .map(|(name, password)| {
            (name.clone(), Credential::new(mechanism, password, &random_bytes(), ITERATIONS))
        })
        .collect()
}

/// What the server answers to one client message.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this and wait for the next client message.
    Continue(Vec<u8>),
    /// Authenticated: send this last message (the server's signature).
    Success { response: Vec<u8>, user: String },
    /// Refused, with the reason (for the broker-side log, never sent with a secret in it).
    Failure(String),
}

enum State {
    First,
    Final { gs2_header: String, client_first_bare: String, server_first: String, nonce: String, user: String },
    Done,
}

/// One client's authentication, message by message.
pub struct Exchange<'a> {
    mechanism: Mechanism,
    credentials: &'a Credentials,
    server_nonce: String,
    state: State,
}

impl<'a> Exchange<'a> {
    pub fn new(mechanism: Mechanism, credentials: &'a Credentials) -> Self {
        Self::with_nonce(mechanism, credentials, random_token())
    }

    /// With a fixed server nonce, for the RFC's test vectors.
    pub fn with_nonce(mechanism: Mechanism, credentials: &'a Credentials, server_nonce: String) -> Self {
        Self { mechanism, credentials, server_nonce, state: State::First }
    }

    pub fn step(&mut self, message: &[u8]) -> Step {
        let Ok(message) = std::str::from_utf8(message) else {
            return self.fail("client message is not UTF-8");
        };
        match std::mem::replace(&mut self.state, State::Done) {
            State::First => self.client_first(message),
            State::Final { gs2_header, client_first_bare, server_first, nonce, user } => {
                self.client_final(message, &gs2_header, &client_first_bare, &server_first, &nonce, user)
            }
            State::Done => self.fail("message after the exchange ended"),
        }
    }

    fn fail(&mut self, reason: impl Into<String>) -> Step {
        self.state = State::Done;
        Step::Failure(reason.into())
    }

    fn client_first(&mut self, message: &str) -> Step {
        // gs2-header is "n,," or "y,," optionally with an authzid: "n,a=name,".
        let mut parts = message.splitn(3, ',');
        let (Some(binding), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
            return self.fail("client-first message without a gs2 header");
        };
        if binding != "n" && binding != "y" {
            return self.fail("channel binding is not supported");
        }
        let gs2_header = format!("{binding},{authzid},");
        let attributes = attributes(bare);
        let (Some(user), Some(client_nonce)) = (attributes.get("n"), attributes.get("r")) else {
            return self.fail("client-first message without user or nonce");
        };
        let user = user.replace("=2C", ",").replace("=3D", "=");
        let Some(credential) = self.credentials.get(&user) else {
            return self.fail(format!("unknown user {user:?}"));
        };
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first =
            format!("r={nonce},s={},i={}", BASE64.encode(&credential.salt), credential.iterations);
        self.state = State::Final {
            gs2_header,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
            user,
        };
        Step::Continue(server_first.into_bytes())
    }

    fn client_final(
        &mut self,
        message: &str,
        gs2_header: &str,
        client_first_bare: &str,
        server_first: &str,
        nonce: &str,
        user: String,
    ) -> Step {
        let Some((without_proof, proof)) = message.rsplit_once(",p=") else {
            return self.fail("client-final message without a proof");
        };
        let attributes = attributes(without_proof);
        if attributes.get("c").map(|c| BASE64.decode(c)) != Some(Ok(gs2_header.as_bytes().to_vec())) {
            return self.fail("channel binding data does not match the gs2 header");
        }
        if attributes.get("r") != Some(&nonce) {
            return self.fail("nonce does not match");
        }
        let Ok(proof) = BASE64.decode(proof) else {
            return self.fail("proof is not base64");
        };
        let Some(credential) = self.credentials.get(&user) else {
            return self.fail(format!("unknown user {user:?}"));
        };
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = self.mechanism.hmac(&credential.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return self.fail("proof has the wrong length");
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        if self.mechanism.hash(&client_key) != credential.stored_key {
            return self.fail(format!("invalid credentials for user {user:?}"));
        }
        let server_signature = self.mechanism.hmac(&credential.server_key, auth_message.as_bytes());
        Step::Success { response: format!("v={}", BASE64.encode(server_signature)).into_bytes(), user }
    }
}

/// `k=v` attributes of a SCRAM message (values may contain '=').
fn attributes(message: &str) -> HashMap<&str, &str> {
    message.split(',').filter_map(|part| part.split_once('=')).collect()
}

/// Unpredictable enough for a test server's salts and nonces (std's hasher keys are random).
fn random_bytes() -> Vec<u8> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    [RandomState::new().hash_one(count), RandomState::new().hash_one(count)]
        .iter()
        .flat_map(|n| n.to_be_bytes())
        .collect()
}

fn random_token() -> String {
    random_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: the SCRAM-SHA-256 exchange for user "user", password "pencil".
    #[test]
    fn rfc7677_exchange() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let credentials: Credentials =
            [("user".to_string(), Credential::new(Mechanism::ScramSha256, "pencil", &salt, 4096))].into();
        let mut exchange = Exchange::with_nonce(
            Mechanism::ScramSha256,
            &credentials,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".to_string(),
        );
        assert_eq!(
            exchange.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"),
            Step::Continue(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
                    .to_vec()
            )
        );
        assert_eq!(
            exchange.step(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
            ),
            Step::Success {
                response: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
                user: "user".to_string()
            }
        );
    }

    #[test]
    fn a_wrong_proof_and_an_unknown_user_are_refused() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let credentials: Credentials =
            [("user".to_string(), Credential::new(Mechanism::ScramSha256, "not-pencil", &salt, 4096))].into();
        let mut exchange = Exchange::with_nonce(
            Mechanism::ScramSha256,
            &credentials,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".to_string(),
        );
        assert!(matches!(exchange.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"), Step::Continue(_)));
        assert!(matches!(
            exchange.step(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
            ),
            Step::Failure(_)
        ));
        let mut exchange = Exchange::new(Mechanism::ScramSha256, &credentials);
        assert!(matches!(exchange.step(b"n,,n=someone,r=abc"), Step::Failure(_)));
    }
}
