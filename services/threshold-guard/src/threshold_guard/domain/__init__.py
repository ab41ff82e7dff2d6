"""threshold_guard.domain."""
