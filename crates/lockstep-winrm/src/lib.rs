//! lockstep-winrm (placeholder, filled in by its issue).
