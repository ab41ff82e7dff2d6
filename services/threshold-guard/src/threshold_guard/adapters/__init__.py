"""threshold_guard.adapters."""
