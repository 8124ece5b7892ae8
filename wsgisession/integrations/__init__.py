"""Front ends for web frameworks, each a thin layer over :mod:`wsgisession.core`.

Every module here imports its framework, so none is imported by ``import wsgisession``:
``wsgisession.integrations.django`` needs ``pip install wsgisession[django]``, and so on.
"""
