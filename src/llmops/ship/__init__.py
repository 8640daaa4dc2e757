"""Building, checking and shipping the service: the Bento (`bento`), a local server
(`localserver`, `detached`), blue/green deploys behind a proxy (`deploy`, `proxy`), the
smoke test (`smoke`), the MLflow model registry (`registry`), and releases of reviewed
outputs (`release`, `reviewed`).

May import: config, model, serve.
"""
