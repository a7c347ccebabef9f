//! Kerberos, as a domain-joined Windows host accepts it: MIT's GSSAPI acceptor (through the
//! `libgssapi` crate) with the host's keytab, raw (`Authorization: Kerberos`, or a bare Kerberos
//! token in `Negotiate`) or wrapped in SPNEGO (`Negotiate`), and the GSS_Wrap message encryption
//! of MS-WSMV 2.2.9.1 (a header that holds the token header and the rotated trailer, then the
//! ciphertext of the SOAP body, as `gss_wrap_iov` HEADER | DATA | PADDING writes it).
//!
//! The acceptor reads its keys from the keytab of [`super::KerberosConfig`]: MIT finds it
//! through `KRB5_KTNAME`, which [`KerberosAcceptor::new`] sets for the process (one lab keytab
//! per process) before it acquires the acceptor credentials once; later changes to the
//! variable do not affect them. A ticket is accepted only for this host's service principal
//! (`HTTP/<host>[.domain]`, or `HOST/`, which Active Directory aliases): a ticket for another host of the keytab is refused, as that host's
//! Windows could not decrypt it.

use libgssapi::context::{CtxFlags, SecurityContext, ServerCtx};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_MECH_SPNEGO};
use libgssapi::util::{GssIov, GssIovType};

use super::seal::SealError;

/// The acceptor credentials of the lab (every host's `HTTP/` key).
pub struct KerberosAcceptor {
    cred: Cred,
}

impl std::fmt::Debug for KerberosAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerberosAcceptor").finish_non_exhaustive()
    }
}

impl KerberosAcceptor {
    /// Acquires acceptor credentials (Kerberos and SPNEGO) from `keytab`.
    pub fn new(keytab: &std::path::Path) -> Result<Self, String> {
        if !keytab.is_file() {
            return Err(format!("keytab `{}` does not exist", keytab.display()));
        }
        // MIT reads the acceptor keytab from KRB5_KTNAME when the credentials are acquired.
        std::env::set_var("KRB5_KTNAME", format!("FILE:{}", keytab.display()));
        let mut mechs = OidSet::new();
        mechs.add(GSS_MECH_KRB5).map_err(|e| e.to_string())?;
        mechs.add(GSS_MECH_SPNEGO).map_err(|e| e.to_string())?;
        let cred = Cred::acquire(None, None, CredUsage::Accept, Some(&mechs))
            .map_err(|e| format!("acceptor credentials from `{}`: {e}", keytab.display()))?;
        Ok(KerberosAcceptor { cred })
    }

    /// A fresh security context for one connection.
    pub fn session(&self) -> KerberosSession {
        KerberosSession {
            ctx: ServerCtx::new(Some(self.cred.clone())),
            delegated: false,
            client: String::new(),
        }
    }
}

/// The Kerberos context of one TCP connection.
pub struct KerberosSession {
    ctx: ServerCtx,
    /// Whether the client delegated a forwardable TGT (a second hop could use it).
    pub delegated: bool,
    /// The client principal (`user@REALM`), once complete.
    pub client: String,
}

impl std::fmt::Debug for KerberosSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerberosSession")
            .field("client", &self.client)
            .field("delegated", &self.delegated)
            .finish_non_exhaustive()
    }
}

/// What one acceptor step gave.
pub enum Step {
    /// More legs: send this token in a 401.
    Continue(Vec<u8>),
    /// Authenticated; the final token (AP-REP, or SPNEGO accept-completed) if any.
    Complete(Option<Vec<u8>>),
}

/// Whether `token` is a raw Kerberos GSS token (`60 .. 06 09 2a 86 48 86 f7 12 01 02 02`, or
/// the legacy Microsoft OID `2a 86 48 82 f7 12 01 02 02`).
pub fn is_kerberos_token(token: &[u8]) -> bool {
    const KRB5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
    const MS_KRB5: &[u8] = &[0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02];
    if token.first() != Some(&0x60) {
        return false;
    }
    // Skip the outer length.
    let Some(&len) = token.get(1) else {
        return false;
    };
    let start = if len < 0x80 {
        2
    } else {
        2 + usize::from(len & 0x7f)
    };
    let Some(rest) = token.get(start..) else {
        return false;
    };
    rest.first() == Some(&0x06)
        && rest.get(1) == Some(&9)
        && rest
            .get(2..11)
            .is_some_and(|oid| oid == KRB5 || oid == MS_KRB5)
}

