"""The project's declaration and settings, read and checked: params.yaml (`params`, read with
`paramsfile` and validated by `typedconfig`), the task (`task`), the prompt templates
(`prompts`, rendered in `promptsandbox` within `promptbounds`), text decoding and
normalisation (`textcodec`, `textnorm`), MLflow tracking (`tracking`) and outputs written
whole or not at all (`atomic`).

May import: nothing else of llmops.
"""
