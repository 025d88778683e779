"""Benchmarks: engines side by side, and migration-file decoding against analyze-migration.py."""
