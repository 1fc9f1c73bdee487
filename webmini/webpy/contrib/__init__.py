"""web.py's ``web.contrib``, reached as ``webmini.contrib.<name>`` as in web.py.

- ``template``: ``render_jinja``, Jinja2 behind web.py's render interface.
"""
