"""Benchmarks and simulations: long runs that measure the instrument (docs/validation.md)."""
