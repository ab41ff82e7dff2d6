"""Unit tests of the sequence runner."""
