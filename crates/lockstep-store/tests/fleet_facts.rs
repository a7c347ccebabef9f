//! Facts read outside any run (`lockstep facts`): kept with their time, the latest reading of
//! each host given back, across a reopen of the file.

use lockstep_core::{Fact, Name, StateStore};
use lockstep_store::SqliteStore;

fn fact(host: &str, key: &str, value: &str, at_ms: u64) -> Fact {
    Fact {
        host: Name::host(host).unwrap(),
        key: key.to_owned(),
        value: value.to_owned(),
        at_ms,
    }
}

#[test]
fn the_latest_reading_of_each_host_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        assert!(s.latest_fleet_facts().unwrap().is_empty());
        s.put_fleet_facts(&[
            fact("PRG-N1", "exchange.build", "6.5.7226.0", 1_000),
            fact("PRG-N1", "unreachable", "refused: no", 1_000),
            fact("PRG-N2", "exchange.build", "6.5.7226.0", 1_000),
        ])
        .unwrap();
        // A later reading of PRG-N1 only: its earlier facts (the unreachable one included) are
        // history, PRG-N2's reading stays the latest of PRG-N2.
        s.put_fleet_facts(&[
            fact("PRG-N1", "exchange.build", "6.5.7638.2", 2_000),
            fact("PRG-N1", "reboot.pending", "false", 2_000),
        ])
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let got: Vec<(String, String, String, u64)> = s
        .latest_fleet_facts()
        .unwrap()
        .into_iter()
        .map(|f| (f.host.to_string(), f.key, f.value, f.at_ms))
        .collect();
    let want = [
        ("PRG-N1", "exchange.build", "6.5.7638.2", 2_000),
        ("PRG-N1", "reboot.pending", "false", 2_000),
        ("PRG-N2", "exchange.build", "6.5.7226.0", 1_000),
    ]
    .map(|(h, k, v, t)| (h.to_owned(), k.to_owned(), v.to_owned(), t));
    assert_eq!(got, want);
}
