//! Interoperability with pywinrm, the reference Python client (a plain, Windows-shaped
//! client: options in the header, its own NTLM via requests-ntlm/pyspnego).
//!
//! Ignored unless asked for (`--include-ignored`) with `LAB_PYWINRM_PYTHON` naming a Python that
//! can `import winrm` (e.g. a venv with `pip install pywinrm`): `.ci/run` does that when PyPI
//! answers, so `cargo test` itself needs no Python.

use std::sync::Arc;

use lockstep_lab::server::test_backend::TestBackend;
use lockstep_lab::server::{LabServer, ServerConfig};

const SCRIPT: &str = r#"
import json, sys, winrm
url, transport, user, password = sys.argv[1:5]
out = {}
s = winrm.Session(url, auth=(user, password), transport=transport, message_encryption='never')
r = s.run_cmd('echo', ['hello', 'pywinrm'])
out['echo'] = [r.std_out.decode('ascii'), r.status_code]
r = s.run_cmd('err', ['bad'])
out['err'] = [r.std_err.decode('ascii'), r.status_code]
p = winrm.Protocol(url, transport=transport, username=user, password=password, message_encryption='never')
shell = p.open_shell(codepage=852)
cmd = p.run_command(shell, 'type', ['cz.txt'])
stdout, stderr, code = p.get_command_output(shell, cmd)
p.cleanup_command(shell, cmd)
p.close_shell(shell)
out['cz'] = [list(stdout), code]
try:
    winrm.Session(url, auth=(user, 'wrong'), transport=transport, message_encryption='never').run_cmd('echo', ['x'])
    out['wrong'] = 'accepted'
except Exception as e:
    out['wrong'] = type(e).__name__
print(json.dumps(out))
"#;

#[tokio::test]
#[ignore = "needs LAB_PYWINRM_PYTHON: a Python with pywinrm (.ci/run provides one)"]
async fn pywinrm_basic_and_ntlm() {
    let python = std::env::var("LAB_PYWINRM_PYTHON")
        .expect("LAB_PYWINRM_PYTHON names a Python with pywinrm");
    let backend = Arc::new(TestBackend::new(1));
    let cz = "Služba byla úspěšně spuštěna\r\n";
    backend.set_file("cz.txt", cz);
    let server = LabServer::start(
        backend,
        ServerConfig::with_credentials("labadmin", "Py-Pass-1"),
    )
    .await
    .unwrap();
    let url = server.endpoints()["NODE1"].clone();
    for transport in ["basic", "ntlm"] {
        let output = tokio::process::Command::new(&python)
            .args(["-c", SCRIPT, &url, transport, "labadmin", "Py-Pass-1"])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{transport}: {stderr}");
        let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(result["echo"][0], "hello pywinrm\r\n", "{transport}");
        assert_eq!(result["echo"][1], 0);
        assert_eq!(result["err"][0], "bad\r\n");
        assert_eq!(result["err"][1], 1);
        let bytes: Vec<u8> = result["cz"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(
            oem_cp::decode_string_complete_table(&bytes, &oem_cp::code_table::DECODING_TABLE_CP852),
            cz
        );
        assert_eq!(result["wrong"], "InvalidCredentialsError", "{transport}");
    }
    server.shutdown().await;
}
