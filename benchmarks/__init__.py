"""Benchmarks: cold start, warm answer latency, rebuild time and memory, beside a standard LangChain pipeline.

Run ``python -m benchmarks`` (or ``make bench``); see ``benchmarks/__main__.py`` and ``docs/benchmarks.md``.
"""
