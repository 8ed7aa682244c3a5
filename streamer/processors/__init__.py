"""Processors: the units a compiled topology is made of, run in batches by a task graph."""
