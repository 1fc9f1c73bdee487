"""web.py's ``web.contrib``: optional integrations.

- ``template``: Jinja2 behind web.py's ``render_jinja`` interface.
"""
