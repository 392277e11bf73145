"""Benchmarks. Each writes bench/results/<benchmark>.json (see bench/common.py)."""
