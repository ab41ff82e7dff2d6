"""sequence_runner.entrypoints."""
