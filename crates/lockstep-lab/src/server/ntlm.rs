//! The server side of NTLMv2 (MS-NLMP): build the CHALLENGE_MESSAGE for a NEGOTIATE_MESSAGE
//! and verify the AUTHENTICATE_MESSAGE's NTLMv2 response with the user's NT hash.
//!
//! A verified AUTHENTICATE_MESSAGE yields the exported session key and the negotiated flags,
//! from which [`super::seal`] derives the signing and sealing keys of message encryption.
//! NTLMv1 responses are refused, as by a Windows server at `LmCompatibilityLevel` 5. The MIC
//! field of the AUTHENTICATE_MESSAGE is not checked.

use hmac::{Hmac, Mac};
use md4::{Digest, Md4};
use md5::Md5;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
const REQUEST_TARGET: u32 = 0x0000_0004;
/// Integrity (signatures) negotiated.
pub const NEGOTIATE_SIGN: u32 = 0x0000_0010;
/// Confidentiality (sealing) negotiated.
pub const NEGOTIATE_SEAL: u32 = 0x0000_0020;
const NEGOTIATE_NTLM: u32 = 0x0000_0200;
const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
/// NTLM2 session security (the only kind the lab seals with).
pub const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
const NEGOTIATE_VERSION: u32 = 0x0200_0000;
/// 128-bit session keys.
pub const NEGOTIATE_128: u32 = 0x2000_0000;
/// The client sent an encrypted random session key.
pub const NEGOTIATE_KEY_EXCH: u32 = 0x4000_0000;
/// 56-bit session keys.
pub const NEGOTIATE_56: u32 = 0x8000_0000;

/// Why an NTLM message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NtlmError {
    /// Not an NTLMSSP message of the expected type, or a field points outside the message.
    #[error("malformed NTLM message: {0}")]
    Malformed(&'static str),
    /// An NTLMv1 (or anonymous) response: refused.
    #[error("NTLMv1 or anonymous responses are not accepted")]
    NotV2,
    /// The user is not the lab's account.
    #[error("unknown user `{0}`")]
    UnknownUser(String),
    /// The NTLMv2 proof does not match the password.
    #[error("wrong password for `{0}`")]
    WrongPassword(String),
}

