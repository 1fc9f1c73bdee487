"""The peers of benchmarks/tfb: the same six test types in Flask, Falcon, Bottle, FastAPI and web.py."""
