"""Benchmarks: scripts that print numbers (BENCHMARKS.md); not part of the installed package."""
