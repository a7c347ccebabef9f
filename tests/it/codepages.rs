//! Localised fleets: cmd output arrives in the node's code page unless the shell asks for
//! 65001. Through the real transport against the lab's real WinRM server and Windows model,
//! the same command on cs-CZ (852), it-IT (850) and ja-JP (932) nodes decodes to the same text
//! whether the shell asked for UTF-8 or for the node's OEM code page: no mojibake (the seeds'
//! Italian copy shows what guessing the code page does: "Ŕ" for "è").

use std::collections::BTreeMap;
use std::time::Duration;

use lockstep_core::{Name, Transport};
use lockstep_lab::{Lab, LabConfig, Recorder, ServerConfig};
use lockstep_winrm::{Limits, NodeTarget, Secret, WinrmTransport};

const USER: &str = "CONTOSO\\svc-lockstep";
const PASSWORD: &str = "Codepage-Test-1";

fn target(host: &str, url: &str, codepage: Option<u32>, oem: u32) -> NodeTarget {
    let rest = url.trim_start_matches("http://");
    let (addr, port) = rest.split('/').next().unwrap().rsplit_once(':').unwrap();
    let mut t = NodeTarget::new(Name::host(host).unwrap(), addr, USER, Secret::new(PASSWORD));
    t.port = port.parse().unwrap();
    t.codepage = codepage;
    t.oem_codepage = oem;
    t
}

async fn run_both(
    endpoints: &BTreeMap<String, String>,
    host: &str,
    oem: u32,
    cmd: &str,
) -> (String, String) {
    let url = &endpoints[host];
    let name = Name::host(host).unwrap();
    let mut out = Vec::new();
    for cp in [None, Some(oem)] {
        let t = WinrmTransport::new(vec![target(host, url, cp, oem)], Limits::default()).unwrap();
        let o = t.run(&name, cmd, Duration::from_secs(30)).await.unwrap();
        out.push(format!("[exit {}] {}{}", o.exit_code, o.stdout, o.stderr));
    }
    (out.remove(0), out.remove(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localised_output_decodes_the_same_in_utf8_and_in_the_oem_code_page() {
    let fleet = lockstep_spec::load_inventory(&[lockstep_spec::embedded::lab_inventory()]).unwrap();
    let lab = Lab::start(
        &fleet,
        LabConfig::default(),
        ServerConfig::with_credentials(USER, PASSWORD),
        Recorder::null(),
    )
    .await
    .unwrap();
    let ep = lab.endpoints();
    for (host, oem, expect) in [
        (
            "PRG-N1",
            852,
            "Výpis stavu všech dostupných skupin prostředků",
        ),
        ("TYO-N1", 932, "利用可能なすべてのリソース グループ"),
        (
            "MIL-N1",
            850,
            "Elenco dello stato di tutti i gruppi di risorse",
        ),
    ] {
        let (utf8, oem_text) = run_both(&ep, host, oem, "cluster group").await;
        assert!(utf8.starts_with("[exit 0]"), "{host}: {utf8}");
        assert!(utf8.contains(expect), "{host} in UTF-8: {utf8}");
        assert_eq!(
            utf8, oem_text,
            "{host}: code page {oem} decodes to the same text"
        );
        assert!(
            !utf8.contains('\u{FFFD}'),
            "{host}: no replacement characters"
        );
    }
    // A localised service message with accented letters, on the Italian node: stop the service,
    // then both code pages read the same "not started" message (NET HELPMSG 3521).
    run_both(&ep, "MIL-N1", 850, "net stop \"SNMP\"").await;
    let (utf8, cp850) = run_both(&ep, "MIL-N1", 850, "net stop \"SNMP\"").await;
    assert!(utf8.contains("3521"), "{utf8}");
    assert!(!utf8.is_ascii(), "Italian text: {utf8}");
    assert_eq!(utf8, cp850);
    assert!(!utf8.contains('Ŕ'), "no cp852 mojibake of è: {utf8}");
    lab.shutdown().await;
}
