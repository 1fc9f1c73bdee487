"""Small WSGI apps served by benchmarks/e2e.py."""
