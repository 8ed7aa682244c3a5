"""The exactly-once chaos test: kill -9 workers while input flows, then prove nothing was lost or doubled.

``python -m tests.chaos.run --help`` runs it; docs/chaos.md explains the checks.
"""
