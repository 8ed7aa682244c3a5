"""The apps each contender runs, one workload per entry point.

Nothing here may import more than the standard library at package level: Quix Streams and
Faust run these modules from their own virtualenvs (with the repository on PYTHONPATH).
"""