impl KerberosSession {
    /// Feeds the client's token to the acceptor. `computer` is this host's name: the ticket
    /// must be for `HTTP/<computer>` (optionally followed by a DNS domain).
    pub fn step(&mut self, token: &[u8], computer: &str) -> Result<Step, String> {
        let out = self.ctx.step(token, None).map_err(|e| e.to_string())?;
        let out = out.map(|b| b.to_vec());
        if !self.ctx.is_complete() {
            return Ok(Step::Continue(out.unwrap_or_default()));
        }
        let target = self
            .ctx
            .target_name()
            .map_err(|e| e.to_string())?
            .to_string();
        if !spn_names_host(&target, computer) {
            return Err(format!(
                "the ticket is for `{target}`, not for this host `{computer}`"
            ));
        }
        self.client = self
            .ctx
            .source_name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        let flags = self.ctx.flags().map_err(|e| e.to_string())?;
        self.delegated =
            flags.contains(CtxFlags::GSS_C_DELEG_FLAG) && self.ctx.delegated_cred().is_some();
        let needed = CtxFlags::GSS_C_CONF_FLAG | CtxFlags::GSS_C_INTEG_FLAG;
        if !flags.contains(needed) {
            tracing::debug!(?flags, "Kerberos context without confidentiality");
        }
        Ok(Step::Complete(out))
    }

    /// Decrypts a client message: `header` is the GSS wrap header (token header and rotated
    /// trailer), `data` the ciphertext.
    pub fn unwrap_winrm(&mut self, header: &[u8], data: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut token = Vec::with_capacity(header.len() + data.len());
        token.extend_from_slice(header);
        token.extend_from_slice(data);
        self.ctx.unwrap(&token).map(|b| b.to_vec()).map_err(|e| {
            tracing::debug!(error = %e, "Kerberos unwrap failed");
            SealError::BadSignature
        })
    }

    /// Encrypts a server message: (header, ciphertext and padding).
    pub fn wrap_winrm(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), SealError> {
        let mut data = plain.to_vec();
        let mut iovs = [
            GssIov::new_alloc(GssIovType::Header),
            GssIov::new(GssIovType::Data, &mut data),
            GssIov::new_alloc(GssIovType::Padding),
        ];
        self.ctx.wrap_iov(true, &mut iovs).map_err(|e| {
            tracing::debug!(error = %e, "Kerberos wrap failed");
            SealError::NotSealed
        })?;
        let header = iovs[0].to_vec();
        let padding = iovs[2].to_vec();
        drop(iovs);
        data.extend_from_slice(&padding);
        Ok((header, data))
    }
}

/// Whether service principal `spn` (`HTTP/node1.lab.test@LAB.TEST`) names host `computer`.
fn spn_names_host(spn: &str, computer: &str) -> bool {
    let Some((service, rest)) = spn.split_once('/') else {
        return false;
    };
    let host = rest.split('@').next().unwrap_or(rest);
    let first = host.split('.').next().unwrap_or(host);
    ["HTTP", "HOST", "WSMAN"]
        .iter()
        .any(|s| service.eq_ignore_ascii_case(s))
        && first.eq_ignore_ascii_case(computer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_must_name_this_host() {
        assert!(spn_names_host("HTTP/node1.lab.test@LAB.TEST", "NODE1"));
        assert!(spn_names_host("HTTP/NODE1@LAB.TEST", "node1"));
        assert!(!spn_names_host("HTTP/node2.lab.test@LAB.TEST", "NODE1"));
        assert!(!spn_names_host("HTTP/node10@LAB.TEST", "NODE1"));
        assert!(spn_names_host("host/node1@LAB.TEST", "NODE1"));
        assert!(!spn_names_host("cifs/node1@LAB.TEST", "NODE1"));
    }

    #[test]
    fn kerberos_tokens_are_told_from_spnego_and_ntlm() {
        let mut krb = vec![0x60, 0x20, 0x06, 0x09];
        krb.extend_from_slice(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02]);
        krb.extend_from_slice(&[0x01, 0x00]);
        assert!(is_kerberos_token(&krb));
        let spnego = [0x60, 0x08, 0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
        assert!(!is_kerberos_token(&spnego));
        assert!(!is_kerberos_token(b"NTLMSSP\0"));
        assert!(!is_kerberos_token(&[0x60]));
    }
}
