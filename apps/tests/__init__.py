"""Example unit tests of the apps, run with the in-process test driver."""
