"""web.py's ``web.contrib``: optional integrations (``contrib.template.render_jinja``)."""
