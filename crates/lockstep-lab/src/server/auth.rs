//! HTTP authentication of one connection: Basic per request; NTLM, raw or wrapped in SPNEGO
//! (`Authorization: Negotiate`), and Kerberos (`Authorization: Kerberos`, or in `Negotiate`,
//! raw or in SPNEGO; with the `kerberos` feature and a keytab), per TCP connection, with the
//! session security that message encryption needs.

use base64::Engine as _;

use super::config::{AuthSchemes, Password};
#[cfg(feature = "kerberos")]
use super::kerberos::{KerberosAcceptor, KerberosSession, Step};
use super::seal::{NtlmSecurity, SealError};
use super::{ntlm, spnego};

/// The message security of an authenticated connection.
#[derive(Debug)]
pub enum Security {
    /// NTLM session keys (boxed: RC4 state).
    Ntlm(Box<NtlmSecurity>),
    /// A Kerberos GSSAPI context.
    #[cfg(feature = "kerberos")]
    Kerberos(Box<KerberosSession>),
}

impl Security {
    /// Unseals a client message: `header` is the signature (NTLM) or GSS wrap header (Kerberos),
    /// `payload` everything up to the closing boundary, `length` the announced plaintext length.
    pub fn unseal(
        &mut self,
        header: &[u8],
        payload: &[u8],
        length: usize,
    ) -> Result<Vec<u8>, SealError> {
        let plain = match self {
            Security::Ntlm(ntlm) => {
                if header.len() != 16 || payload.len() != length {
                    return Err(SealError::Malformed(
                        "signature or payload length does not match",
                    ));
                }
                ntlm.unseal(header, payload)?
            }
            #[cfg(feature = "kerberos")]
            Security::Kerberos(krb) => krb.unwrap_winrm(header, payload)?,
        };
        if plain.len() != length {
            return Err(SealError::Malformed(
                "the plaintext length differs from OriginalContent's Length",
            ));
        }
        Ok(plain)
    }

    /// Seals a server message: (signature or wrap header, ciphertext).
    pub fn seal(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), SealError> {
        match self {
            Security::Ntlm(ntlm) => {
                let (sig, sealed) = ntlm.seal(plain);
                Ok((sig.to_vec(), sealed))
            }
            #[cfg(feature = "kerberos")]
            Security::Kerberos(krb) => krb.wrap_winrm(plain),
        }
    }
}

/// NTLM progress of one TCP connection (a new connection restarts the handshake).
#[derive(Debug, Default)]
pub enum ConnAuth {
    /// Nothing yet.
    #[default]
    Fresh,
    /// CHALLENGE sent; waiting for AUTHENTICATE.
    Challenged {
        /// The server challenge of the CHALLENGE_MESSAGE.
        server_challenge: [u8; 8],
        /// `Some(mechTypes DER)` when the client speaks SPNEGO.
        spnego: Option<Vec<u8>>,
    },
    /// A Kerberos context that needs another leg (SPNEGO).
    #[cfg(feature = "kerberos")]
    KerberosPending(Box<KerberosSession>),
    /// NTLM or Kerberos succeeded on this connection: later requests need no header.
    Authenticated {
        /// Signing and sealing keys, when the client negotiated them.
        security: Option<Security>,
        /// Whether the session holds credentials it could use on a second server (a Kerberos
        /// client delegated its TGT). NTLM never does; the lab's Kerberos sessions do not.
        delegable: bool,
    },
}

impl ConnAuth {
    /// The session security of an authenticated connection.
    pub fn security(&mut self) -> Option<&mut Security> {
        match self {
            ConnAuth::Authenticated { security, .. } => security.as_mut(),
            _ => None,
        }
    }

    /// Whether the connection is authenticated with Kerberos (else NTLM).
    pub fn is_kerberos(&self) -> bool {
        match self {
            #[cfg(feature = "kerberos")]
            ConnAuth::Authenticated {
                security: Some(Security::Kerberos(_)),
                ..
            } => true,
            _ => false,
        }
    }

