"""sequence_runner."""
