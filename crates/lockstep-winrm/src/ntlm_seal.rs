//! NTLM session security of a client connection (MS-NLMP 3.4.4, extended session security):
//! sealing with RC4 and HMAC-MD5 signatures, done in place in the MS-WSMV frame.
//!
//! The handshake stays `sspi`'s; only the per-message work is done here, because `sspi`'s
//! `EncryptMessage`/`DecryptMessage` copy every message four times (the data to sign, the digest
//! input, RC4's output, the write back) and run RC4 through a growing `Vec`: profiled on the
//! controller of a 200-host rollout (`benches/rollout.rs`), the extra allocation and copying
//! was about half as many CPU samples as RC4 and HMAC-MD5 themselves. Here a message is copied
//! once (into its frame, or out of it), then encrypted or decrypted in place.
//!
//! The keys are derived once per connection, from the exported session key `sspi` negotiated
//! and the flags of the AUTHENTICATE_MESSAGE it sent; the RC4 state of each direction runs on
//! across the connection's messages, as MS-NLMP's connection-oriented mode says.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

/// Signatures and sealing keys are negotiated: NTLMSSP_NEGOTIATE_SIGN.
const NEGOTIATE_SIGN: u32 = 0x0000_0010;
/// NTLMSSP_NEGOTIATE_SEAL.
const NEGOTIATE_SEAL: u32 = 0x0000_0020;
/// NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY.
const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
/// NTLMSSP_NEGOTIATE_128.
const NEGOTIATE_128: u32 = 0x2000_0000;
/// NTLMSSP_NEGOTIATE_KEY_EXCH: the checksum goes through RC4 too.
const NEGOTIATE_KEY_EXCH: u32 = 0x4000_0000;
/// NTLMSSP_NEGOTIATE_56.
const NEGOTIATE_56: u32 = 0x8000_0000;

/// Length of an NTLM signature (version, checksum, sequence number).
pub const SIGNATURE_LEN: usize = 16;

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// RC4, written out: the `rc4` crate's cipher is generic, so it is compiled with this crate's
/// optimisation level, and unoptimised (debug builds: every test against the lab) it cost
/// 0.6 ms per 1.6 KB message, ten times this loop's cost.
struct Rc4 {
    s: [u8; 256],
    i: u8,
    j: u8,
}

impl Rc4 {
    fn new(key: &[u8]) -> Self {
        let mut s = [0u8; 256];
        for (n, b) in s.iter_mut().enumerate() {
            *b = n as u8;
        }
        let mut j = 0u8;
        for n in 0..256 {
            j = j.wrapping_add(s[n]).wrapping_add(key[n % key.len()]);
            s.swap(n, j as usize);
        }
        Rc4 { s, i: 0, j: 0 }
    }

    fn apply_keystream(&mut self, data: &mut [u8]) {
        let (mut i, mut j) = (self.i, self.j);
        let s = &mut self.s;
        for byte in data {
            i = i.wrapping_add(1);
            let si = s[i as usize];
            j = j.wrapping_add(si);
            let sj = s[j as usize];
            s[i as usize] = sj;
            s[j as usize] = si;
            *byte ^= s[si.wrapping_add(sj) as usize];
        }
        self.i = i;
        self.j = j;
    }
}

/// One direction: its signing key, its RC4 stream, its sequence number.
struct Direction {
    sign_key: [u8; 16],
    rc4: Rc4,
    seq: u32,
}

impl Direction {
    fn new(session_key: &[u8; 16], flags: u32, sign_magic: &[u8], seal_magic: &[u8]) -> Self {
        let seal_base: &[u8] = if flags & NEGOTIATE_128 != 0 {
            session_key
        } else if flags & NEGOTIATE_56 != 0 {
            &session_key[..7]
        } else {
            &session_key[..5]
        };
        let seal_key = md5(&[seal_base, seal_magic]);
        Direction {
            sign_key: md5(&[session_key, sign_magic]),
            rc4: Rc4::new(&seal_key),
            seq: 0,
        }
    }

    /// HMAC-MD5 of the sequence number and `plain`, cut to the checksum's 8 bytes.
    fn checksum(&self, plain: &[u8]) -> [u8; 8] {
        let mut mac =
            <Hmac<Md5> as Mac>::new_from_slice(&self.sign_key).expect("HMAC takes any key length");
        mac.update(&self.seq.to_le_bytes());
        mac.update(plain);
        let digest = mac.finalize().into_bytes();
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(&digest[..8]);
        checksum
    }

    /// The signature of a checksum, consuming the sequence number; with key exchange the
    /// checksum continues the RC4 stream the message went through (so it comes after it).
    fn sign(&mut self, mut checksum: [u8; 8], key_exch: bool) -> [u8; SIGNATURE_LEN] {
        if key_exch {
            self.rc4.apply_keystream(&mut checksum);
        }
        let mut sig = [0u8; SIGNATURE_LEN];
        sig[..4].copy_from_slice(&1u32.to_le_bytes());
        sig[4..12].copy_from_slice(&checksum);
        sig[12..].copy_from_slice(&self.seq.to_le_bytes());
        self.seq = self.seq.wrapping_add(1);
        sig
    }
}

/// Why a sealed message was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnsealError {
    /// The signature is not 16 bytes.
    #[error("the NTLM signature is not 16 bytes")]
    SignatureLength,
    /// The signature does not match (tampered, replayed, out of order, or the wrong key).
    #[error("the NTLM signature does not verify")]
    BadSignature,
}