    /// Whether the connection's logon could reach a second server (the double hop): true only
    /// for a Kerberos session with a delegated TGT.
    pub fn delegable_credentials(&self) -> bool {
        matches!(
            self,
            ConnAuth::Authenticated {
                delegable: true,
                ..
            }
        )
    }
}

/// What to do with a request, authentication-wise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Serve it; `Some(header)`: add `WWW-Authenticate: <header>` (the final SPNEGO token).
    Allow(Option<String>),
    /// Answer 401 with `WWW-Authenticate: <scheme> <token>` (NTLM CHALLENGE).
    Challenge(String),
    /// Answer 401 offering every enabled scheme.
    Reject,
}

/// Checks credentials against the lab account.
#[derive(Debug, Clone)]
pub struct Authenticator {
    user: String,
    password: Password,
    domain: String,
    schemes: AuthSchemes,
    basic_allowed: bool,
    #[cfg(feature = "kerberos")]
    kerberos: Option<(std::sync::Arc<KerberosAcceptor>, String)>,
}

/// `labadmin` from `LAB\labadmin`, `labadmin@lab` or `labadmin`.
fn bare_user(user: &str) -> &str {
    let user = user.rsplit('\\').next().unwrap_or(user);
    user.split('@').next().unwrap_or(user)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Authenticator {
    /// An authenticator for one account. `basic_allowed` is false on a plain-HTTP listener
    /// that does not allow unencrypted traffic: Windows neither offers nor accepts Basic there.
    pub fn new(
        user: &str,
        password: Password,
        domain: &str,
        schemes: AuthSchemes,
        basic_allowed: bool,
    ) -> Self {
        Authenticator {
            user: bare_user(user).to_owned(),
            password,
            domain: domain.to_owned(),
            schemes,
            basic_allowed: schemes.basic && basic_allowed,
            #[cfg(feature = "kerberos")]
            kerberos: None,
        }
    }

    /// Also accepts Kerberos tickets of `realm` for the lab account, through `acceptor`.
    #[cfg(feature = "kerberos")]
    pub fn with_kerberos(
        mut self,
        acceptor: std::sync::Arc<KerberosAcceptor>,
        realm: &str,
    ) -> Self {
        self.kerberos = Some((acceptor, realm.to_owned()));
        self
    }

    fn kerberos_enabled(&self) -> bool {
        #[cfg(feature = "kerberos")]
        {
            self.kerberos.is_some()
        }
        #[cfg(not(feature = "kerberos"))]
        {
            false
        }
    }

    /// Whether `user` (any of the accepted forms) is the lab account.
    pub fn user_matches(&self, user: &str) -> bool {
        bare_user(user).eq_ignore_ascii_case(&self.user)
    }

    /// `WWW-Authenticate` values of a 401, in Windows' order.
    pub fn offers(&self) -> Vec<&'static str> {
        let mut offers = Vec::with_capacity(3);
        if self.schemes.ntlm || self.kerberos_enabled() {
            offers.push("Negotiate");
        }
        if self.kerberos_enabled() {
            // A domain member also offers Kerberos on its own.
            offers.push("Kerberos");
        }
        if self.basic_allowed {
            offers.push("Basic realm=\"WSMAN\"");
        }
        offers
    }

    /// Decides on a request carrying `authorization` on a connection in state `conn`, for
    /// host `computer`.
    pub fn decide(
        &self,
        authorization: Option<&str>,
        conn: &mut ConnAuth,
        computer: &str,
    ) -> Decision {
        let Some(header) = authorization else {
            return if matches!(conn, ConnAuth::Authenticated { .. }) {
                Decision::Allow(None)
            } else {
                Decision::Reject
            };
        };
        let (scheme, token) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        let token = token.trim();
        if scheme.eq_ignore_ascii_case("Basic") {
            if !self.basic_allowed {
                return Decision::Reject;
            }
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(token) else {
                return Decision::Reject;
            };
            let raw = String::from_utf8_lossy(&raw);
            let Some((user, password)) = raw.split_once(':') else {
                return Decision::Reject;
            };
            if self.user_matches(user) && password == self.password.expose() {
                Decision::Allow(None)
            } else {
                tracing::debug!(user = %user, host = %computer, "Basic authentication refused");
                Decision::Reject
            }
        } else if scheme.eq_ignore_ascii_case("Negotiate")
            || scheme.eq_ignore_ascii_case("NTLM")
            || scheme.eq_ignore_ascii_case("Kerberos")
        {
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(token) else {
                *conn = ConnAuth::Fresh;
                return Decision::Reject;
            };
            #[cfg(feature = "kerberos")]
            if self.kerberos.is_some() && self.is_kerberos_leg(scheme, &bytes, conn) {
                let decision = self.kerberos_leg(scheme, &bytes, conn, computer);
                if decision == Decision::Reject {
                    *conn = ConnAuth::Fresh;
                }
                return decision;
            }
            if !self.schemes.ntlm || scheme.eq_ignore_ascii_case("Kerberos") {
                *conn = ConnAuth::Fresh;
                return Decision::Reject;
            }
            let decision = self.ntlm_leg(scheme, &bytes, conn, computer);
            if decision == Decision::Reject {
                *conn = ConnAuth::Fresh;
            }
            decision
        } else {
            Decision::Reject
        }
    }

    /// Whether a token goes to the Kerberos acceptor: the `Kerberos` scheme, a raw Kerberos
    /// token, SPNEGO whose optimistic token is not NTLMSSP, or the next leg of a pending one.
    #[cfg(feature = "kerberos")]
    fn is_kerberos_leg(&self, scheme: &str, bytes: &[u8], conn: &ConnAuth) -> bool {
        if scheme.eq_ignore_ascii_case("Kerberos")
            || matches!(conn, ConnAuth::KerberosPending(_))
            || super::kerberos::is_kerberos_token(bytes)
        {
            return true;
        }
        if bytes.first() != Some(&0x60) || !spnego::is_spnego(bytes) {
            return false;
        }
        match spnego::parse(bytes) {
            Some(incoming) => match &incoming.mech_token {
                Some(token) => !token.starts_with(b"NTLMSSP\0"),
                None => !incoming.offers_ntlm,
            },
            None => false,
        }
    }

    /// One Kerberos leg through the GSSAPI acceptor (which also unwraps SPNEGO).
    #[cfg(feature = "kerberos")]
    fn kerberos_leg(
        &self,
        scheme: &str,
        bytes: &[u8],
        conn: &mut ConnAuth,
        computer: &str,
    ) -> Decision {
        let Some((acceptor, realm)) = &self.kerberos else {
            return Decision::Reject;
        };
        let mut session = match std::mem::take(conn) {
            ConnAuth::KerberosPending(session) => session,
            _ => Box::new(acceptor.session()),
        };
        match session.step(bytes, computer) {
            Err(e) => {
                tracing::debug!(host = %computer, error = %e, "Kerberos authentication refused");
                Decision::Reject
            }
            Ok(Step::Continue(token)) => {
                *conn = ConnAuth::KerberosPending(session);
                Decision::Challenge(format!("{scheme} {}", b64(&token)))
            }
            Ok(Step::Complete(token)) => {
                let (user, client_realm) = session
                    .client
                    .rsplit_once('@')
                    .unwrap_or((session.client.as_str(), ""));
                if !self.user_matches(user) || !client_realm.eq_ignore_ascii_case(realm) {
                    tracing::debug!(host = %computer, client = %session.client, "Kerberos client is not the lab account");
                    return Decision::Reject;
                }
                let delegable = session.delegated;
                *conn = ConnAuth::Authenticated {
                    security: Some(Security::Kerberos(session)),
                    delegable,
                };
                Decision::Allow(token.map(|t| format!("{scheme} {}", b64(&t))))
            }
        }
    }

    /// One NTLM leg, raw or in SPNEGO.
    fn ntlm_leg(
        &self,
        scheme: &str,
        bytes: &[u8],
        conn: &mut ConnAuth,
        computer: &str,
    ) -> Decision {
        let (inner, incoming) = if spnego::is_spnego(bytes) {
            let Some(incoming) = spnego::parse(bytes) else {
                return Decision::Reject;
            };
            let Some(inner) = incoming.mech_token.clone() else {
                return Decision::Reject;
            };
            (inner, Some(incoming))
        } else {
            (bytes.to_vec(), None)
        };
        match ntlm::message_type(&inner) {
            Some(1) => {
                let mech_types = match &incoming {
                    Some(i) if !i.offers_ntlm => return Decision::Reject,
                    Some(i) => Some(i.mech_types.clone().unwrap_or_default()),
                    None => None,
                };
                let Ok((message, server_challenge)) =
                    ntlm::challenge(&inner, computer, &self.domain)
                else {
                    return Decision::Reject;
                };
                let token = match mech_types {
                    Some(_) => spnego::response(
                        spnego::NegState::AcceptIncomplete,
                        true,
                        Some(&message),
                        None,
                    ),
                    None => message,
                };
                *conn = ConnAuth::Challenged {
                    server_challenge,
                    spnego: mech_types,
                };
                Decision::Challenge(format!("{scheme} {}", b64(&token)))
            }
            Some(3) => {
                let ConnAuth::Challenged {
                    server_challenge,
                    spnego: mech_types,
                } = std::mem::take(conn)
                else {
                    // AUTHENTICATE without a CHALLENGE on this connection.
                    return Decision::Reject;
                };
                let verified = match ntlm::verify(
                    &inner,
                    &server_challenge,
                    self.password.expose(),
                    &[&self.domain, computer],
                    |u| self.user_matches(u),
                ) {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::debug!(host = %computer, error = %e, "NTLM authentication refused");
                        return Decision::Reject;
                    }
                };
                let mut security = NtlmSecurity::new(&verified).map(Box::new);
                let mut header = None;
                if let (Some(mech_types), Some(incoming)) = (mech_types, incoming) {
                    // MS-SPNG: a client mechListMIC is verified (and answered with ours).
                    let mut server_mic = None;
                    if let Some(mic) = &incoming.mech_list_mic {
                        let Some(sec) = security.as_deref_mut() else {
                            return Decision::Reject;
                        };
                        if !sec.verify_mech_list_mic(&mech_types, mic) {
                            tracing::debug!(host = %computer, "SPNEGO mechListMIC does not verify");
                            return Decision::Reject;
                        }
                        server_mic = Some(sec.mech_list_mic(&mech_types));
                    }
                    let token = spnego::response(
                        spnego::NegState::AcceptCompleted,
                        false,
                        None,
                        server_mic.as_ref().map(|m| m.as_slice()),
                    );
                    header = Some(format!("{scheme} {}", b64(&token)));
                }
                *conn = ConnAuth::Authenticated {
                    security: security.map(Security::Ntlm),
                    delegable: false,
                };
                Decision::Allow(header)
            }
            _ => Decision::Reject,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator::new(
            "labadmin",
            Password::new("pw"),
            "LAB",
            AuthSchemes::default(),
            true,
        )
    }

    fn basic(user: &str, pw: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
        )
    }

    #[test]
    fn basic_accepts_the_account_in_every_form() {
        let a = auth();
        let mut conn = ConnAuth::Fresh;
        for user in ["labadmin", "LAB\\LabAdmin", "labadmin@lab.local"] {
            assert_eq!(
                a.decide(Some(&basic(user, "pw")), &mut conn, "h"),
                Decision::Allow(None)
            );
        }
        assert_eq!(
            a.decide(Some(&basic("labadmin", "nope")), &mut conn, "h"),
            Decision::Reject
        );
        assert_eq!(
            a.decide(Some(&basic("other", "pw")), &mut conn, "h"),
            Decision::Reject
        );
        // Basic does not authenticate the connection.
        assert_eq!(a.decide(None, &mut conn, "h"), Decision::Reject);
    }

    fn negotiate_header(msg: &[u8]) -> String {
        format!(
            "Negotiate {}",
            base64::engine::general_purpose::STANDARD.encode(msg)
        )
    }

    /// Runs NEGOTIATE/CHALLENGE on `conn`; returns the CHALLENGE_MESSAGE.
    fn challenge_on(a: &Authenticator, conn: &mut ConnAuth) -> Vec<u8> {
        let Decision::Challenge(header) = a.decide(
            Some(&negotiate_header(&ntlm::client::negotiate())),
            conn,
            "NODE1",
        ) else {
            panic!("NEGOTIATE must be answered with a CHALLENGE");
        };
        let token = header.strip_prefix("Negotiate ").unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap()
    }

    #[test]
    fn ntlm_authenticates_the_connection_not_the_client() {
        let a = auth();
        let mut first = ConnAuth::Fresh;
        let type2 = challenge_on(&a, &mut first);
        let type3 = ntlm::client::authenticate(&type2, "labadmin", "", "pw");
        assert_eq!(
            a.decide(Some(&negotiate_header(&type3)), &mut first, "NODE1"),
            Decision::Allow(None)
        );
        // Later requests on the same connection need no header.
        assert_eq!(a.decide(None, &mut first, "NODE1"), Decision::Allow(None));
        // A new connection must restart the handshake: no header is refused, and replaying
        // the first connection's AUTHENTICATE without a CHALLENGE of its own is refused.
        let mut second = ConnAuth::Fresh;
        assert_eq!(a.decide(None, &mut second, "NODE1"), Decision::Reject);
        assert_eq!(
            a.decide(Some(&negotiate_header(&type3)), &mut second, "NODE1"),
            Decision::Reject
        );
        // Nor does it verify against the second connection's own (different) challenge.
        challenge_on(&a, &mut second);
        assert_eq!(
            a.decide(Some(&negotiate_header(&type3)), &mut second, "NODE1"),
            Decision::Reject
        );
        // A wrong password resets the connection.
        let mut third = ConnAuth::Fresh;
        let type2 = challenge_on(&a, &mut third);
        let bad = ntlm::client::authenticate(&type2, "labadmin", "LAB", "nope");
        assert_eq!(
            a.decide(Some(&negotiate_header(&bad)), &mut third, "NODE1"),
            Decision::Reject
        );
        assert!(matches!(third, ConnAuth::Fresh));
    }

    #[test]
    fn basic_is_neither_offered_nor_accepted_where_unencrypted_traffic_is_refused() {
        let a = Authenticator::new(
            "labadmin",
            Password::new("pw"),
            "LAB",
            AuthSchemes::default(),
            false,
        );
        assert_eq!(a.offers(), vec!["Negotiate"]);
        let mut conn = ConnAuth::Fresh;
        assert_eq!(
            a.decide(Some(&basic("labadmin", "pw")), &mut conn, "h"),
            Decision::Reject
        );
    }

    #[test]
    fn negotiate_without_challenge_is_refused() {
        let a = auth();
        let mut conn = ConnAuth::Fresh;
        let mut type3 = b"NTLMSSP\0".to_vec();
        type3.extend_from_slice(&3u32.to_le_bytes());
        type3.resize(80, 0);
        let header = format!(
            "Negotiate {}",
            base64::engine::general_purpose::STANDARD.encode(type3)
        );
        assert_eq!(a.decide(Some(&header), &mut conn, "h"), Decision::Reject);
    }

    #[test]
    fn disabled_schemes_are_neither_offered_nor_accepted() {
        let a = Authenticator::new(
            "labadmin",
            Password::new("pw"),
            "LAB",
            AuthSchemes {
                basic: false,
                ntlm: true,
            },
            true,
        );
        assert_eq!(a.offers(), vec!["Negotiate"]);
        let mut conn = ConnAuth::Fresh;
        assert_eq!(
            a.decide(Some(&basic("labadmin", "pw")), &mut conn, "h"),
            Decision::Reject
        );
    }
}
