"""runstore's benchmarks: the chat-turn workload on runstore's backends, its peers and floors.

Run with ``scripts/bench`` (one process, one run); it writes ``docs/benchmarks.md`` and
``docs/benchmarks.png``. Not part of the runstore package.
"""
