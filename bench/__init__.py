"""Benchmarks: scripts that measure, never timing assertions in tests."""
