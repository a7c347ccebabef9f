//! The lab WinRM server driven through the real `winrm-rs` client over loopback.

use std::sync::Arc;

use lockstep_lab::server::test_backend::TestBackend;
use lockstep_lab::server::{LabServer, ServerConfig, CTRL_C_EXIT};
use winrm_rs::{
    AuthMethod, EncryptionMode, WinrmClient, WinrmConfig, WinrmCredentials, WinrmError,
};

const USER: &str = "labadmin";
const PASSWORD: &str = "Test-Pass-1";

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("endpoint URL has a port")
}

fn client(port: u16, auth: AuthMethod, password: &str, codepage: u32, timeout: u64) -> WinrmClient {
    let config = WinrmConfig {
        port,
        auth_method: auth,
        encryption: EncryptionMode::Never,
        operation_timeout_secs: timeout,
        connect_timeout_secs: 5,
        codepage,
        ..WinrmConfig::default()
    };
    WinrmClient::new(config, WinrmCredentials::new(USER, password, "")).unwrap()
}

async fn start(backend: Arc<TestBackend>) -> LabServer {
    LabServer::start(
        backend,
        ServerConfig {
            // winrm-rs 1.1 (this test's client) cannot seal: the lab's opt-in for a weakened
            // node (AllowUnencrypted=true) lets it exercise the protocol layer.
            allow_unencrypted: true,
            ..ServerConfig::with_credentials(USER, PASSWORD)
        },
    )
    .await
    .unwrap()
}

/// Runs one command to completion with the low-level calls; TimedOut faults are empty polls.
async fn run(
    client: &WinrmClient,
    shell: &str,
    command: &str,
    args: &[&str],
) -> (Vec<u8>, Vec<u8>, i32, u32) {
    let id = client
        .execute_command("127.0.0.1", shell, command, args)
        .await
        .unwrap();
    let (mut out, mut err, mut timeouts) = (Vec::new(), Vec::new(), 0u32);
    loop {
        match client.receive_output("127.0.0.1", shell, &id).await {
            Ok(r) => {
                out.extend_from_slice(&r.stdout);
                err.extend_from_slice(&r.stderr);
                if r.done {
                    client
                        .signal_terminate("127.0.0.1", shell, &id)
                        .await
                        .unwrap();
                    return (out, err, r.exit_code.unwrap(), timeouts);
                }
            }
            Err(WinrmError::Soap(e)) if e.to_string().contains("TimedOut") => timeouts += 1,
            Err(e) => panic!("receive failed: {e}"),
        }
    }
}

#[tokio::test]
async fn basic_lifecycle_create_command_receive_signal_delete() {
    let backend = Arc::new(TestBackend::new(2));
    let server = start(backend.clone()).await;
    let endpoints = server.endpoints();
    assert_eq!(endpoints.len(), 2);
    let c = client(
        port_of(&endpoints["NODE1"]),
        AuthMethod::Basic,
        PASSWORD,
        65001,
        10,
    );
    let shell = c.create_shell("127.0.0.1").await.unwrap();
    let (out, err, code, _) = run(&c, &shell, "echo", &["hello", "lab"]).await;
    assert_eq!(out, b"hello lab\r\n");
    assert!(err.is_empty());
    assert_eq!(code, 0);
    let (out, err, code, _) = run(&c, &shell, "cmd.exe", &["/c", "err", "boom"]).await;
    assert!(out.is_empty());
    assert_eq!(err, b"boom\r\n");
    assert_eq!(code, 1);
    let (_, _, code, _) = run(&c, &shell, "exit", &["3010"]).await;
    assert_eq!(code, 3010);
    let (out, _, _, _) = run(&c, &shell, "lines", &["50"]).await;
    assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 50);
    c.delete_shell("127.0.0.1", &shell).await.unwrap();
    // The command line reached the right host, as cmd.exe receives it.
    assert_eq!(backend.started("NODE1")[0], "echo hello lab");
    assert!(backend.started("NODE2").is_empty());
    // A deleted shell is unknown afterwards.
    let gone = c
        .execute_command("127.0.0.1", &shell, "echo", &["x"])
        .await
        .unwrap_err();
    assert!(gone.to_string().contains("InvalidSelectors"), "{gone}");
    server.shutdown().await;
}

