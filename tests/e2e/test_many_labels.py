"""The default recipe on a task with many labels: 80 labels (verb x noun requests), 2,000
rows generated here, prep -> base -> train -> eval by the real stages. The fine-tuned model
must beat chance (1/80) by a wide margin, and the evaluation must place it beside the
classical floor. The model keeps the default width (128) with fewer layers and pretraining
steps, so that the test takes about half a minute; the recipe's choices (LoRA on the
projections, the embeddings trained in full) are the defaults'. At width 64 the same run
stays near chance (0.015)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmops.config.params import SPLITS, load_params
from llmops.config.task import Task
from llmops.stages.base import base
from llmops.stages.eval import evaluate
from llmops.stages.prep import prep, write_splits
from tests.synthetic import (
    MANY_LABEL_PARAMS,
    MANY_LABEL_PROMPT,
    MANY_LABELS,
    many_label_rows,
    merged,
    write_jsonl,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))["train"]["lora"]
PARAMS = merged(
    MANY_LABEL_PARAMS,
    {
        "base": {"tiny": {"vocab_size": 1024, "hidden_size": 128, "heads": 4,
                          "intermediate_size": 256, "block_length": 128, "batch_size": 16,
                          "steps": 40}},
        "train": {"max_steps": 300, "batch_size": 16, "grad_accum": 1, "eval_every": 300,
                  "lora": {**DEFAULTS, "dropout": 0.0}},
        "decoding": {"max_new_tokens": 16},
        "eval": {"batch_size": 64},
    },
)  # fmt: skip


def test_the_default_recipe_learns_eighty_labels(tmp_path):
    root = tmp_path / "many"
    (root / "prompts").mkdir(parents=True)
    (root / "prompts" / "many.jinja").write_text(MANY_LABEL_PROMPT)
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    write_jsonl(root / "data" / "raw" / "requests.jsonl", many_label_rows(2000, seed=3))
    params = load_params(root / "params.yaml")
    data, models = root / "data" / "prepared", root / "models"
    with prep(Task.from_params(params.task), params.prep, root / "data" / "raw") as result:
        write_splits({name: result.records(name) for name in SPLITS}, data)
    base(params, data, root / "prompts" / "many.jinja", models / "base")
    args = ["--params", "params.yaml", "--data", "data/prepared", "--base", "models/base",
            "--prompt", "prompts/many.jinja", "--out", "models/adapter",
            "--checkpoints", "models/checkpoints", "--metrics", "metrics/train.json",
            "--plots", "reports/train"]  # fmt: skip
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    subprocess.run([sys.executable, "-m", "llmops.stages.train", *args], cwd=root, env=env,
                   check=True, capture_output=True)  # fmt: skip

    results, records = evaluate(params, data, models / "base", models / "adapter")

    chance = 1 / len(MANY_LABELS)
    tuned, classical = results["tuned"], results["classical"]
    print(f"80 labels: tuned {tuned['label_accuracy']:.3f}, classical "
          f"{classical['label_accuracy']:.3f}, chance {chance:.4f}, {len(records)} test rows")  # fmt: skip
    assert len(records) >= 150
    assert tuned["json_valid"] >= 0.99 and tuned["label_valid_label"] >= 0.99
    assert tuned["label_accuracy"] >= 0.5  # 40 times chance
    assert classical["label_accuracy"] >= 0.9  # the floor beside it: the words decide
