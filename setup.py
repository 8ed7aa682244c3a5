"""Builds the optional C speed-ups (key partitioner, restore's record decoding); everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and streamer uses its
pure Python murmur2 and aiokafka's record reader (same results, slower).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("streamer._native.murmur2", ["streamer/_native/murmur2.c"], optional=True),
                   Extension("streamer._native.records", ["streamer/_native/records.c"], optional=True)])
