"""threshold_guard.handlers."""
