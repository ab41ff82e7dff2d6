"""threshold_guard."""
