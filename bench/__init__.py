"""Benches and campaigns behind `edge bench` that sit outside the product.

Dependencies run one way: edge <- hil <- bench. Modules here may import edge and hil;
nothing in edge or hil imports bench (edge/bench.py names these modules as strings and
imports them only when a bench runs).
"""
