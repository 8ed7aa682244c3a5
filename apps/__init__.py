"""Example applications that show streamer's DSL on realistic data."""
