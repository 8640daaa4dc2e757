"""llmops: the library behind the template's DVC stages, evaluation and service.

Stages live in `llmops.stages` (one module per `dvc.yaml` stage); shared pieces (params,
prompts, redaction, splitting) live in modules named after what they serve.
"""
