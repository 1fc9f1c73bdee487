"""Templetor internals: ``parser`` (text to nodes), ``compiler`` (to code), ``runtime``,
``sandbox`` (the attribute, key and format-string rules checked at run time).

The public face is :mod:`webmini.webpy.template` (``web.template``).
"""