/// The NTLM message type of a token (1, 2 or 3), if it is an NTLMSSP message at all.
pub fn message_type(token: &[u8]) -> Option<u32> {
    if token.len() < 12 || &token[..8] != SIGNATURE {
        return None;
    }
    Some(u32::from_le_bytes([
        token[8], token[9], token[10], token[11],
    ]))
}

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn from_utf16le(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// `MD4(UTF-16LE(password))`.
pub fn nt_hash(password: &str) -> [u8; 16] {
    Md4::digest(utf16le(password)).into()
}

/// `HMAC-MD5(NT hash, UTF-16LE(UPPER(user) + domain))` (MS-NLMP 3.3.2 `NTOWFv2`).
pub fn ntowf_v2(nt_hash: &[u8; 16], user: &str, domain: &str) -> [u8; 16] {
    let identity = format!("{}{}", user.to_uppercase(), domain);
    hmac_md5(nt_hash, &[&utf16le(&identity)])
}

fn filetime_now() -> [u8; 8] {
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ticks = (since_unix.as_secs() + 11_644_473_600) * 10_000_000
        + u64::from(since_unix.subsec_nanos() / 100);
    ticks.to_le_bytes()
}

fn av_pair(out: &mut Vec<u8>, id: u16, value: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
}

/// Builds the CHALLENGE_MESSAGE answering `negotiate`, for `computer` in NetBIOS `domain`.
/// Returns the message and the server challenge it carries.
pub fn challenge(
    negotiate: &[u8],
    computer: &str,
    domain: &str,
) -> Result<(Vec<u8>, [u8; 8]), NtlmError> {
    if message_type(negotiate) != Some(1) || negotiate.len() < 16 {
        return Err(NtlmError::Malformed("expected a NEGOTIATE_MESSAGE"));
    }
    let client_flags =
        u32::from_le_bytes([negotiate[12], negotiate[13], negotiate[14], negotiate[15]]);
    let optional =
        NEGOTIATE_128 | NEGOTIATE_56 | NEGOTIATE_KEY_EXCH | NEGOTIATE_SIGN | NEGOTIATE_SEAL;
    let flags = NEGOTIATE_UNICODE
        | REQUEST_TARGET
        | NEGOTIATE_NTLM
        | NEGOTIATE_ALWAYS_SIGN
        | TARGET_TYPE_DOMAIN
        | NEGOTIATE_EXTENDED_SESSIONSECURITY
        | NEGOTIATE_TARGET_INFO
        | NEGOTIATE_VERSION
        | (client_flags & optional);
    let server_challenge: [u8; 8] = rand::random();
    let nb_domain = domain.to_uppercase();
    let nb_computer = computer.to_uppercase();
    let dns_domain = format!("{}.lab", domain.to_lowercase());
    let dns_computer = format!("{}.{}", computer.to_lowercase(), dns_domain);
    let target_name = utf16le(&nb_domain);
    let mut target_info = Vec::with_capacity(160);
    av_pair(&mut target_info, 2, &utf16le(&nb_domain));
    av_pair(&mut target_info, 1, &utf16le(&nb_computer));
    av_pair(&mut target_info, 4, &utf16le(&dns_domain));
    av_pair(&mut target_info, 3, &utf16le(&dns_computer));
    av_pair(&mut target_info, 5, &utf16le(&dns_domain));
    av_pair(&mut target_info, 7, &filetime_now());
    av_pair(&mut target_info, 0, &[]);

    let header = 56u32;
    let mut msg = Vec::with_capacity(header as usize + target_name.len() + target_info.len());
    msg.extend_from_slice(SIGNATURE);
    msg.extend_from_slice(&2u32.to_le_bytes());
    msg.extend_from_slice(&(target_name.len() as u16).to_le_bytes());
    msg.extend_from_slice(&(target_name.len() as u16).to_le_bytes());
    msg.extend_from_slice(&header.to_le_bytes());
    msg.extend_from_slice(&flags.to_le_bytes());
    msg.extend_from_slice(&server_challenge);
    msg.extend_from_slice(&[0u8; 8]);
    let info_offset = header + target_name.len() as u32;
    msg.extend_from_slice(&(target_info.len() as u16).to_le_bytes());
    msg.extend_from_slice(&(target_info.len() as u16).to_le_bytes());
    msg.extend_from_slice(&info_offset.to_le_bytes());
    // Version: Windows Server 2003 (5.2, build 3790), NTLM revision 15.
    msg.extend_from_slice(&[5, 2, 0xCE, 0x0E, 0, 0, 0, 15]);
    msg.extend_from_slice(&target_name);
    msg.extend_from_slice(&target_info);
    Ok((msg, server_challenge))
}

fn field(msg: &[u8], at: usize) -> Result<&[u8], NtlmError> {
    if msg.len() < at + 8 {
        return Err(NtlmError::Malformed("truncated header"));
    }
    let len = u16::from_le_bytes([msg[at], msg[at + 1]]) as usize;
    let offset = u32::from_le_bytes([msg[at + 4], msg[at + 5], msg[at + 6], msg[at + 7]]) as usize;
    offset
        .checked_add(len)
        .filter(|end| *end <= msg.len())
        .map(|end| &msg[offset..end])
        .ok_or(NtlmError::Malformed("field outside the message"))
}

/// Who an AUTHENTICATE_MESSAGE claims to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User name as sent.
    pub user: String,
    /// Domain as sent (may be empty).
    pub domain: String,
}

