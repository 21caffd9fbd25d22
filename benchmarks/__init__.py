"""Benchmarks: this project side by side with DeltaGlider 6.2.0 and with the codec's own limit."""
