"""llmops: the library behind the template's DVC stages, evaluation and service.

One subpackage per part of the lifecycle; each one's docstring says what it holds and
which others it may import (tests/repo/test_layout.py checks it):

    config/    params, task, prompts, tracking: what every part reads
    data/      reading, checking, redacting and splitting the raw data
    model/     base models, tokenised examples, LoRA training, generation
    evaluate/  metrics, the classical floor, statistics, quality gates
    report/    the data report, the pull-request report and its comment
    serve/     the inference service's core, API and request log
    ship/      the Bento, local and cloud deploys, smoke test, registry, releases
    project/   make init and the checks before a run
    watch/     the served model's logs: monitoring, harvesting new data
    stages/    one module per dvc.yaml stage; imports any of the above, imported by none
"""
