"""Framework integrations: wsgisession as Flask's, Django's and Pyramid's own session.

Each module is a thin front end over :mod:`wsgisession.core` and the only place its framework
is imported; the framework comes from the extra of the same name (``sessions-wsgi[flask]``).
"""
