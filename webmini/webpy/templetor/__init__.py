"""Templetor internals: ``parser`` (text to nodes), ``compiler`` (to code), ``runtime``.

The public face is :mod:`webmini.webpy.template` (``web.template``).
"""
