"""web.py's ``web.contrib``: optional integrations.

- ``template``: ``contrib.template.render_jinja``.
- ``sentry``: Sentry events for unhandled exceptions, transactions named by route.
- ``otel``: OpenTelemetry server spans named by route, exceptions recorded on them.
"""
