//! XML namespace URIs and WS-Management URIs the server reads and writes.

/// SOAP 1.2 envelope.
pub const SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
/// WS-Addressing (2004/08).
pub const ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
/// DMTF WS-Management.
pub const WSMAN: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
/// Windows Remote Shell.
pub const SHELL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
/// WS-Enumeration.
pub const ENUMERATION: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration";

/// `Create` (WS-Transfer).
pub const ACTION_CREATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create";
/// `Delete` (WS-Transfer).
pub const ACTION_DELETE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete";
/// `Command` (shell).
pub const ACTION_COMMAND: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command";
/// `Receive` (shell).
pub const ACTION_RECEIVE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive";
/// `Send` (shell).
pub const ACTION_SEND: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send";
/// `Signal` (shell).
pub const ACTION_SIGNAL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal";
/// `Enumerate` (WS-Enumeration).
pub const ACTION_ENUMERATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate";
/// `Pull` (WS-Enumeration).
pub const ACTION_PULL: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull";
/// `Release` (WS-Enumeration).
pub const ACTION_RELEASE: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Release";

/// Resource URI of the cmd shell.
pub const RESOURCE_CMD: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
/// Prefix of WMI resource URIs (`<prefix><namespace>/*` or `<prefix><namespace>/<class>`).
pub const RESOURCE_WMI_PREFIX: &str = "http://schemas.microsoft.com/wbem/wsman/1/wmi/";
/// The WQL filter dialect.
pub const DIALECT_WQL: &str = "http://schemas.microsoft.com/wbem/wsman/1/WQL";

/// Signal code: terminate.
pub const SIGNAL_TERMINATE: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate";
/// Signal code: Ctrl+C.
pub const SIGNAL_CTRL_C: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c";

/// Signal code: Ctrl+Break.
pub const SIGNAL_CTRL_BREAK: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_break";
/// Signal code: PowerShell's Ctrl+C (MS-WSMV 2.2.5.6, a relative URI).
pub const SIGNAL_PS_CTRL_C: &str = "powershell/signal/ctrl_c";

/// Command state: done.
pub const STATE_DONE: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done";
/// Command state: running.
pub const STATE_RUNNING: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running";
