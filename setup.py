"""Builds the optional C speed-up of the key partitioner; everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and streamer uses its
pure Python murmur2 (same results, slower).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("streamer._native.murmur2", ["streamer/_native/murmur2.c"], optional=True)])
