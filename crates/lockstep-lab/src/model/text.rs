//! Localised text of Windows Server 2003's console tools (cmd, net, cluster.exe, tasklist,
//! chcp), for the five locales the fleet runs. Best knowledge of the shipped strings; Lockstep
//! never parses them (docs/commands.md), people read them.

use lockstep_core::Locale;

/// The strings of one locale.
pub struct Text {
    pub not_recognized: &'static str,
    pub svc_starting: &'static str,
    pub svc_started: &'static str,
    pub svc_stopping: &'static str,
    pub svc_stopped: &'static str,
    pub svc_could_not_start: &'static str,
    pub already_started: &'static str,
    pub not_started: &'static str,
    pub invalid_service: &'static str,
    pub more_help: &'static str,
    pub system_error: &'static str,
    pub chcp: &'static str,
    pub no_tasks: &'static str,
    pub list_groups: &'static str,
    pub list_resources: &'static str,
    pub list_nodes: &'static str,
    pub h_group: &'static str,
    pub h_node: &'static str,
    pub h_status: &'static str,
    pub h_resource: &'static str,
    pub h_node_id: &'static str,
    /// Online, Offline, Failed, Partially Online, Pending.
    pub group_states: [&'static str; 5],
    /// Up, Down, Paused, Joining.
    pub node_states: [&'static str; 4],
}

const EN: Text = Text {
    not_recognized: "'{0}' is not recognized as an internal or external command,\noperable program or batch file.\n",
    svc_starting: "The {0} service is starting.",
    svc_started: "The {0} service was started successfully.",
    svc_stopping: "The {0} service is stopping.",
    svc_stopped: "The {0} service was stopped successfully.",
    svc_could_not_start: "The {0} service could not be started.",
    already_started: "The requested service has already been started.",
    not_started: "The {0} service is not started.",
    invalid_service: "The service name is invalid.",
    more_help: "More help is available by typing NET HELPMSG {0}.",
    system_error: "System error {0} has occurred ({1}).",
    chcp: "Active code page: {0}",
    no_tasks: "INFO: No tasks running with the specified criteria.",
    list_groups: "Listing status for all available resource groups:",
    list_resources: "Listing status for all available resources:",
    list_nodes: "Listing status for all available nodes:",
    h_group: "Group",
    h_node: "Node",
    h_status: "Status",
    h_resource: "Resource",
    h_node_id: "Node ID",
    group_states: ["Online", "Offline", "Failed", "Partially Online", "Pending"],
    node_states: ["Up", "Down", "Paused", "Joining"],
};

const CS: Text = Text {
    not_recognized: "'{0}' není názvem vnitřního ani vnějšího příkazu,\nspustitelného programu nebo dávkového souboru.\n",
    svc_starting: "Služba {0} se spouští.",
    svc_started: "Služba {0} byla úspěšně spuštěna.",
    svc_stopping: "Služba {0} se zastavuje.",
    svc_stopped: "Služba {0} byla úspěšně zastavena.",
    svc_could_not_start: "Službu {0} nelze spustit.",
    already_started: "Požadovaná služba již byla spuštěna.",
    not_started: "Služba {0} není spuštěna.",
    invalid_service: "Název služby je neplatný.",
    more_help: "Další nápovědu získáte zadáním příkazu NET HELPMSG {0}.",
    system_error: "Došlo k systémové chybě {0} ({1}).",
    chcp: "Aktivní znaková stránka: {0}",
    no_tasks: "INFORMACE: Nejsou spuštěny žádné úlohy odpovídající zadaným kritériím.",
    list_groups: "Výpis stavu všech dostupných skupin prostředků:",
    list_resources: "Výpis stavu všech dostupných prostředků:",
    list_nodes: "Výpis stavu všech dostupných uzlů:",
    h_group: "Skupina",
    h_node: "Uzel",
    h_status: "Stav",
    h_resource: "Prostředek",
    h_node_id: "ID uzlu",
    group_states: ["Online", "Offline", "Selhání", "Částečně online", "Čeká na vyřízení"],
    node_states: ["Spuštěno", "Mimo provoz", "Pozastaveno", "Připojování"],
};

const IT: Text = Text {
    not_recognized: "'{0}' non è riconosciuto come comando interno o esterno,\n un programma eseguibile o un file batch.\n",
    svc_starting: "Avvio del servizio {0} in corso.",
    svc_started: "Servizio {0} avviato.",
    svc_stopping: "Arresto del servizio {0} in corso.",
    svc_stopped: "Servizio {0} arrestato.",
    svc_could_not_start: "Impossibile avviare il servizio {0}.",
    already_started: "Il servizio richiesto è già stato avviato.",
    not_started: "Il servizio {0} non è stato avviato.",
    invalid_service: "Il nome del servizio non è valido.",
    more_help: "Per ulteriori informazioni, digitare NET HELPMSG {0}.",
    system_error: "Errore di sistema {0} ({1}).",
    chcp: "Tabella codici attiva: {0}",
    no_tasks: "INFORMAZIONI: nessuna attività in esecuzione corrispondente ai criteri specificati.",
    list_groups: "Elenco dello stato di tutti i gruppi di risorse disponibili:",
    list_resources: "Elenco dello stato di tutte le risorse disponibili:",
    list_nodes: "Elenco dello stato di tutti i nodi disponibili:",
    h_group: "Gruppo",
    h_node: "Nodo",
    h_status: "Stato",
    h_resource: "Risorsa",
    h_node_id: "ID nodo",
    group_states: ["In linea", "Non in linea", "Non riuscito", "Parzialmente in linea", "In sospeso"],
    node_states: ["Attivo", "Inattivo", "In pausa", "In fase di aggiunta"],
};

const NL: Text = Text {
    not_recognized: "'{0}' wordt niet herkend als een interne\nof externe opdracht, programma of batchbestand.\n",
    svc_starting: "De service {0} wordt gestart.",
    svc_started: "De service {0} is gestart.",
    svc_stopping: "De service {0} wordt gestopt.",
    svc_stopped: "De service {0} is gestopt.",
    svc_could_not_start: "De service {0} kan niet worden gestart.",
    already_started: "De gevraagde service is al gestart.",
    not_started: "De service {0} is niet gestart.",
    invalid_service: "De servicenaam is ongeldig.",
    more_help: "Typ NET HELPMSG {0} voor meer hulp.",
    system_error: "Systeemfout {0} is opgetreden ({1}).",
    chcp: "Actieve codetabel: {0}",
    no_tasks: "INFO: er worden geen taken uitgevoerd die voldoen aan de opgegeven criteria.",
    list_groups: "Status van alle beschikbare resourcegroepen weergeven:",
    list_resources: "Status van alle beschikbare resources weergeven:",
    list_nodes: "Status van alle beschikbare knooppunten weergeven:",
    h_group: "Groep",
    h_node: "Knooppunt",
    h_status: "Status",
    h_resource: "Resource",
    h_node_id: "Knooppunt-id",
    group_states: ["Online", "Offline", "Mislukt", "Gedeeltelijk online", "In behandeling"],
    node_states: ["Actief", "Niet actief", "Onderbroken", "Wordt toegevoegd"],
};

const JA: Text = Text {
    not_recognized: "'{0}' は、内部コマンドまたは外部コマンド、\n操作可能なプログラムまたはバッチ ファイルとして認識されていません。\n",
    svc_starting: "{0} サービスを開始します.",
    svc_started: "{0} サービスは正常に開始されました。",
    svc_stopping: "{0} サービスを停止中です.",
    svc_stopped: "{0} サービスは正常に停止されました。",
    svc_could_not_start: "{0} サービスを開始できませんでした。",
    already_started: "要求したサービスは既に開始されています。",
    not_started: "{0} サービスは開始されていません。",
    invalid_service: "サービス名が無効です。",
    more_help: "NET HELPMSG {0} と入力すると、より詳しい説明が得られます。",
    system_error: "システム エラー {0} が発生しました ({1})。",
    chcp: "現在のコード ページ: {0}",
    no_tasks: "情報: 指定された条件に一致するタスクは実行されていません。",
    list_groups: "利用可能なすべてのリソース グループの状態を一覧表示しています:",
    list_resources: "利用可能なすべてのリソースの状態を一覧表示しています:",
    list_nodes: "利用可能なすべてのノードの状態を一覧表示しています:",
    h_group: "グループ",
    h_node: "ノード",
    h_status: "状態",
    h_resource: "リソース",
    h_node_id: "ノード ID",
    group_states: ["オンライン", "オフライン", "失敗", "一部オンライン", "保留中"],
    node_states: ["稼働中", "停止", "一時停止", "参加中"],
};

/// The strings of `locale`.
pub fn text(locale: Locale) -> &'static Text {
    // Other languages get the English texts: the lab knows the five of the seeds.
    match locale.language() {
        "cs" => &CS,
        "it" => &IT,
        "nl" => &NL,
        "ja" => &JA,
        _ => &EN,
    }
}

/// Fills `{0}` and `{1}` in a template.
pub fn fill(template: &str, a: &str, b: &str) -> String {
    template.replace("{0}", a).replace("{1}", b)
}

/// Display width of `s` on a console: East Asian wide characters take two cells.
pub fn width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let c = c as u32;
            let wide = (0x1100..=0x115F).contains(&c)
                || (0x2E80..=0xA4CF).contains(&c)
                || (0xAC00..=0xD7A3).contains(&c)
                || (0xF900..=0xFAFF).contains(&c)
                || (0xFE30..=0xFE4F).contains(&c)
                || (0xFF00..=0xFF60).contains(&c)
                || (0xFFE0..=0xFFE6).contains(&c);
            if wide {
                2
            } else {
                1
            }
        })
        .sum()
}

