"""Benchmarks of wsgisession against Beaker and Flask: in-process, through HTTP, and at scale.

Run them with ``make bench`` (in-process, store floors, HTTP and the targets) or
``make bench-scale`` (load/save with up to a million stored sessions, a bounded MemoryStore
under a flood, and purging a million expired rows). ``python -m benchmarks --help`` lists the
options.
"""
