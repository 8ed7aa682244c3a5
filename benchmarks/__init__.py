"""Benchmarks of streamer: throughput against the aiokafka ceiling and peer frameworks.

Kept free of imports on purpose: the peer apps in ``benchmarks.contenders`` run in their
own virtualenvs, which have none of streamer's dependencies.
"""
