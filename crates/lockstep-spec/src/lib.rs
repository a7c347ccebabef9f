//! lockstep-spec (placeholder, filled in by its issue).
