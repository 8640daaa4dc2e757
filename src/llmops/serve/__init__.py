"""The inference service, free of BentoML wiring (service.py holds that): the packaged
model and one request's path (`runtime`), iteration-level batching (`scheduler`), the
generator's wire format (`wire`), the HTTP API (`api`, `api_models`, `api_errors`,
`openai_api`, `streaming`), what every route shares (`context`), request intake and slow
clients (`intake`, `slowclients`), the request and feedback log (`requestlog`) and metrics
(`telemetry`, `routelabels`).

May import: config, data, model.
"""
