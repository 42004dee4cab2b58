"""descend's benchmark suite: ``python -m benchmarks [NAME ...] [-- ARGS]``.

Each section is one script, ``benchmarks/bench_NAME.py``, runnable on its own, that measures
one thing side by side with its peers and rewrites its own section of ``docs/benchmarks.md``
(between ``<!-- section:NAME -->`` markers, see ``benchmarks._common.write_section``). Adding
a section means adding a script; ``python -m benchmarks`` finds it.
"""
