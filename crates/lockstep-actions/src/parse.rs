//! Pure parsers for what Windows answers: `sc query` state numbers, `reg query` values, CSV
//! `tasklist` lines, WMI object references, and the meaning of well-known exit codes.
//!
//! Every parser reads locale-independent parts only (numbers, registry data, WMI key values,
//! quoted CSV fields): the labels, state words and INFO lines that cs-CZ, it-IT, nl-NL and ja-JP
//! nodes print in their own language are never matched.

use lockstep_core::{Edition, Version};

/// `sc query` state number: the service is stopped.
pub const SERVICE_STOPPED: u32 = 1;
/// `sc query` state number: the service is starting.
pub const SERVICE_START_PENDING: u32 = 2;
/// `sc query` state number: the service is stopping.
pub const SERVICE_STOP_PENDING: u32 = 3;
/// `sc query` state number: the service is running.
pub const SERVICE_RUNNING: u32 = 4;

/// `sc query` / `net` exit code: the service does not exist (`ERROR_SERVICE_DOES_NOT_EXIST`).
pub const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;

/// Installer exit code: success, restart required (`ERROR_SUCCESS_REBOOT_REQUIRED`).
pub const EXIT_REBOOT_REQUIRED: i32 = 3010;
/// Installer exit code: success, the installer started a restart (`ERROR_SUCCESS_REBOOT_INITIATED`).
pub const EXIT_REBOOT_INITIATED: i32 = 1641;

/// `wlbs query` exit code: the host is converged (in the cluster).
pub const WLBS_CONVERGED: i32 = 1005;
/// `wlbs query` exit code: cluster operations are stopped on the host.
pub const WLBS_STOPPED: i32 = 1007;
/// `wlbs query` exit code: the host is draining.
pub const WLBS_DRAINING: i32 = 1009;

/// `MSCluster_ResourceGroup.State`: online.
pub const GROUP_ONLINE: u32 = 0;
/// `MSCluster_ResourceGroup.State`: pending (coming online or going offline).
pub const GROUP_PENDING: u32 = 4;
/// `MSCluster_Resource.State`: going offline.
pub const RESOURCE_OFFLINE_PENDING: u32 = 131;
/// `MSCluster_Resource.State`: online.
pub const RESOURCE_ONLINE: u32 = 2;
/// `MSCluster_Resource.State`: offline.
pub const RESOURCE_OFFLINE: u32 = 3;

/// The state number of `sc query` output (1 stopped, 2 start pending, 3 stop pending, 4 running,
/// 5-7 continue/pause pending and paused), or `None` when the output holds no service record.
///
/// The line labelled `STATE` is read when present. A node whose `sc.exe` prints translated
/// labels is read by position: the state is the second numeric property of the record (after
/// `TYPE`), whatever its label and state word say.
pub fn sc_state(output: &str) -> Option<u32> {
    let mut numeric = Vec::new();
    for line in output.lines() {
        // Some translated builds print a full-width colon.
        let Some((label, value)) = line.split_once([':', '\u{ff1a}']) else {
            continue;
        };
        let value = value.trim_start();
        let digits: String = value.chars().take_while(|c| c.is_ascii_digit()).collect();
        if digits.is_empty() {
            continue;
        }
        // A numeric property is `N` followed by whitespace or the end (`4  RUNNING`), never a
        // hex value (`0x0`) nor a pid-like field without a word.
        let rest = &value[digits.len()..];
        if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
            continue;
        }
        let Ok(n) = digits.parse::<u32>() else {
            continue;
        };
        if label.trim().eq_ignore_ascii_case("STATE") {
            return (1..=7).contains(&n).then_some(n);
        }
        numeric.push(n);
    }
    numeric.get(1).copied().filter(|n| (1..=7).contains(n))
}

/// One value line of `reg query` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegValue {
    /// Value name (may hold spaces).
    pub name: String,
    /// Type (`REG_DWORD`, `REG_SZ`...).
    pub kind: String,
    /// Data as printed (`0x1dd6`, `Enterprise`).
    pub data: String,
}

const REG_TYPES: [&str; 9] = [
    "REG_SZ",
    "REG_EXPAND_SZ",
    "REG_MULTI_SZ",
    "REG_DWORD",
    "REG_DWORD_BIG_ENDIAN",
    "REG_QWORD",
    "REG_BINARY",
    "REG_NONE",
    "REG_LINK",
];

