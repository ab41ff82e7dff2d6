"""Unit tests of the threshold guard."""
