//! What a winrm-rs error means for the command: whether the request may have reached the node.

use winrm_rs::{SoapError, WinrmError};

/// The WS-Management fault code of an expired Receive long poll (`w:TimedOut`).
pub const TIMED_OUT_FAULT_CODE: &str = "2150858793";

/// A winrm-rs error, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be made: the request was not sent.
    Connect(String),
    /// The request may have been sent (the connection broke, or no answer in time).
    Broken(String),
    /// HTTP 401: the credentials were refused.
    AuthRejected(String),
    /// The long poll ended without output (`w:TimedOut`): an empty poll, not an error.
    PollTimedOut,
    /// The node answered a SOAP fault: it read the request and refused it.
    Fault(String),
    /// Anything else the node answered that makes no sense (HTTP 500 without a fault, bad XML).
    Protocol(String),
}

impl Failure {
    /// Classifies a winrm-rs error.
    pub fn of(e: &WinrmError) -> Failure {
        match e {
            WinrmError::Http(h) => {
                let detail = chain(h);
                if h.is_connect() {
                    Failure::Connect(detail)
                } else {
                    Failure::Broken(detail)
                }
            }
            WinrmError::AuthFailed(msg) => {
                // winrm-rs reports every non-2xx answer without a SOAP fault as AuthFailed; only
                // a 401 means the credentials.
                if msg.contains("401") || msg.contains("rejected") {
                    Failure::AuthRejected(msg.clone())
                } else {
                    Failure::Protocol(msg.clone())
                }
            }
            WinrmError::Soap(SoapError::Fault { code, reason }) => {
                if code.ends_with("TimedOut") || reason.contains(TIMED_OUT_FAULT_CODE) {
                    Failure::PollTimedOut
                } else {
                    Failure::Fault(format!("SOAP fault `{code}`: {}", reason.trim()))
                }
            }
            WinrmError::Soap(other) => Failure::Protocol(other.to_string()),
            WinrmError::Timeout(secs) => Failure::Broken(format!("no answer within {secs} s")),
            WinrmError::Cancelled => Failure::Broken("cancelled".to_owned()),
            other => Failure::Protocol(other.to_string()),
        }
    }

    /// The text for a person.
    pub fn detail(&self) -> String {
        match self {
            Failure::Connect(d)
            | Failure::Broken(d)
            | Failure::AuthRejected(d)
            | Failure::Fault(d)
            | Failure::Protocol(d) => d.clone(),
            Failure::PollTimedOut => "the operation timed out (empty poll)".to_owned(),
        }
    }
}

/// An error and its sources, `: `-separated (reqwest hides "connection refused" in a source).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        next = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(code: &str, reason: &str) -> WinrmError {
        WinrmError::Soap(SoapError::Fault {
            code: code.to_owned(),
            reason: reason.to_owned(),
        })
    }

    #[test]
    fn timed_out_fault_is_an_empty_poll() {
        // As winrm-rs parses the fault of /work/shared/captures/test_winrs_operation_timeout.yml.
        assert_eq!(
            Failure::of(&fault(
                "w:TimedOut",
                "The WS-Management service cannot complete the operation within the time specified in OperationTimeout."
            )),
            Failure::PollTimedOut
        );
        assert_eq!(
            Failure::of(&fault("s:Receiver", "code 2150858793")),
            Failure::PollTimedOut
        );
    }

    #[test]
    fn other_faults_keep_code_and_reason() {
        let f = Failure::of(&fault(
            "w:InvalidSelectors",
            "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. ",
        ));
        match f {
            Failure::Fault(d) => {
                assert!(d.contains("`w:InvalidSelectors`"), "{d}");
                assert!(d.contains("invalid selectors"), "{d}");
            }
            other => panic!("expected a fault, got {other:?}"),
        }
    }

    #[test]
    fn only_401_means_the_credentials() {
        // The messages winrm-rs 1.1.2 builds for Basic and NTLM refusals.
        for msg in [
            "HTTP 401 Unauthorized from WinRM: ",
            "NTLM authentication rejected (bad credentials or CBT mismatch)",
        ] {
            assert!(matches!(
                Failure::of(&WinrmError::AuthFailed(msg.to_owned())),
                Failure::AuthRejected(_)
            ));
        }
        assert!(matches!(
            Failure::of(&WinrmError::AuthFailed(
                "HTTP 500 Internal Server Error from WinRM: ".to_owned()
            )),
            Failure::Protocol(_)
        ));
        assert!(matches!(
            Failure::of(&WinrmError::Soap(SoapError::MissingElement(
                "ShellId".into()
            ))),
            Failure::Protocol(_)
        ));
        assert!(matches!(
            Failure::of(&WinrmError::Timeout(70)),
            Failure::Broken(_)
        ));
    }
}
