"""Development tools: the embedded S3 server used by tests, the demo and the benchmarks (not shipped)."""
