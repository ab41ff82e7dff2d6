"""sequence_runner.domain."""
