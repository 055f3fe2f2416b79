"""Benchmarks and long campaigns behind `edge bench`; they depend on edge and hil, never the reverse."""
