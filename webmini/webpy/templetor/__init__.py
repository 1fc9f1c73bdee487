"""Templetor internals: ``parser`` (text to nodes), ``compiler`` (nodes to a code object), ``runtime``.

The public face is :mod:`webmini.webpy.template` (``web.template``).
"""
