"""Benchmarks: our code against raw clients on the same broker and server, in the same run."""