/// The value lines of `reg query` output (`    NAME    REG_DWORD    0x1dd6`, with spaces or tabs
/// as separators); key lines, blank lines and localised error text are skipped.
pub fn reg_values(output: &str) -> Vec<RegValue> {
    let mut values = Vec::new();
    for line in output.lines() {
        if !line.starts_with([' ', '\t']) {
            continue; // the key path line, or an `ERROR:` line
        }
        let tokens: Vec<(usize, &str)> = token_spans(line);
        let Some(pos) = tokens.iter().position(|(_, t)| REG_TYPES.contains(t)) else {
            continue;
        };
        if pos == 0 {
            continue;
        }
        let (type_start, kind) = tokens[pos];
        let name = line[..type_start].trim().to_owned();
        let data = line[type_start + kind.len()..].trim().to_owned();
        values.push(RegValue {
            name,
            kind: kind.to_owned(),
            data,
        });
    }
    values
}

fn token_spans(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &line[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &line[s..]));
    }
    out
}

/// The data of the value called `name` (case-insensitive).
pub fn reg_value<'a>(values: &'a [RegValue], name: &str) -> Option<&'a RegValue> {
    values.iter().find(|v| v.name.eq_ignore_ascii_case(name))
}

/// A `REG_DWORD` as printed by `reg query` (`0x1dd6`), or plain decimal.
pub fn reg_dword(data: &str) -> Option<u32> {
    let d = data.trim();
    match d.strip_prefix("0x").or_else(|| d.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => d.parse().ok(),
    }
}

/// The Exchange build from the values of `HKLM\SOFTWARE\Microsoft\Exchange\Setup`:
/// `MsiProductMajor.MsiProductMinor.MsiBuildMajor.MsiBuildMinor`.
pub fn exchange_build(values: &[RegValue]) -> Option<Version> {
    let part = |n: &str| reg_value(values, n).and_then(|v| reg_dword(&v.data));
    Some(Version::new(
        part("MsiProductMajor")?,
        part("MsiProductMinor")?,
        part("MsiBuildMajor")?,
        part("MsiBuildMinor")?,
    ))
}

/// The build and revision in `Exchange_Server.ExchangeVersion` (`Version 6.5 (Build 7638.2:
/// Service Pack 2)` gives `(7638, 2)`): the part after `Build`, which Exchange writes in English
/// on every locale.
pub fn exchange_version_build(text: &str) -> Option<(u32, u32)> {
    let rest = &text[text.find("Build ")? + "Build ".len()..];
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let (build, revision) = digits.split_once('.').unwrap_or((digits.as_str(), "0"));
    Some((build.parse().ok()?, revision.parse().ok()?))
}

/// The edition from the `Edition` value (`Standard`, `Enterprise`, `Conferencing`,
/// `SmallBusiness`; registry data, never localised).
pub fn exchange_edition(values: &[RegValue]) -> Option<Edition> {
    let v = reg_value(values, "Edition")?;
    let d: String = v
        .data
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    match d.as_str() {
        "standard" => Some(Edition::Standard),
        "enterprise" => Some(Edition::Enterprise),
        "conferencing" => Some(Edition::Conferencing),
        "smallbusiness" | "sbs" => Some(Edition::SmallBusiness),
        _ => None,
    }
}

/// What the Windows version key says (`HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsVersion {
    /// `ProductName` (registry data, never localised: `Microsoft Windows Server 2003`).
    pub product: Option<String>,
    /// `CurrentVersion` (`5.2`; Windows 10 / Server 2016 and later keep `6.3` here).
    pub version: String,
    /// `CurrentBuildNumber` (`3790`, `17763`).
    pub build: u32,
    /// `UBR`, the update build revision of Windows 10 / Server 2016 and later.
    pub ubr: Option<u32>,
}

impl WindowsVersion {
    /// `major.minor.build` (`5.2.3790`), with `.UBR` when the node has one (`6.3.17763.5696`).
    pub fn full(&self) -> String {
        match self.ubr {
            Some(u) => format!("{}.{}.{u}", self.version, self.build),
            None => format!("{}.{}", self.version, self.build),
        }
    }
}