/// `s` padded with spaces to `cells` console cells (never truncated).
pub fn pad(s: &str, cells: usize) -> String {
    let w = width(s);
    let mut out = s.to_owned();
    out.extend(std::iter::repeat_n(' ', cells.saturating_sub(w)));
    out
}

/// cmd's message for a system error: `System error 5050 has occurred (0x000013ba).` and the
/// error's English message line.
pub fn system_error(locale: Locale, code: u32) -> String {
    let hex = format!("0x{code:08x}");
    format!(
        "{}\n{}\n",
        fill(text(locale).system_error, &code.to_string(), &hex),
        win32_message(code)
    )
}

/// The English message of the Win32 codes the lab uses.
pub fn win32_message(code: u32) -> &'static str {
    match code {
        5005 => "A cluster node is not available for this operation.",
        5007 => "The cluster resource could not be found.",
        5013 => "The cluster group could not be found.",
        5023 => {
            "The group or resource is not in the correct state to perform the requested operation."
        }
        5038 => "A cluster resource failed.",
        5042 => "The cluster node was not found.",
        5050 => "The cluster node is down.",
        1722 => "The RPC server is unavailable.",
        1115 => "A system shutdown is in progress.",
        87 => "The parameter is incorrect.",
        _ => "Unknown error.",
    }
}
