//! lockstep-plan (placeholder, filled in by its issue).