/// The Windows version from the values of the `CurrentVersion` key, or `None` without a
/// `CurrentVersion` and a numeric `CurrentBuildNumber`.
pub fn windows_version(values: &[RegValue]) -> Option<WindowsVersion> {
    let version = reg_value(values, "CurrentVersion")?.data.trim().to_owned();
    let build = reg_value(values, "CurrentBuildNumber")?
        .data
        .trim()
        .parse()
        .ok()?;
    Some(WindowsVersion {
        product: reg_value(values, "ProductName").map(|v| v.data.trim().to_owned()),
        version,
        build,
        ubr: reg_value(values, "UBR").and_then(|v| reg_dword(&v.data)),
    })
}

/// A local fixed disk as `Win32_LogicalDisk` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// `C:`.
    pub device: String,
    /// Free bytes.
    pub free_bytes: u64,
    /// Size in bytes, when the provider gives it.
    pub size_bytes: Option<u64>,
}

/// One process of `tasklist /fo csv /nh` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskListEntry {
    /// Image name (`setup.exe`).
    pub image: String,
    /// Process id.
    pub pid: u32,
}

/// The CSV lines of `tasklist /fo csv /nh` output; the localised INFO line printed when nothing
/// matches is not CSV and is skipped.
pub fn tasklist_csv(output: &str) -> Vec<TaskListEntry> {
    output
        .lines()
        .filter(|l| l.trim_start().starts_with('"'))
        .filter_map(|l| {
            let fields = csv_fields(l.trim());
            let image = fields.first()?.clone();
            let pid = fields.get(1)?.trim().parse().ok()?;
            Some(TaskListEntry { image, pid })
        })
        .collect()
}

fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// A WMI object reference as found in association classes: `MSCluster_Node.Name="PRG-N1"`, or
/// with a full path `\\PRG-N1\root\MSCluster:MSCluster_Node.Name="PRG-N1"`. Returns the class
/// and the key value.
pub fn wmi_ref(s: &str) -> Option<(&str, &str)> {
    let s = s.trim();
    let eq = s.find("=")?;
    let (path, value) = (&s[..eq], &s[eq + 1..]);
    let dot = path.rfind('.')?;
    let class_part = &path[..dot];
    let class = class_part
        .rsplit([':', '\\'])
        .next()
        .filter(|c| !c.is_empty())?;
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    Some((class, value))
}

/// The value of a WMI key reference, if the reference is to `class` (case-insensitive).
pub fn wmi_ref_of<'a>(s: &'a str, class: &str) -> Option<&'a str> {
    wmi_ref(s).and_then(|(c, v)| c.eq_ignore_ascii_case(class).then_some(v))
}

/// The Win32 error name cluster.exe's exit code stands for (docs/commands.md), for messages.
pub fn win32_error_name(code: i32) -> Option<&'static str> {
    Some(match code {
        5 => "ERROR_ACCESS_DENIED",
        1722 => "RPC_S_SERVER_UNAVAILABLE (the Cluster service of the node cluster.exe ran on is stopped)",
        5005 => "ERROR_HOST_NODE_NOT_AVAILABLE",
        5007 => "ERROR_RESOURCE_NOT_FOUND",
        5013 => "ERROR_GROUP_NOT_FOUND",
        5023 => "ERROR_INVALID_STATE",
        5038 => "ERROR_RESOURCE_FAILED",
        5042 => "ERROR_CLUSTER_NODE_NOT_FOUND",
        5050 => "ERROR_CLUSTER_NODE_DOWN (the destination node's Cluster service is down)",
        1060 => "ERROR_SERVICE_DOES_NOT_EXIST",
        1603 => "ERROR_INSTALL_FAILURE",
        1618 => "ERROR_INSTALL_ALREADY_RUNNING (another installer runs: G6)",
        _ => return None,
    })
}

/// The Win32 code and its name as `5050 (ERROR_CLUSTER_NODE_DOWN ...)`, or the bare code.
pub fn describe_exit(code: i32) -> String {
    match win32_error_name(code) {
        Some(n) => format!("{code} ({n})"),
        None => code.to_string(),
    }
}

/// Whether installer output shows a file held open by another program (G5).
pub fn mentions_file_in_use(output: &str) -> bool {
    output.contains("FileInUse")
}

