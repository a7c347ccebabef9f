//! HTTP authentication of one connection: Basic per request, NTLM per TCP connection.

use base64::Engine as _;

use super::config::{AuthSchemes, Password};
use super::ntlm;

/// NTLM progress of one TCP connection (a new connection restarts the handshake).
#[derive(Debug, Default)]
pub enum ConnAuth {
    /// Nothing yet.
    #[default]
    Fresh,
    /// CHALLENGE sent with this server challenge; waiting for AUTHENTICATE.
    Challenged([u8; 8]),
    /// NTLM succeeded on this connection: later requests need no header.
    Authenticated,
}

/// What to do with a request, authentication-wise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Serve it.
    Allow,
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
}

/// `labadmin` from `LAB\labadmin`, `labadmin@lab` or `labadmin`.
fn bare_user(user: &str) -> &str {
    let user = user.rsplit('\\').next().unwrap_or(user);
    user.split('@').next().unwrap_or(user)
}

impl Authenticator {
    /// An authenticator for one account.
    pub fn new(user: &str, password: Password, domain: &str, schemes: AuthSchemes) -> Self {
        Authenticator {
            user: bare_user(user).to_owned(),
            password,
            domain: domain.to_owned(),
            schemes,
        }
    }

    /// Whether `user` (any of the accepted forms) is the lab account.
    pub fn user_matches(&self, user: &str) -> bool {
        bare_user(user).eq_ignore_ascii_case(&self.user)
    }

    /// `WWW-Authenticate` values of a 401, in Windows' order.
    pub fn offers(&self) -> Vec<&'static str> {
        let mut offers = Vec::with_capacity(2);
        if self.schemes.ntlm {
            offers.push("Negotiate");
        }
        if self.schemes.basic {
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
            return if matches!(conn, ConnAuth::Authenticated) {
                Decision::Allow
            } else {
                Decision::Reject
            };
        };
        let (scheme, token) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        let token = token.trim();
        if scheme.eq_ignore_ascii_case("Basic") {
            if !self.schemes.basic {
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
                Decision::Allow
            } else {
                tracing::debug!(user = %user, host = %computer, "Basic authentication refused");
                Decision::Reject
            }
        } else if scheme.eq_ignore_ascii_case("Negotiate") || scheme.eq_ignore_ascii_case("NTLM") {
            if !self.schemes.ntlm {
                return Decision::Reject;
            }
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(token) else {
                *conn = ConnAuth::Fresh;
                return Decision::Reject;
            };
            match ntlm::message_type(&bytes) {
                Some(1) => match ntlm::challenge(&bytes, computer, &self.domain) {
                    Ok((message, server_challenge)) => {
                        *conn = ConnAuth::Challenged(server_challenge);
                        let b64 = base64::engine::general_purpose::STANDARD.encode(message);
                        Decision::Challenge(format!("{scheme} {b64}"))
                    }
                    Err(_) => {
                        *conn = ConnAuth::Fresh;
                        Decision::Reject
                    }
                },
                Some(3) => {
                    let ConnAuth::Challenged(server_challenge) = *conn else {
                        // AUTHENTICATE without a CHALLENGE on this connection.
                        *conn = ConnAuth::Fresh;
                        return Decision::Reject;
                    };
                    let result = ntlm::verify(
                        &bytes,
                        &server_challenge,
                        self.password.expose(),
                        &[&self.domain, computer],
                        |u| self.user_matches(u),
                    );
                    match result {
                        Ok(_) => {
                            *conn = ConnAuth::Authenticated;
                            Decision::Allow
                        }
                        Err(e) => {
                            tracing::debug!(host = %computer, error = %e, "NTLM authentication refused");
                            *conn = ConnAuth::Fresh;
                            Decision::Reject
                        }
                    }
                }
                _ => {
                    *conn = ConnAuth::Fresh;
                    Decision::Reject
                }
            }
        } else {
            Decision::Reject
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
                Decision::Allow
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
        );
        assert_eq!(a.offers(), vec!["Negotiate"]);
        let mut conn = ConnAuth::Fresh;
        assert_eq!(
            a.decide(Some(&basic("labadmin", "pw")), &mut conn, "h"),
            Decision::Reject
        );
    }
}