/// The client's NTLM session security on one authenticated connection.
pub struct NtlmSeal {
    key_exch: bool,
    outgoing: Direction,
    incoming: Direction,
}

impl NtlmSeal {
    /// The session of a completed handshake: `session_key` is the exported session key,
    /// `flags` those of the AUTHENTICATE_MESSAGE. `None` when they negotiated no sealing with
    /// extended session security (which every WinRM server asks for).
    pub fn new(session_key: &[u8; 16], flags: u32) -> Option<Self> {
        let needed = NEGOTIATE_SIGN | NEGOTIATE_SEAL | NEGOTIATE_EXTENDED_SESSIONSECURITY;
        if flags & needed != needed {
            return None;
        }
        Some(NtlmSeal {
            key_exch: flags & NEGOTIATE_KEY_EXCH != 0,
            outgoing: Direction::new(
                session_key,
                flags,
                b"session key to client-to-server signing key magic constant\0",
                b"session key to client-to-server sealing key magic constant\0",
            ),
            incoming: Direction::new(
                session_key,
                flags,
                b"session key to server-to-client signing key magic constant\0",
                b"session key to server-to-client sealing key magic constant\0",
            ),
        })
    }

    /// The negotiated flags of an AUTHENTICATE_MESSAGE (`None` if `token` is not one).
    pub fn authenticate_flags(token: &[u8]) -> Option<u32> {
        if token.len() < 64 || &token[..8] != b"NTLMSSP\0" || token[8..12] != 3u32.to_le_bytes() {
            return None;
        }
        Some(u32::from_le_bytes([
            token[60], token[61], token[62], token[63],
        ]))
    }

    /// Seals `message` in place (its plaintext in, its ciphertext out); returns the signature.
    pub fn seal_in_place(&mut self, message: &mut [u8]) -> [u8; SIGNATURE_LEN] {
        let checksum = self.outgoing.checksum(message);
        self.outgoing.rc4.apply_keystream(message);
        self.outgoing.sign(checksum, self.key_exch)
    }

    /// Unseals a server message in place (ciphertext in, plaintext out) and verifies its
    /// signature at the expected sequence number.
    pub fn unseal_in_place(
        &mut self,
        signature: &[u8],
        message: &mut [u8],
    ) -> Result<(), UnsealError> {
        if signature.len() != SIGNATURE_LEN {
            return Err(UnsealError::SignatureLength);
        }
        self.incoming.rc4.apply_keystream(message);
        let checksum = self.incoming.checksum(message);
        let expected = self.incoming.sign(checksum, self.key_exch);
        let differs = expected
            .iter()
            .zip(signature)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differs == 0 {
            Ok(())
        } else {
            Err(UnsealError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// MS-NLMP 4.2.4.4 (GSS_WrapEx, NTLMv2 with extended session security, key exchange,
    /// 128-bit): session key 0x55 x 16, "Plaintext" in UTF-16LE, sequence number 0.
    const FLAGS: u32 = NEGOTIATE_SIGN
        | NEGOTIATE_SEAL
        | NEGOTIATE_EXTENDED_SESSIONSECURITY
        | NEGOTIATE_128
        | NEGOTIATE_KEY_EXCH
        | NEGOTIATE_56;

    fn plaintext() -> Vec<u8> {
        "Plaintext"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    #[test]
    fn sealing_matches_the_specification_example() {
        let mut s = NtlmSeal::new(&[0x55; 16], FLAGS).unwrap();
        let mut message = plaintext();
        let sig = s.seal_in_place(&mut message);
        assert_eq!(message, hex("54e50165bf1936dc996020c1811b0f06fb5f"));
        assert_eq!(sig.to_vec(), hex("010000007fb38ec5c55d497600000000"));
    }

    #[test]
    fn the_servers_example_message_unseals_and_a_tampered_or_replayed_one_does_not() {
        let server_sig = hex("01000000b298b847ce7c580700000000");
        let server_sealed = hex("160871b730ba74e946c453d7465b54278dd0");
        let mut s = NtlmSeal::new(&[0x55; 16], FLAGS).unwrap();
        let mut message = server_sealed.clone();
        s.unseal_in_place(&server_sig, &mut message).unwrap();
        assert_eq!(message, plaintext());

        // The same message again: the sequence number and RC4 stream moved on.
        let mut again = server_sealed.clone();
        assert_eq!(
            s.unseal_in_place(&server_sig, &mut again),
            Err(UnsealError::BadSignature)
        );

        let mut fresh = NtlmSeal::new(&[0x55; 16], FLAGS).unwrap();
        let mut tampered = server_sealed;
        tampered[3] ^= 1;
        assert_eq!(
            fresh.unseal_in_place(&server_sig, &mut tampered),
            Err(UnsealError::BadSignature)
        );
        assert_eq!(
            fresh.unseal_in_place(&server_sig[..8], &mut [0u8; 4]),
            Err(UnsealError::SignatureLength)
        );
    }

    #[test]
    fn no_session_without_sealing_and_extended_session_security() {
        assert!(NtlmSeal::new(&[0; 16], NEGOTIATE_SIGN | NEGOTIATE_SEAL).is_none());
        assert!(NtlmSeal::authenticate_flags(b"NTLMSSP\0\x01\0\0\0").is_none());
        let mut token = vec![0u8; 72];
        token[..8].copy_from_slice(b"NTLMSSP\0");
        token[8] = 3;
        token[60..64].copy_from_slice(&FLAGS.to_le_bytes());
        assert_eq!(NtlmSeal::authenticate_flags(&token), Some(FLAGS));
    }
}
