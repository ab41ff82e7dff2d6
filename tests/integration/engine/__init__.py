"""Integration tests of the engine: runner and guard on real Kafka and MongoDB."""
