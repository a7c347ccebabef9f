//! lockstep-actions (placeholder, filled in by its issue).
