//! Encoding process output in a shell's code page, as cmd.exe writes it.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Code pages the lab can encode. Anything else falls back to UTF-8 (and is refused at Create
/// time by [`is_supported`]).
pub fn is_supported(codepage: u32) -> bool {
    matches!(codepage, 65001 | 437 | 850 | 852 | 932)
}

/// Reverse of an `oem_cp` decoding table (built once: the crate's own encoding tables miss
/// some characters, e.g. `Ø` in CP850).
struct Sbcs(HashMap<char, u8>);

impl Sbcs {
    fn new(decoding: &[char; 128]) -> Self {
        Sbcs(
            decoding
                .iter()
                .enumerate()
                .map(|(i, c)| (*c, 0x80 + i as u8))
                .collect(),
        )
    }

    fn encode(&self, text: &str) -> Vec<u8> {
        text.chars()
            .map(|c| {
                if c.is_ascii() {
                    c as u8
                } else {
                    self.0.get(&c).copied().unwrap_or(b'?')
                }
            })
            .collect()
    }
}

fn sbcs(codepage: u32) -> &'static Sbcs {
    use oem_cp::code_table::{DECODING_TABLE_CP437, DECODING_TABLE_CP850, DECODING_TABLE_CP852};
    static CP437: OnceLock<Sbcs> = OnceLock::new();
    static CP850: OnceLock<Sbcs> = OnceLock::new();
    static CP852: OnceLock<Sbcs> = OnceLock::new();
    match codepage {
        850 => CP850.get_or_init(|| Sbcs::new(&DECODING_TABLE_CP850)),
        852 => CP852.get_or_init(|| Sbcs::new(&DECODING_TABLE_CP852)),
        _ => CP437.get_or_init(|| Sbcs::new(&DECODING_TABLE_CP437)),
    }
}

/// Encodes `text` in `codepage`; characters the code page lacks become `?` as on Windows.
pub fn encode(codepage: u32, text: &str) -> Vec<u8> {
    match codepage {
        437 | 850 | 852 => {
            if text.is_ascii() {
                text.as_bytes().to_vec()
            } else {
                sbcs(codepage).encode(text)
            }
        }
        932 => {
            let (bytes, _, had_unmappable) = encoding_rs::SHIFT_JIS.encode(text);
            // encoding_rs writes unmappable characters as HTML numeric references; Windows
            // writes `?`. Encode char by char only when something was unmappable.
            if had_unmappable {
                let mut out = Vec::with_capacity(text.len());
                let mut buf = [0u8; 4];
                for c in text.chars() {
                    let (b, _, unmappable) = encoding_rs::SHIFT_JIS.encode(c.encode_utf8(&mut buf));
                    if unmappable {
                        out.push(b'?');
                    } else {
                        out.extend_from_slice(&b);
                    }
                }
                out
            } else {
                bytes.into_owned()
            }
        }
        _ => text.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_each_code_page_reversibly() {
        let cases = [
            (437, "Zäh €? ñ"),
            (850, "Servizio già avviato, Ørsted"),
            (852, "Služba byla úspěšně spuštěna"),
            (932, "サービスは開始されました"),
            (65001, "こんにちは žluťoučký"),
        ];
        for (cp, text) in cases {
            let bytes = encode(cp, text);
            let back = match cp {
                932 => encoding_rs::SHIFT_JIS.decode(&bytes).0.into_owned(),
                65001 => String::from_utf8(bytes.clone()).unwrap(),
                437 => oem_cp::decode_string_complete_table(
                    &bytes,
                    &oem_cp::code_table::DECODING_TABLE_CP437,
                ),
                850 => oem_cp::decode_string_complete_table(
                    &bytes,
                    &oem_cp::code_table::DECODING_TABLE_CP850,
                ),
                _ => oem_cp::decode_string_complete_table(
                    &bytes,
                    &oem_cp::code_table::DECODING_TABLE_CP852,
                ),
            };
            if cp == 437 {
                // The euro sign is not in CP437: Windows writes `?`.
                assert_eq!(back, "Zäh ?? ñ");
            } else {
                assert_eq!(back, text, "code page {cp}");
            }
        }
    }

    #[test]
    fn unmappable_in_shift_jis_becomes_question_mark() {
        assert_eq!(encode(932, "a€b"), b"a?b".to_vec());
        assert_eq!(encode(932, "a&b"), b"a&b".to_vec());
    }
}
