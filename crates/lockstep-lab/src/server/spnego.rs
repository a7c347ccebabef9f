//! The SPNEGO (RFC 4178, MS-SPNG) envelope of `Authorization: Negotiate` tokens that wrap
//! NTLM: just enough DER to read a NegTokenInit / NegTokenResp and write a NegTokenResp.
//!
//! A client that sends raw NTLMSSP in a `Negotiate` header (pywinrm) is answered in raw NTLM;
//! one that sends SPNEGO (pypsrp, Windows) is answered in SPNEGO. Only the NTLM mechanism is
//! accepted here (Kerberos goes through its own GSSAPI acceptor).

/// DER of the NTLM mechanism OID 1.3.6.1.4.1.311.2.2.10.
pub const NTLM_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];
/// DER of the SPNEGO OID 1.3.6.1.5.5.2.
const SPNEGO_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];

/// A negotiation state of a NegTokenResp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegState {
    /// The mechanism accepted and the context complete.
    AcceptCompleted = 0,
    /// More legs to come.
    AcceptIncomplete = 1,
}

/// What a client's SPNEGO token carried.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Incoming {
    /// The DER `MechTypeList` (SEQUENCE OF OID) of a NegTokenInit, as sent (the mechListMIC
    /// covers these bytes).
    pub mech_types: Option<Vec<u8>>,
    /// Whether the client's mechanism list offers NTLM.
    pub offers_ntlm: bool,
    /// The inner mechanism token (NTLMSSP).
    pub mech_token: Option<Vec<u8>>,
    /// The client's mechListMIC.
    pub mech_list_mic: Option<Vec<u8>>,
}

/// One DER TLV: (tag, value, rest).
pub(crate) fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The whole TLV (header included) at the start of `input`.
fn whole_tlv(input: &[u8]) -> Option<&[u8]> {
    let (_, _, rest) = tlv(input)?;
    Some(&input[..input.len() - rest.len()])
}

fn encode(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0x81, len as u8]);
    } else if len <= 0xffff {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    } else {
        out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(value);
    out
}

/// Whether a `Negotiate` token is SPNEGO (rather than raw NTLMSSP).
pub fn is_spnego(token: &[u8]) -> bool {
    matches!(token.first(), Some(0x60) | Some(0xa1))
}

/// Reads a client's NegTokenInit (in its GSS-API wrapper) or NegTokenResp.
pub fn parse(token: &[u8]) -> Option<Incoming> {
    let mut incoming = Incoming::default();
    let seq = match token.first()? {
        0x60 => {
            let (_, inner, _) = tlv(token)?;
            let (tag, oid, rest) = tlv(inner)?;
            if tag != 0x06 || oid != SPNEGO_OID {
                return None;
            }
            let (tag, init, _) = tlv(rest)?;
            if tag != 0xa0 {
                return None;
            }
            let (tag, seq, _) = tlv(init)?;
            (tag == 0x30).then_some(seq)?
        }
        0xa1 => {
            let (_, resp, _) = tlv(token)?;
            let (tag, seq, _) = tlv(resp)?;
            (tag == 0x30).then_some(seq)?
        }
        _ => return None,
    };
    let init = token[0] == 0x60;
    let mut fields = seq;
    while !fields.is_empty() {
        let (tag, value, rest) = tlv(fields)?;
        match (init, tag) {
            (true, 0xa0) => {
                let list = whole_tlv(value)?;
                let (_, mut oids, _) = tlv(list)?;
                while !oids.is_empty() {
                    let (t, oid, more) = tlv(oids)?;
                    if t == 0x06 && oid == NTLM_OID {
                        incoming.offers_ntlm = true;
                    }
                    oids = more;
                }
                incoming.mech_types = Some(list.to_vec());
            }
            (true, 0xa2) | (false, 0xa2) => {
                let (t, octets, _) = tlv(value)?;
                if t == 0x04 {
                    incoming.mech_token = Some(octets.to_vec());
                }
            }
            (true, 0xa3) | (false, 0xa3) => {
                let (t, octets, _) = tlv(value)?;
                if t == 0x04 {
                    incoming.mech_list_mic = Some(octets.to_vec());
                }
            }
            (false, 0xa1) => {
                let (t, oid, _) = tlv(value)?;
                if t == 0x06 && oid == NTLM_OID {
                    incoming.offers_ntlm = true;
                }
            }
            _ => {}
        }
        fields = rest;
    }
    Some(incoming)
}

/// A NegTokenResp.
pub fn response(
    state: NegState,
    supported_ntlm: bool,
    response_token: Option<&[u8]>,
    mech_list_mic: Option<&[u8]>,
) -> Vec<u8> {
    let mut seq = encode(0xa0, &encode(0x0a, &[state as u8]));
    if supported_ntlm {
        seq.extend(encode(0xa1, &encode(0x06, NTLM_OID)));
    }
    if let Some(token) = response_token {
        seq.extend(encode(0xa2, &encode(0x04, token)));
    }
    if let Some(mic) = mech_list_mic {
        seq.extend(encode(0xa3, &encode(0x04, mic)));
    }
    encode(0xa1, &encode(0x30, &seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NegTokenInit as pyspnego and Windows write it: mechTypes [NTLM], mechToken.
    fn init(token: &[u8]) -> Vec<u8> {
        let mech_types = encode(0x30, &encode(0x06, NTLM_OID));
        let mut seq = encode(0xa0, &mech_types);
        seq.extend(encode(0xa2, &encode(0x04, token)));
        let neg_init = encode(0xa0, &encode(0x30, &seq));
        let mut inner = encode(0x06, SPNEGO_OID);
        inner.extend(neg_init);
        encode(0x60, &inner)
    }

    #[test]
    fn reads_an_init_and_a_response() {
        let big = vec![7u8; 300];
        let parsed = parse(&init(&big)).unwrap();
        assert!(parsed.offers_ntlm);
        assert_eq!(parsed.mech_token.as_deref(), Some(big.as_slice()));
        assert_eq!(
            parsed.mech_types.unwrap(),
            encode(0x30, &encode(0x06, NTLM_OID))
        );
        let resp = response(NegState::AcceptIncomplete, true, Some(b"abc"), Some(b"mic"));
        let parsed = parse(&resp).unwrap();
        assert!(parsed.offers_ntlm);
        assert_eq!(parsed.mech_token.as_deref(), Some(b"abc".as_slice()));
        assert_eq!(parsed.mech_list_mic.as_deref(), Some(b"mic".as_slice()));
        assert!(is_spnego(&resp) && !is_spnego(b"NTLMSSP\0"));
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        for bad in [
            &[0x60u8, 0x85][..],
            &[0xa1, 0x03, 0x30, 0x05],
            &[0x60],
            b"NTLMSSP",
        ] {
            assert!(parse(bad).is_none());
        }
    }
}
