"""sequence_runner.adapters."""
