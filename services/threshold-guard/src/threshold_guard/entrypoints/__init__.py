"""threshold_guard.entrypoints."""