/// A verified AUTHENTICATE_MESSAGE: who, the negotiated flags and the exported session key.
#[derive(Clone, PartialEq, Eq)]
pub struct Verified {
    /// Who authenticated.
    pub identity: Identity,
    /// The flags of the AUTHENTICATE_MESSAGE (what was negotiated).
    pub flags: u32,
    /// The exported session key (MS-NLMP 3.2.5.1.2), input of signing and sealing keys.
    pub session_key: [u8; 16],
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("identity", &self.identity)
            .field("flags", &format_args!("{:#010x}", self.flags))
            .finish_non_exhaustive()
    }
}

/// Verifies an AUTHENTICATE_MESSAGE against `server_challenge`: the user must satisfy
/// `user_ok` and the NTLMv2 proof must match `password` under one of the domains the client
/// may have hashed with (the one it sent, none, or one of `extra_domains`).
pub fn verify(
    authenticate: &[u8],
    server_challenge: &[u8; 8],
    password: &str,
    extra_domains: &[&str],
    user_ok: impl Fn(&str) -> bool,
) -> Result<Verified, NtlmError> {
    if message_type(authenticate) != Some(3) || authenticate.len() < 64 {
        return Err(NtlmError::Malformed("expected an AUTHENTICATE_MESSAGE"));
    }
    let flags = u32::from_le_bytes([
        authenticate[60],
        authenticate[61],
        authenticate[62],
        authenticate[63],
    ]);
    let nt_response = field(authenticate, 20)?;
    let domain_bytes = field(authenticate, 28)?;
    let user_bytes = field(authenticate, 36)?;
    let text = |b: &[u8]| {
        if flags & NEGOTIATE_UNICODE != 0 {
            from_utf16le(b)
        } else {
            String::from_utf8_lossy(b).into_owned()
        }
    };
    let identity = Identity {
        user: text(user_bytes),
        domain: text(domain_bytes),
    };
    if nt_response.len() < 16 + 28 {
        return Err(NtlmError::NotV2);
    }
    if !user_ok(&identity.user) {
        return Err(NtlmError::UnknownUser(identity.user));
    }
    let (proof, blob) = nt_response.split_at(16);
    let hash = nt_hash(password);
    let mut domains: Vec<&str> = vec![identity.domain.as_str(), ""];
    domains.extend_from_slice(extra_domains);
    for domain in domains {
        let key = ntowf_v2(&hash, &identity.user, domain);
        let expected = hmac_md5(&key, &[server_challenge, blob]);
        // Constant-time comparison.
        let diff = expected
            .iter()
            .zip(proof)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            // NTLMv2: KeyExchangeKey = SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr).
            let key_exchange_key = hmac_md5(&key, &[proof]);
            let session_key = if flags & NEGOTIATE_KEY_EXCH != 0 {
                let encrypted = field(authenticate, 52)?;
                let Ok(mut exported) = <[u8; 16]>::try_from(encrypted) else {
                    return Err(NtlmError::Malformed(
                        "encrypted random session key is not 16 bytes",
                    ));
                };
                super::seal::rc4_once(&key_exchange_key, &mut exported);
                exported
            } else {
                key_exchange_key
            };
            return Ok(Verified {
                identity,
                flags,
                session_key,
            });
        }
    }
    Err(NtlmError::WrongPassword(identity.user))
}

/// A minimal NTLMv2 client, written from MS-NLMP, to test the server side with.
#[cfg(test)]
pub(crate) mod client {
    use super::*;

    /// A NEGOTIATE_MESSAGE.
    pub(crate) fn negotiate() -> Vec<u8> {
        let mut msg = SIGNATURE.to_vec();
        msg.extend_from_slice(&1u32.to_le_bytes());
        msg.extend_from_slice(&(NEGOTIATE_UNICODE | NEGOTIATE_NTLM).to_le_bytes());
        msg.extend_from_slice(&[0u8; 16]);
        msg
    }

