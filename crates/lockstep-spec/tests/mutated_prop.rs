//! Mutated inventories never panic the loader: real inventories of the corpus (YAML, INI, JSON),
//! mutated byte by byte and line by line, go through every reader (YAML, INI, the format guess,
//! `--list`, Lockstep's fleet). Errors are fine; a panic is a bug. 32,000 cases of three readers
//! each: 96,000 mutated inputs per run (`PROPTEST_CASES` changes it).

use lockstep_spec::{inventory_list, load_inventory, SourceFile};
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    include_str!("../../../tests/inventories/02-doc-yaml-basic/hosts.yml"),
    include_str!("../../../tests/inventories/03-doc-ini-children/hosts.ini"),
    include_str!("../../../tests/inventories/06-doc-ini-host-vars/hosts.ini"),
    include_str!("../../../tests/inventories/09-yaml-anchors/hosts.yml"),
    include_str!("../../../tests/inventories/10-yaml11-scalars/hosts.yml"),
    include_str!("../../../tests/inventories/12-windows-estate-yaml/hosts.yml"),
    include_str!("../../../tests/inventories/15-vault-inline/hosts.yml"),
    include_str!("../../../tests/inventories/18-ranges/hosts.ini"),
    include_str!("../../../tests/inventories/19-json-inventory/hosts.json"),
    include_str!("../../../tests/inventories/22-ini-pending-children/hosts.ini"),
];

/// Bytes that matter to the readers.
const INTERESTING: &[u8] = b"[]{}:,=#;'\"\\&*!|>-? \n\t0119azAZ.@~%\0";

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, u8),
    Delete(usize),
    Replace(usize, u8),
    DuplicateLine(usize),
    SwapLines(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![
        prop::sample::select(INTERESTING.to_vec()),
        any::<u8>().prop_map(|b| b & 0x7f)
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Replace(i, b)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn apply(seed: &str, edits: &[Edit]) -> String {
    let mut b = seed.as_bytes().to_vec();
    for e in edits {
        let n = b.len().max(1);
        match *e {
            Edit::Insert(i, c) => b.insert(i % (b.len() + 1), c),
            Edit::Delete(i) if !b.is_empty() => {
                b.remove(i % n);
            }
            Edit::Replace(i, c) if !b.is_empty() => b[i % n] = c,
            Edit::DuplicateLine(i) | Edit::SwapLines(i, _) if b.is_empty() => {
                let _ = i;
            }
            Edit::DuplicateLine(i) => {
                let text = String::from_utf8_lossy(&b).into_owned();
                let mut lines: Vec<&str> = text.split('\n').collect();
                let l = lines[i % lines.len()];
                lines.insert(i % lines.len(), l);
                b = lines.join("\n").into_bytes();
            }
            Edit::SwapLines(x, y) => {
                let text = String::from_utf8_lossy(&b).into_owned();
                let mut lines: Vec<&str> = text.split('\n').collect();
                let len = lines.len();
                lines.swap(x % len, y % len);
                b = lines.join("\n").into_bytes();
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(32_000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_inventories_never_panic(
        seed in 0..SEEDS.len(),
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        let text = apply(SEEDS[seed], &edits);
        for name in ["m.yml", "m.ini", "m"] {
            let f = [SourceFile::new(name, text.clone())];
            let _ = inventory_list(&f);
            if name == "m" {
                let _ = load_inventory(&f);
            }
        }
    }
}
