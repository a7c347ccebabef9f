//! lockstep-report (placeholder, filled in by its issue).
