//! Decoding command output from the shell's code page.
//!
//! The shell asks the node for a code page (`WINRS_CODEPAGE`, 65001 unless the inventory says
//! otherwise). A node that ignores the option answers in its OEM code page instead (437 en-US,
//! 850 it-IT/nl-NL, 852 cs-CZ, 932 ja-JP), so output that is not valid in the requested code page
//! is decoded with the node's OEM code page.

use std::borrow::Cow;

use oem_cp::code_table::DECODING_TABLE_CP_MAP;

/// UTF-8.
pub const UTF8: u32 = 65001;

/// Decodes `bytes` strictly in `codepage`: `None` if a byte sequence is not valid in it or the
/// code page is unknown.
pub fn decode_strict(bytes: &[u8], codepage: u32) -> Option<String> {
    if let Some(enc) = encoding_for(codepage) {
        return enc
            .decode_without_bom_handling_and_without_replacement(bytes)
            .map(Cow::into_owned);
    }
    let table = DECODING_TABLE_CP_MAP.get(&u16::try_from(codepage).ok()?)?;
    table.decode_string_checked(bytes)
}

/// Decodes output: strictly in `requested`, else strictly in the node's `oem` code page, else
/// with replacement characters in `requested` (UTF-8 when unknown).
pub fn decode(bytes: &[u8], requested: u32, oem: u32) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    if let Some(s) = decode_strict(bytes, requested) {
        return s;
    }
    if oem != requested {
        if let Some(s) = decode_strict(bytes, oem) {
            tracing::debug!(
                requested,
                oem,
                "output is not valid in the requested code page: decoded as the OEM code page"
            );
            return s;
        }
    }
    if let Some(enc) = encoding_for(requested) {
        return enc.decode_without_bom_handling(bytes).0.into_owned();
    }
    if let Some(table) = u16::try_from(requested)
        .ok()
        .and_then(|cp| DECODING_TABLE_CP_MAP.get(&cp))
    {
        return table.decode_string_lossy(bytes);
    }
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether output in this code page can be decoded.
pub fn is_supported(codepage: u32) -> bool {
    encoding_for(codepage).is_some()
        || u16::try_from(codepage)
            .ok()
            .is_some_and(|cp| DECODING_TABLE_CP_MAP.contains_key(&cp))
}

/// The `encoding_rs` encoding of a Windows code page it covers (UTF-8, the East Asian multi-byte
/// code pages and the Windows ANSI code pages); OEM code pages come from `oem_cp`.
fn encoding_for(codepage: u32) -> Option<&'static encoding_rs::Encoding> {
    Some(match codepage {
        65001 => encoding_rs::UTF_8,
        932 => encoding_rs::SHIFT_JIS,
        936 => encoding_rs::GBK,
        949 => encoding_rs::EUC_KR,
        950 => encoding_rs::BIG5,
        1250 => encoding_rs::WINDOWS_1250,
        1251 => encoding_rs::WINDOWS_1251,
        1252 => encoding_rs::WINDOWS_1252,
        1253 => encoding_rs::WINDOWS_1253,
        1254 => encoding_rs::WINDOWS_1254,
        1255 => encoding_rs::WINDOWS_1255,
        1256 => encoding_rs::WINDOWS_1256,
        1257 => encoding_rs::WINDOWS_1257,
        1258 => encoding_rs::WINDOWS_1258,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference bytes written out by hand from the code page charts (not produced by the
    // decoders under test).
    const CS: &str = "Služba Microsoft Exchange Information Store byla úspěšně zastavena.";
    // "Služba ... úspěšně" in CP852: ž=0xA7, ú=0xA3, ě=0xD8, š=0xE7, ň=0xE5.
    const CS_852: &[u8] =
        b"Slu\xa7ba Microsoft Exchange Information Store byla \xa3sp\xd8\xe7n\xd8 zastavena.";
    const IT: &str = "Il servizio è stato arrestato. Proprietà: perché";
    // CP850: è=0x8A, à=0x85, é=0x82.
    const IT_850: &[u8] = b"Il servizio \x8a stato arrestato. Propriet\x85: perch\x82";
    const NL: &str = "De service is gestopt. Geïnstalleerd: één, Ø";
    // CP850: ï=0x8B, é=0x82, Ø=0x9D.
    const NL_850: &[u8] = b"De service is gestopt. Ge\x8bnstalleerd: \x82\x82n, \x9d";
    const EN: &str = "Setup completed ÷ ½ ü";
    // CP437: ÷=0xF6, ½=0xAB, ü=0x81.
    const EN_437: &[u8] = b"Setup completed \xf6 \xab \x81";
    const JA: &str = "サービスを停止しました。";
    // Shift_JIS of the above.
    const JA_932: &[u8] = b"\x83\x54\x81\x5b\x83\x72\x83\x58\x82\xf0\x92\xe2\x8e\x7e\x82\xb5\x82\xdc\x82\xb5\x82\xbd\x81\x42";

    #[test]
    fn decodes_each_code_page_it_was_asked_for() {
        assert_eq!(decode(CS_852, 852, 852), CS);
        assert_eq!(decode(IT_850, 850, 850), IT);
        assert_eq!(decode(NL_850, 850, 850), NL);
        assert_eq!(decode(EN_437, 437, 437), EN);
        assert_eq!(decode(JA_932, 932, 932), JA);
        for text in [CS, IT, NL, EN, JA] {
            assert_eq!(decode(text.as_bytes(), UTF8, 437), text);
        }
    }

    #[test]
    fn falls_back_to_the_oem_code_page_when_the_node_ignored_utf8() {
        // The shell asked for 65001 but the node answered in its OEM code page.
        assert_eq!(decode(CS_852, UTF8, 852), CS);
        assert_eq!(decode(IT_850, UTF8, 850), IT);
        assert_eq!(decode(NL_850, UTF8, 850), NL);
        assert_eq!(decode(EN_437, UTF8, 437), EN);
        assert_eq!(decode(JA_932, UTF8, 932), JA);
    }

    #[test]
    fn valid_utf8_is_never_reinterpreted() {
        // Czech UTF-8 is also decodable as CP852 byte by byte; the requested code page wins.
        assert_eq!(decode(CS.as_bytes(), UTF8, 852), CS);
    }

    #[test]
    fn undecodable_bytes_become_replacement_characters() {
        // 0x81 0x20 is invalid in UTF-8 and in Shift_JIS (0x20 cannot trail).
        let s = decode(b"ok \x81\x20", UTF8, 932);
        assert!(s.starts_with("ok "));
        assert!(s.contains('\u{fffd}'));
    }

    #[test]
    fn knows_which_code_pages_it_supports() {
        for cp in [437, 850, 852, 932, 65001, 1252] {
            assert!(is_supported(cp), "{cp}");
        }
        assert!(!is_supported(12345));
        assert_eq!(decode_strict(b"abc", 12345), None);
    }
}
