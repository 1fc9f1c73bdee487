"""The same small API written in webmini and its peers, one module per framework.

Each module exposes ``make_app()`` returning a PEP 3333 callable.
"""