#[tokio::test]
async fn run_command_high_level_and_concurrent_shells() {
    let backend = Arc::new(TestBackend::new(1));
    let server = start(backend).await;
    let port = port_of(&server.endpoints()["NODE1"]);
    let mut tasks = Vec::new();
    for i in 0..8 {
        tasks.push(tokio::spawn(async move {
            let c = client(port, AuthMethod::Basic, PASSWORD, 65001, 10);
            let out = c
                .run_command("127.0.0.1", "echo", &[&format!("n{i}")])
                .await
                .unwrap();
            assert_eq!(out.stdout, format!("n{i}\r\n").into_bytes());
            assert_eq!(out.exit_code, 0);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_password_is_401_for_basic_and_ntlm() {
    let backend = Arc::new(TestBackend::new(1));
    let server = start(backend).await;
    let port = port_of(&server.endpoints()["NODE1"]);
    for auth in [AuthMethod::Basic, AuthMethod::Ntlm] {
        let c = client(port, auth.clone(), "wrong", 65001, 10);
        let e = c.create_shell("127.0.0.1").await.unwrap_err();
        assert!(matches!(e, WinrmError::AuthFailed(_)), "{auth:?}: {e}");
        assert!(
            e.to_string().contains("401") || e.to_string().contains("rejected"),
            "{auth:?}: {e}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn ntlm_lifecycle() {
    let backend = Arc::new(TestBackend::new(1));
    let server = start(backend).await;
    let c = client(
        port_of(&server.endpoints()["NODE1"]),
        AuthMethod::Ntlm,
        PASSWORD,
        65001,
        10,
    );
    let shell = c.create_shell("127.0.0.1").await.unwrap();
    let (out, _, code, _) = run(&c, &shell, "echo", &["over ntlm"]).await;
    assert_eq!(out, b"over ntlm\r\n");
    assert_eq!(code, 0);
    c.delete_shell("127.0.0.1", &shell).await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn receive_long_poll_times_out_then_completes() {
    let backend = Arc::new(TestBackend::new(1));
    let server = start(backend).await;
    let c = client(
        port_of(&server.endpoints()["NODE1"]),
        AuthMethod::Basic,
        PASSWORD,
        65001,
        1,
    );
    let shell = c.create_shell("127.0.0.1").await.unwrap();
    // Silent for 2.5 s with a 1 s operation timeout: at least one TimedOut fault, then output.
    let (out, _, code, timeouts) = run(&c, &shell, "slow", &["2500", "finally"]).await;
    assert!(timeouts >= 1, "expected TimedOut polls, got {timeouts}");
    assert_eq!(out, b"finally\r\n");
    assert_eq!(code, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn ctrl_c_and_terminate_stop_a_running_command() {
    let backend = Arc::new(TestBackend::new(1));
    let server = start(backend).await;
    let port = port_of(&server.endpoints()["NODE1"]);
    let c = client(port, AuthMethod::Basic, PASSWORD, 65001, 5);
    let shell = c.open_shell("127.0.0.1").await.unwrap();
    let id = shell.start_command("wait", &[]).await.unwrap();
    shell.signal_ctrl_c(&id).await.unwrap();
    let r = shell.receive_next(&id).await.unwrap();
    assert!(r.done);
    assert_eq!(r.exit_code, Some(CTRL_C_EXIT));
    // terminate forgets the command: a later Receive is the unknown-command fault.
    c.signal_terminate("127.0.0.1", shell.shell_id(), &id)
        .await
        .unwrap();
    let Err(e) = shell.receive_next(&id).await else {
        panic!("a terminated command is unknown");
    };
    assert!(e.to_string().contains("InvalidSelectors"), "{e}");
    shell.close().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn stdin_send_reaches_the_process() {
    let backend = Arc::new(TestBackend::new(1));
    let server = start(backend).await;
    let c = client(
        port_of(&server.endpoints()["NODE1"]),
        AuthMethod::Basic,
        PASSWORD,
        65001,
        5,
    );
    let shell = c.open_shell("127.0.0.1").await.unwrap();
    let id = shell.start_command("cat", &[]).await.unwrap();
    shell
        .send_input(&id, b"first line\r\n", false)
        .await
        .unwrap();
    shell.send_input(&id, b"second", true).await.unwrap();
    let mut out = Vec::new();
    loop {
        let r = shell.receive_next(&id).await.unwrap();
        out.extend_from_slice(&r.stdout);
        if r.done {
            assert_eq!(r.exit_code, Some(0));
            break;
        }
    }
    assert_eq!(out, b"first line\r\nsecond");
    shell.close().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn output_larger_than_the_envelope_arrives_whole_over_several_receives() {
    let backend = Arc::new(TestBackend::new(1));
    let text: String = (0..20_000).map(|i| format!("řádek {i}\r\n")).collect();
    backend.set_file("big.txt", &text);
    let server = start(backend).await;
    let c = client(
        port_of(&server.endpoints()["NODE1"]),
        AuthMethod::Basic,
        PASSWORD,
        65001,
        10,
    );
    let shell = c.open_shell("127.0.0.1").await.unwrap();
    let id = shell.start_command("type", &["big.txt"]).await.unwrap();
    let (mut out, mut receives) = (Vec::new(), 0);
    loop {
        let r = shell.receive_next(&id).await.unwrap();
        receives += 1;
        out.extend_from_slice(&r.stdout);
        if r.done {
            assert_eq!(r.exit_code, Some(0));
            break;
        }
    }
    assert!(text.len() > 153_600 && receives > 1, "{receives} receives");
    assert_eq!(String::from_utf8(out).unwrap(), text);
    shell.close().await.unwrap();
    server.shutdown().await;
}
