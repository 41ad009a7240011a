"""Benchmarks of the cqrs pipeline on the embedded engine (in-process moto).

Run ``python -m bench [--quick] [--out bench/RESULTS.md]``; see ``bench/README.md``.
Benchmarks are not tests: nothing here asserts on time.
"""