/// A CIM datetime (`20261121081131.000000+000`) reduced to what identifies a boot: the trimmed
/// text. Two readings of the same boot compare equal.
pub fn boot_time(value: &str) -> Option<String> {
    let v = value.trim();
    (v.len() >= 14 && v.as_bytes()[..14].iter().all(u8::is_ascii_digit)).then(|| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SC_EN: &str = "\r\nSERVICE_NAME: clussvc \r\n        TYPE               : 10  WIN32_OWN_PROCESS  \r\n        STATE              : 4  RUNNING \r\n                                (STOPPABLE, PAUSABLE, ACCEPTS_SHUTDOWN)\r\n        WIN32_EXIT_CODE    : 0  (0x0)\r\n        SERVICE_EXIT_CODE  : 0  (0x0)\r\n        CHECKPOINT         : 0x0\r\n        WAIT_HINT          : 0x0\r\n";

    // Translated labels and state words (as some localised sc.exe builds print them).
    const SC_CS: &str = "\nNÁZEV_SLUŽBY: MSExchangeSA\n        TYP                : 10  WIN32_OWN_PROCESS\n        STAV               : 1  ZASTAVENO\n        KÓD_UKONČENÍ_WIN32 : 1077  (0x435)\n";
    const SC_JA: &str = "\nSERVICE_NAME: SMTPSVC\n        種類               : 20  WIN32_SHARE_PROCESS\n        状態               : 3  STOP_PENDING 停止保留中\n        WIN32_EXIT_CODE    : 0  (0x0)\n";
    const SC_IT: &str = "\nNOME_SERVIZIO: W3SVC\n        TIPO               : 20  WIN32_SHARE_PROCESS\n        STATO              : 2  AVVIO IN CORSO\n        CODICE_USCITA_WIN32: 0  (0x0)\n";
    const SC_NL: &str = "\nSERVICE_NAME: McShield\n        TYPE               : 10  WIN32_OWN_PROCESS\n        STATE              : 4  RUNNING\n                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)\n";

    #[test]
    fn exchange_version_build_reads_build_and_revision() {
        assert_eq!(
            exchange_version_build("Version 6.5 (Build 7638.2: Service Pack 2)"),
            Some((7638, 2))
        );
        assert_eq!(
            exchange_version_build("Version 6.5 (Build 6944.4)"),
            Some((6944, 4))
        );
        assert_eq!(exchange_version_build("Version 6.5"), None);
        assert_eq!(exchange_version_build("Version 6.5 (Build x)"), None);
    }

    #[test]
    fn sc_state_reads_the_number_in_every_locale() {
        assert_eq!(sc_state(SC_EN), Some(SERVICE_RUNNING));
        assert_eq!(sc_state(SC_CS), Some(SERVICE_STOPPED));
        assert_eq!(sc_state(SC_JA), Some(SERVICE_STOP_PENDING));
        assert_eq!(sc_state(SC_IT), Some(SERVICE_START_PENDING));
        assert_eq!(sc_state(SC_NL), Some(SERVICE_RUNNING));
    }

    #[test]
    fn sc_state_ignores_words_and_error_text() {
        // The word says RUNNING, the number says stopped: the number wins.
        let lying =
            "SERVICE_NAME: x\n        TYPE : 10  WIN32_OWN_PROCESS\n        STATE : 1  RUNNING\n";
        assert_eq!(sc_state(lying), Some(SERVICE_STOPPED));
        let missing = "[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\nThe specified service does not exist as an installed service.\r\n";
        assert_eq!(sc_state(missing), None);
        assert_eq!(sc_state(""), None);
    }

    const REG_EN: &str = "\r\n! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup\r\n    Services    REG_SZ    C:\\Program Files\\Exchsrvr\r\n    MsiProductMajor    REG_DWORD    0x6\r\n    MsiProductMinor    REG_DWORD    0x5\r\n    MsiBuildMajor    REG_DWORD    0x1dd6\r\n    MsiBuildMinor    REG_DWORD    0x2\r\n    ServicePackBuild    REG_DWORD    0x1dd6\r\n    Edition    REG_SZ    Enterprise\r\n";
    // reg.exe of 2003 separates with tabs; the value names and data are never translated.
    const REG_TABS: &str = "\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup\n\tMsiProductMajor\tREG_DWORD\t0x6\n\tMsiProductMinor\tREG_DWORD\t0x5\n\tMsiBuildMajor\tREG_DWORD\t0x1c3a\n\tMsiBuildMinor\tREG_DWORD\t0x6\n\tEdition\tREG_SZ\tStandard\n";

    #[test]
    fn reg_query_build_and_edition() {
        let v = reg_values(REG_EN);
        assert_eq!(exchange_build(&v), Some(Version::new(6, 5, 7638, 2)));
        assert_eq!(exchange_edition(&v), Some(Edition::Enterprise));
        assert_eq!(
            reg_value(&v, "services").map(|v| v.data.as_str()),
            Some("C:\\Program Files\\Exchsrvr")
        );
        let t = reg_values(REG_TABS);
        assert_eq!(exchange_build(&t), Some(Version::new(6, 5, 7226, 6)));
        assert_eq!(exchange_edition(&t), Some(Edition::Standard));
    }

    #[test]
    fn reg_query_absent_key_in_several_locales() {
        for out in [
            "ERROR: The system was unable to find the specified registry key or value.\r\n",
            "CHYBA: Systém nemohl nalézt zadaný klíč registru nebo hodnotu.\r\n",
            "ERRORE: impossibile trovare la chiave o il valore del Registro di sistema specificato.\r\n",
            "エラー: 指定されたレジストリ キーまたは値が見つかりませんでした。\r\n",
        ] {
            assert!(reg_values(out).is_empty(), "{out}");
            assert_eq!(exchange_build(&reg_values(out)), None);
        }
    }

    #[test]
    fn reg_value_names_with_spaces_and_sz_data() {
        let out = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Nls\\CodePage\n    OEMCP    REG_SZ    852\n    My Value    REG_SZ    a REG_SZ b\n";
        let v = reg_values(out);
        assert_eq!(reg_value(&v, "OEMCP").unwrap().data, "852");
        assert_eq!(reg_value(&v, "My Value").unwrap().data, "a REG_SZ b");
        assert_eq!(reg_dword("0x1dd6"), Some(7638));
        assert_eq!(reg_dword("1641"), Some(1641));
        assert_eq!(reg_dword("0xZZ"), None);
    }

    #[test]
    fn tasklist_reads_csv_only() {
        let en = "\"setup.exe\",\"1234\",\"Console\",\"0\",\"4,120 K\"\r\n\"update.exe\",\"88\",\"RDP-Tcp#1\",\"1\",\"12.004 K\"\r\n";
        let e = tasklist_csv(en);
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[0],
            TaskListEntry {
                image: "setup.exe".into(),
                pid: 1234
            }
        );
        assert_eq!(e[1].pid, 88);
        for none in [
            "INFO: No tasks running with the specified criteria.\r\n",
            "INFORMACE: Nejsou spuštěny žádné úlohy odpovídající zadaným kritériím.\r\n",
            "INFORMAZIONI: nessuna attività in esecuzione corrispondente ai criteri specificati.\r\n",
            "情報: 指定された条件に一致するタスクは実行されていません。\r\n",
        ] {
            assert!(tasklist_csv(none).is_empty(), "{none}");
        }
    }

    #[test]
    fn wmi_refs() {
        assert_eq!(
            wmi_ref("MSCluster_Node.Name=\"PRG-N1\""),
            Some(("MSCluster_Node", "PRG-N1"))
        );
        assert_eq!(
            wmi_ref("\\\\PRG-N1\\root\\MSCluster:MSCluster_ResourceGroup.Name=\"EVS1 Group\""),
            Some(("MSCluster_ResourceGroup", "EVS1 Group"))
        );
        assert_eq!(
            wmi_ref_of(
                "MSCluster_Resource.Name=\"EVS1 System Attendant\"",
                "mscluster_resource"
            ),
            Some("EVS1 System Attendant")
        );
        assert_eq!(
            wmi_ref_of("MSCluster_Node.Name=\"N\"", "MSCluster_Resource"),
            None
        );
        assert_eq!(wmi_ref("garbage"), None);
    }

    #[test]
    fn exit_codes_and_boot_times() {
        assert!(describe_exit(5050).contains("ERROR_CLUSTER_NODE_DOWN"));
        assert_eq!(describe_exit(42), "42");
        assert!(mentions_file_in_use(
            "Error: FileInUse:: Added to Filelist: store.exe"
        ));
        assert_eq!(
            boot_time(" 20261121081131.000000+000 "),
            Some("20261121081131.000000+000".to_owned())
        );
        assert_eq!(boot_time("yesterday"), None);
    }

    #[test]
    fn windows_version_from_the_registry() {
        let w2003 = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\n    ProductName    REG_SZ    Microsoft Windows Server 2003\n    CurrentVersion    REG_SZ    5.2\n    CurrentBuildNumber    REG_SZ    3790\n";
        let v = windows_version(&reg_values(w2003)).unwrap();
        assert_eq!(v.full(), "5.2.3790");
        assert_eq!(v.product.as_deref(), Some("Microsoft Windows Server 2003"));
        let w2019 = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\n\tCurrentVersion\tREG_SZ\t6.3\n\tCurrentBuildNumber\tREG_SZ\t17763\n\tUBR\tREG_DWORD\t0x1640\n";
        let v = windows_version(&reg_values(w2019)).unwrap();
        assert_eq!((v.build, v.ubr), (17763, Some(5696)));
        assert_eq!(v.full(), "6.3.17763.5696");
        assert_eq!(windows_version(&reg_values("ERROR: x\n")), None);
    }

    #[test]
    fn sc_state_with_full_width_colons() {
        let ja = "SERVICE_NAME\u{ff1a} W3SVC\n        種類\u{ff1a} 20  WIN32_SHARE_PROCESS\n        状態\u{ff1a} 4  実行中\n";
        assert_eq!(sc_state(ja), Some(SERVICE_RUNNING));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn label() -> impl Strategy<Value = String> {
            "[A-Za-z\u{c0}-\u{17f}\u{3040}-\u{30ff}_ ]{1,14}"
                .prop_filter("not the English label", |l| {
                    !l.trim().eq_ignore_ascii_case("STATE")
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Whatever the labels and state words say, the state number is read.
            #[test]
            fn sc_state_by_position(l1 in label(), l2 in label(), l3 in label(),
                                    w in "[A-Za-z\u{c0}-\u{17f}\u{3040}-\u{30ff}_ ()]{0,20}",
                                    n in 1u32..=7) {
                let out = format!(
                    "\r\nSERVICE_NAME: svc\r\n        {l1} : 10  WIN32_OWN_PROCESS\r\n        {l2} : {n}  {w}\r\n        {l3} : 1077  (0x435)\r\n"
                );
                prop_assert_eq!(sc_state(&out), Some(n));
            }

            /// A value line parses back to its name, type and data, with spaces or tabs.
            #[test]
            fn reg_value_round_trip(name in "[A-Za-z][A-Za-z0-9 ]{0,20}[A-Za-z0-9]",
                                    kind in proptest::sample::select(vec!["REG_SZ", "REG_DWORD", "REG_MULTI_SZ", "REG_EXPAND_SZ", "REG_BINARY"]),
                                    data in "[!-~]([ -~]{0,30}[!-~])?",
                                    tabs in any::<bool>()) {
                let sep = if tabs { "\t" } else { "    " };
                let out = format!("HKEY_LOCAL_MACHINE\\SOFTWARE\\X\r\n{sep}{name}{sep}{kind}{sep}{data}\r\n");
                let v = reg_values(&out);
                prop_assert_eq!(v.len(), 1);
                prop_assert_eq!(&v[0].name, &name);
                prop_assert_eq!(v[0].kind.as_str(), kind);
                prop_assert_eq!(&v[0].data, &data);
            }

            /// DWORDs round-trip through reg.exe's hex form.
            #[test]
            fn reg_dword_round_trip(x in any::<u32>()) {
                prop_assert_eq!(reg_dword(&format!("0x{x:x}")), Some(x));
            }

            /// Parsers never panic on arbitrary text.
            #[test]
            fn parsers_total(s in "\\PC{0,200}") {
                let _ = sc_state(&s);
                let _ = reg_values(&s);
                let _ = tasklist_csv(&s);
                let _ = wmi_ref(&s);
                let _ = boot_time(&s);
            }
        }
    }
}
