"""Benchmarks behind `edge bench`; they depend on edge and hil, never the reverse."""
