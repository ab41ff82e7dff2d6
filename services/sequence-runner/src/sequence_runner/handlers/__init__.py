"""sequence_runner.handlers."""