    /// The AUTHENTICATE_MESSAGE answering `challenge_msg`.
    pub(crate) fn authenticate(
        challenge_msg: &[u8],
        user: &str,
        domain: &str,
        password: &str,
    ) -> Vec<u8> {
        let server_challenge: [u8; 8] = challenge_msg[24..32].try_into().unwrap();
        let info = field(challenge_msg, 40).unwrap().to_vec();
        let mut blob = vec![1, 1, 0, 0, 0, 0, 0, 0];
        blob.extend_from_slice(&filetime_now());
        blob.extend_from_slice(&[7u8; 8]);
        blob.extend_from_slice(&[0, 0, 0, 0]);
        blob.extend_from_slice(&info);
        blob.extend_from_slice(&[0, 0, 0, 0]);
        let key = ntowf_v2(&nt_hash(password), user, domain);
        let proof = hmac_md5(&key, &[&server_challenge, &blob]);
        let mut nt = proof.to_vec();
        nt.extend_from_slice(&blob);
        let d = utf16le(domain);
        let u = utf16le(user);
        let mut msg = Vec::new();
        msg.extend_from_slice(SIGNATURE);
        msg.extend_from_slice(&3u32.to_le_bytes());
        let mut offset = 64u32;
        for len in [0usize, nt.len(), d.len(), u.len(), 0, 0] {
            msg.extend_from_slice(&(len as u16).to_le_bytes());
            msg.extend_from_slice(&(len as u16).to_le_bytes());
            msg.extend_from_slice(&offset.to_le_bytes());
            offset += len as u32;
        }
        msg.extend_from_slice(&NEGOTIATE_UNICODE.to_le_bytes());
        msg.extend_from_slice(&nt);
        msg.extend_from_slice(&d);
        msg.extend_from_slice(&u);
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::client::{authenticate, negotiate};
    use super::*;

    #[test]
    fn nt_hash_matches_the_ms_nlmp_test_vector() {
        // MS-NLMP 4.2.4.1.1: NTOWFv2("Password", "User", "Domain").
        let key = ntowf_v2(&nt_hash("Password"), "User", "Domain");
        assert_eq!(
            key,
            [
                0x0c, 0x86, 0x8a, 0x40, 0x3b, 0xfd, 0x7a, 0x93, 0xa3, 0x00, 0x1e, 0xf2, 0x2e, 0xf0,
                0x2e, 0x3f
            ]
        );
    }

    #[test]
    fn accepts_the_right_password_and_refuses_a_wrong_one() {
        let (type2, challenge_bytes) = challenge(&negotiate(), "prg-n1", "LAB").unwrap();
        assert_eq!(message_type(&type2), Some(2));
        let good = authenticate(&type2, "labadmin", "LAB", "pw-1");
        let who = verify(&good, &challenge_bytes, "pw-1", &[], |u| u == "labadmin").unwrap();
        assert_eq!(who.identity.domain, "LAB");
        let bad = authenticate(&type2, "labadmin", "LAB", "pw-2");
        assert_eq!(
            verify(&bad, &challenge_bytes, "pw-1", &[], |u| u == "labadmin"),
            Err(NtlmError::WrongPassword("labadmin".into()))
        );
        assert_eq!(
            verify(&good, &challenge_bytes, "pw-1", &[], |u| u == "other"),
            Err(NtlmError::UnknownUser("labadmin".into()))
        );
        // A response to another challenge does not verify.
        let (_, other_challenge) = challenge(&negotiate(), "prg-n1", "LAB").unwrap();
        assert!(verify(&good, &other_challenge, "pw-1", &[], |_| true).is_err());
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(message_type(b"hello"), None);
        assert!(challenge(b"NTLMSSP\0\x03\0\0\0", "h", "d").is_err());
        let mut truncated = SIGNATURE.to_vec();
        truncated.extend_from_slice(&3u32.to_le_bytes());
        truncated.resize(64, 0xFF);
        assert!(verify(&truncated, &[0; 8], "x", &[], |_| true).is_err());
    }
}
