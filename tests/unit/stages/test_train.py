"""The train stage on the tiny project: the answer-only loss, input checks made before any
training, the outputs and the MLflow run, determinism, resume after `kill -9`, and two
processes under `accelerate launch` (gloo on CPU) agreeing on the weights."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from llmops.config.params import load_params
from llmops.config.prompts import load_template, prompt_ids
from llmops.config.task import Task
from llmops.model.batching import collate
from llmops.model.lora import AnswerLoss, attach
from llmops.model.models import load_base, load_tokenizer, pick_device, set_threads
from llmops.model.tokenised import IGNORE, DataError, build_prompt, encode, encode_split
from llmops.model.trainer import check_batches
from llmops.ship.localserver import free_port
from llmops.stages import train
from tests.synthetic import write_params

# Long enough that a kill lands mid-run: checkpoints every 10 of 120 steps. Label weights
# and early stopping's record of the best weights (patience too long to stop) are on, so
# the resume test covers them.
LONG = {
    "train": {
        "max_steps": 120,
        "checkpoint_every": 10,
        "eval_every": 30,
        "log_every": 5,
        "patience": 1000,
        "label_weights": "balanced",
    }
}


def stage_args(project: Path, name: str, params: str = "params.yaml") -> list[str]:
    return [
        "--params", params, "--data", "data/prepared", "--base", "models/base",
        "--prompt", "prompts/review.jinja", "--out", f"out/{name}/adapter",
        "--checkpoints", f"out/{name}/checkpoints", "--metrics", f"out/{name}/train.json",
        "--plots", f"out/{name}/curves",
    ]  # fmt: skip


def env(project: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL": "0.2",
        "OMP_NUM_THREADS": "1",
    }


def run_stage(project: Path, name: str, params: str = "params.yaml", launcher=()) -> str:
    cmd = [*launcher] or [sys.executable, "-m"]
    done = subprocess.run(
        [*cmd, "llmops.stages.train", *stage_args(project, name, params)],
        cwd=project, env=env(project), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


@pytest.fixture(scope="module")
def long_params(project) -> str:
    write_params(project / "params-long.yaml", LONG)
    return "params-long.yaml"


@pytest.fixture(scope="module")
def reference(project, long_params) -> Path:
    """An uninterrupted run of the long config."""
    run_stage(project, "reference", long_params)
    return project / "out" / "reference"


def adapter_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "adapter" / "adapter_model.safetensors")


# --- the loss ---------------------------------------------------------------------------


def test_mask_covers_the_answer_and_nothing_else(project):
    params = load_params(project / "params.yaml")
    task = Task.from_params(params.task)
    tokenizer = load_tokenizer(project / "models" / "base")
    template = load_template(project / "prompts" / "review.jinja", task.variables())
    row = {"text": "The kettle: it broke after two days.", "topic": "quality",
           "sentiment": "negative", "summary": "Unhappy with the quality."}  # fmt: skip
    prompt = build_prompt(template, task, row)
    answer = task.answer_text(row)
    example = encode(tokenizer, prompt, answer)

    masked = [i for i, label in enumerate(example.labels) if label == IGNORE]
    n_prompt = len(prompt_ids(tokenizer, prompt))
    assert masked == list(range(n_prompt))  # every prompt token, and only those
    assert list(example.input_ids[:n_prompt]) == tokenizer(prompt.text)["input_ids"]
    learned = tokenizer.decode(example.labels[n_prompt:])
    assert learned == answer + tokenizer.eos_token  # the JSON answer, then stop
    assert json.loads(tokenizer.decode(example.labels[n_prompt:-1])) == task.answer(row)


def val_examples(project: Path, n: int):
    """The project's params, tokenizer and first `n` tokenized validation examples."""
    params = load_params(project / "params.yaml")
    task = Task.from_params(params.task)
    tokenizer = load_tokenizer(project / "models" / "base")
    template = load_template(project / "prompts" / "review.jinja", task.variables())
    path = project / "data" / "prepared" / "val.jsonl"
    return params, tokenizer, encode_split(path, tokenizer, template, task, 1024)[:n]


def test_answer_loss_equals_the_standard_masked_loss(project):
    # AnswerLoss skips the vocabulary projection at prompt positions; the result must be
    # what transformers computes with the same labels over the whole sequence.
    params, tokenizer, examples = val_examples(project, 3)
    model = attach(load_base(project / "models" / "base"), params.train.lora, seed=0).eval()
    batch = collate(examples, tokenizer.pad_token_id)
    total, count = AnswerLoss(model)(**batch)
    reference = model(**batch).loss
    assert int(count) == sum(e.answer_tokens for e in examples)
    assert float(total / count) == pytest.approx(float(reference), rel=1e-5)


# --- inputs are checked before training -------------------------------------------------


def broken_project(project: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "p"
    for part in ("data", "models", "prompts"):
        shutil.copytree(project / part, dest / part)
    shutil.copy2(project / "params.yaml", dest / "params.yaml")
    return dest


def fails_with(dest: Path, monkeypatch, *needles: str) -> None:
    monkeypatch.chdir(dest)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{dest / 'mlflow.db'}")
    with pytest.raises(SystemExit) as err:
        train.main(stage_args(dest, "x"))
    for needle in needles:
        assert needle in str(err.value)
    assert str(err.value).startswith("train: ")
    # Nothing started: no run tracked, no checkpoint, no adapter.
    assert not (dest / "mlflow.db").exists() and not (dest / "out").exists()


def test_missing_split_fails_naming_it(project, tmp_path, monkeypatch):
    dest = broken_project(project, tmp_path)
    (dest / "data" / "prepared" / "val.jsonl").unlink()
    fails_with(dest, monkeypatch, "data/prepared/val.jsonl: split not found")


def test_empty_split_fails_naming_it(project, tmp_path, monkeypatch):
    dest = broken_project(project, tmp_path)
    (dest / "data" / "prepared" / "train.jsonl").write_text("")
    fails_with(dest, monkeypatch, "data/prepared/train.jsonl: split is empty")


def test_base_without_weights_fails(project, tmp_path, monkeypatch):
    dest = broken_project(project, tmp_path)
    weights = dest / "models" / "base" / "model.safetensors"
    weights.rename(weights.with_name("pytorch_model.bin"))
    fails_with(dest, monkeypatch, "models/base: no *.safetensors weights", "pytorch_model.bin")


def test_unknown_target_module_fails_listing_the_real_ones(project, tmp_path, monkeypatch):
    dest = broken_project(project, tmp_path)
    write_params(
        dest / "params.yaml", {"train": {"lora": {"target_modules": ["q_proj", "qkv_proj"]}}}
    )
    fails_with(
        dest, monkeypatch, "train.lora.target_modules: ['qkv_proj'] not in the model",
        "'o_proj'", "'q_proj'",
    )  # fmt: skip


def test_unknown_module_to_save_fails_naming_the_embeddings(project, tmp_path, monkeypatch):
    dest = broken_project(project, tmp_path)
    write_params(dest / "params.yaml", {"train": {"lora": {"modules_to_save": ["wte"]}}})
    fails_with(
        dest, monkeypatch, "train.lora.modules_to_save: ['wte'] not in the model",
        "['embed_tokens', 'lm_head']",
    )  # fmt: skip


def test_max_length_shorter_than_an_example_fails_naming_the_longest(
    project, tmp_path, monkeypatch
):
    dest = broken_project(project, tmp_path)
    write_params(dest / "params.yaml", {"train": {"max_length": 64}})
    params = load_params(dest / "params.yaml")
    task = Task.from_params(params.task)
    template = load_template(dest / "prompts" / "review.jinja", task.variables())
    tokenizer = load_tokenizer(dest / "models" / "base")
    examples = encode_split(dest / "data" / "prepared" / "train.jsonl", tokenizer, template,
                            task, 10_000)  # fmt: skip
    worst = max(examples, key=lambda e: len(e.input_ids))
    fails_with(dest, monkeypatch, f"example {worst.id} is {len(worst.input_ids)} tokens",
               "train.max_length is 64")  # fmt: skip


# --- a run: outputs, tracking, determinism, resume --------------------------------------


def test_run_writes_adapter_template_tokenizer_metrics_and_curves(project, reference):
    adapter = reference / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert set(config["target_modules"]) == {"q_proj", "v_proj", "down_proj"}
    assert "embed_tokens" in config["modules_to_save"] and config["ensure_weight_tying"]
    assert config["r"] == 4
    assert (adapter / "adapter_model.safetensors").exists()
    assert not list(adapter.glob("*.bin"))
    assert (adapter / "prompt.jinja").read_bytes() == (
        project / "prompts" / "review.jinja"
    ).read_bytes()
    assert (
        load_tokenizer(adapter).get_vocab()
        == load_tokenizer(project / "models" / "base").get_vocab()
    )

    metrics = json.loads((reference / "train.json").read_text())
    assert metrics["steps"] == 120 and metrics["processes"] == 1
    assert 0 < metrics["val_loss"] < 7 and 0 < metrics["train_loss"] < 7
    # Trained: rank-4 LoRA on q, v and down projections, and the (tied) embeddings in full.
    shape = json.loads((project / "models" / "base" / "config.json").read_text())
    h, inner, layers = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"]
    adapter_size = 4 * (2 * h + 2 * h + inner + h) * layers
    assert metrics["trainable_params"] == shape["vocab_size"] * h + adapter_size
    assert metrics["tokens_per_s"] > 0 and metrics["padding_share"] < 0.1
    train_curve = (reference / "curves" / "train_loss.csv").read_text().splitlines()
    val_curve = (reference / "curves" / "val_loss.csv").read_text().splitlines()
    assert train_curve[0] == val_curve[0] == "step,loss"
    assert [int(r.split(",")[0]) for r in train_curve[1:]] == list(range(5, 121, 5))
    assert [int(r.split(",")[0]) for r in val_curve[1:]] == [30, 60, 90, 120]
    first, last = (float(train_curve[i].split(",")[1]) for i in (1, -1))
    assert last < first  # it learned something
    assert not list((reference / "checkpoints").glob("step-*"))  # emptied once done


def test_run_is_tracked_in_mlflow(project, reference):
    from mlflow.tracking import MlflowClient

    info = json.loads((reference / "adapter" / "training.json").read_text())
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    run = client.get_run(info["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["train.lora.r"] == "4"
    assert run.data.params["train.lora.target_modules"] == "q_proj,v_proj,down_proj"
    assert run.data.params["train.lora.modules_to_save"] == "embed_tokens"
    assert run.data.params["base.model"] == "tiny"
    assert run.data.tags["base_model"] == "tiny" and run.data.tags["git_commit"]
    assert "data_md5" in run.data.tags
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert [m.step for m in history] == list(range(5, 121, 5))
    metrics = json.loads((reference / "train.json").read_text())
    assert run.data.metrics["final_val_loss"] == pytest.approx(metrics["val_loss"])
    assert any(k.startswith("system/cpu_utilization") for k in run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "adapter")}
    assert "adapter/adapter_model.safetensors" in artifacts


def test_same_seed_gives_the_same_curve_and_weights(project, reference, long_params):
    run_stage(project, "again", long_params)
    again = project / "out" / "again"
    for name in ("train_loss.csv", "val_loss.csv"):
        assert (again / "curves" / name).read_text() == (reference / "curves" / name).read_text()
    for key, value in adapter_weights(reference).items():
        torch.testing.assert_close(adapter_weights(again)[key], value, rtol=0, atol=0)


def test_token_dropout_is_reproducible_and_changes_what_is_trained(project, reference):
    short = {"train": {**LONG["train"], "max_steps": 30, "token_dropout": 0.3}}
    write_params(project / "params-words.yaml", short)
    for name in ("words", "words-again"):
        run_stage(project, name, "params-words.yaml")
    words, again = (adapter_weights(project / "out" / n) for n in ("words", "words-again"))
    for key, value in words.items():
        torch.testing.assert_close(again[key], value, rtol=0, atol=0)
    # The same 30 steps without it (the first 30 of the reference's 120 see the same
    # batches) read every prompt token; with it, a third fewer prompt tokens.
    seen = {n: json.loads((project / "out" / n / "train.json").read_text())
            for n in ("words", "reference")}  # fmt: skip
    assert seen["words"]["train_tokens"] < seen["reference"]["train_tokens"] * 30 / 120
    # Padding is counted on the batches trained on: examples of one length differ after it.
    assert seen["words"]["padding_share"] > seen["reference"]["padding_share"]
    curve = (project / "out" / "words" / "curves" / "train_loss.csv").read_text()
    assert curve != (reference / "curves" / "train_loss.csv").read_text()


def test_resume_after_kill_9_matches_an_uninterrupted_run(project, reference, long_params):
    run = project / "out" / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmops.stages.train", *stage_args(project, "killed", long_params)],
        cwd=project, env=env(project), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300

    def after_first_validation() -> bool:  # step 30: the state then holds the best weights
        return any(int(p.name[5:]) >= 40 for p in (run / "checkpoints").glob("step-*"))

    while not after_first_validation() and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "adapter").exists(), "the run finished before it could be killed"
    saved = [p.name for p in (run / "checkpoints").glob("step-*")]
    assert saved, "killed without a checkpoint"
    state = torch.load(run / "checkpoints" / max(saved) / "state.pt", weights_only=True)
    assert state["best"][0] == 30 and state["best_weights"]  # resumed with them

    log = run_stage(project, "killed", long_params)
    assert f"resuming from out/killed/checkpoints/{max(saved)}" in log
    for key, value in adapter_weights(reference).items():
        torch.testing.assert_close(adapter_weights(run)[key], value, rtol=1e-5, atol=1e-6)
    for name in ("train_loss.csv", "val_loss.csv"):
        resumed = (run / "curves" / name).read_text().splitlines()
        uninterrupted = (reference / "curves" / name).read_text().splitlines()
        assert [r.split(",")[0] for r in resumed] == [r.split(",")[0] for r in uninterrupted]
        for a, b in zip(resumed[1:], uninterrupted[1:], strict=True):
            assert float(a.split(",")[1]) == pytest.approx(float(b.split(",")[1]), abs=1e-4)
    # Tokens and padding count each step once, across the kill.
    resumed, uninterrupted = (json.loads((r / "train.json").read_text()) for r in (run, reference))
    for key in ("train_tokens", "padding_share"):
        assert resumed[key] == uninterrupted[key], key


def test_a_changed_config_does_not_resume_a_stale_checkpoint(project, tmp_path):
    from llmops.model import checkpoint

    folder = tmp_path / "ck"
    checkpoint.save(folder, 8, {"w": torch.zeros(2)}, {"step": 8}, "old-fingerprint")
    assert checkpoint.latest(folder, "new-fingerprint") is None
    assert checkpoint.latest(folder, "old-fingerprint").step == 8


def test_two_processes_under_accelerate_agree(project):
    launcher = (
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_ip", "127.0.0.1", "--main_process_port", str(free_port()), "-m",
    )  # fmt: skip
    # Early stopping's decisions and the weighted loss run on both processes too.
    write_params(
        project / "params-ddp.yaml", {"train": {"patience": 1000, "label_weights": "sqrt"}}
    )
    log = run_stage(project, "ddp", "params-ddp.yaml", launcher=launcher)
    metrics = json.loads((project / "out" / "ddp" / "train.json").read_text())
    assert metrics["processes"] == 2
    assert metrics["steps"] == 24
    line = next(x for x in log.splitlines() if "adapter checksum per process" in x)
    checksums = json.loads(line.split("process: ")[1].split(" (")[0])
    assert len(checksums) == 2 and checksums[0] == checksums[1]


# --- device ------------------------------------------------------------------------------


def test_cpu_trains_in_fp32():
    assert pick_device("auto", torch.device("cpu")).dtype == torch.float32
    assert pick_device("bf16", torch.device("cpu")).dtype == torch.bfloat16


def test_a_gpu_with_bf16_is_used_in_bf16(monkeypatch):
    # No GPU here: only the capability query is faked, the decision is the real code's.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    chosen = pick_device("auto", torch.device("cuda"))
    assert chosen.device.type == "cuda" and chosen.dtype == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert pick_device("auto", torch.device("cuda")).dtype == torch.float32


def test_too_few_batches_for_the_processes_fails_before_training(params):
    import dataclasses

    cfg = dataclasses.replace(params.train, batch_size=16, grad_accum=1)
    check_batches(17, cfg, world=2)  # 2 batches, 2 processes: fine
    with pytest.raises(DataError, match=r"16 training examples make 1 batches .* fewer than 2"):
        check_batches(16, cfg, world=2)


def test_a_model_whose_logits_are_post_processed_is_refused(project):
    model = load_base(project / "models" / "base")
    model.config.final_logit_softcapping = 30.0
    with pytest.raises(ValueError, match="final_logit_softcapping"):
        AnswerLoss(model)


def test_thread_count_follows_omp_num_threads_else_shares_the_cpus(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_threads(processes=2) == 1 == torch.get_num_threads()
        monkeypatch.delenv("OMP_NUM_THREADS")
        cpus = len(os.sched_getaffinity(0))
        assert set_threads(processes=1) == cpus
        assert set_threads(processes=cpus * 2) == 1  # never 0
    finally:
        torch.set_num_threads(before)


def test_the_adapter_config_lists_target_modules_in_one_order(tmp_path):
    # peft writes them from a set: without sorting, two runs of one seed differ in bytes.
    path = tmp_path / "adapter_config.json"
    written = []
    for order in (["v_proj", "q_proj", "up_proj"], ["up_proj", "v_proj", "q_proj"]):
        path.write_text(json.dumps({"target_modules": order, "r": 8}))
        train.stable_config(path)
        written.append(path.read_bytes())
    assert written[0] == written[1]
    assert json.loads(written[0]) == {"r": 8, "target_modules": ["q_proj", "up_proj", "v_proj"]}


# --- how long a run trains, early stopping, label weights --------------------------------


def test_a_run_stops_early_and_keeps_the_weights_of_the_lowest_validation_loss(
    project, monkeypatch
):
    # The validation losses are scripted (a real run's depend on the machine's arithmetic);
    # the loop's decisions and the weights it keeps are the real code's.
    from llmops.model import trainer

    losses = iter([3.0, 2.0, 2.5, 2.6, 2.7, 2.8])
    seen: dict[int, dict[str, torch.Tensor]] = {}

    def scripted(self) -> float:
        seen[self.state["step"]] = {k: v.detach().clone() for k, v in self.weights.items()}
        return next(losses)

    monkeypatch.setattr(trainer.Loop, "validation_loss", scripted)
    write_params(project / "params-patience.yaml",
                 {"train": {"max_steps": 60, "eval_every": 5, "patience": 2}})  # fmt: skip
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    train.main(stage_args(project, "patience", "params-patience.yaml"))

    run = project / "out" / "patience"
    metrics = json.loads((run / "train.json").read_text())
    assert metrics["stopped"] == "early_stop" and metrics["steps"] == 20
    assert metrics["planned_steps"] == 60 and metrics["kept_step"] == 10
    assert metrics["val_loss"] == 2.0
    assert (run / "curves" / "val_loss.csv").read_text().splitlines()[1:] == [
        "5,3.00000", "10,2.00000", "15,2.50000", "20,2.60000"
    ]  # fmt: skip
    # Every saved tensor is one of step 10's weights (peft renames them on save).
    saved = adapter_weights(run)
    for name, value in saved.items():
        assert any(w.shape == value.shape and torch.equal(w, value) for w in seen[10].values()), (
            name
        )
    assert any(not torch.equal(seen[10][k], seen[20][k]) for k in seen[10])  # it moved on


def test_a_run_reports_what_bounded_it(project, reference):
    metrics = json.loads((reference / "train.json").read_text())
    assert metrics["stopped"] == "max_steps" and metrics["planned_steps"] == 120


def rows_of(labels: list[tuple[str, str]]) -> list[dict]:
    return [{"text": f"t{i}", "topic": a, "sentiment": b, "summary": ""}
            for i, (a, b) in enumerate(labels)]  # fmt: skip


def test_label_weights_favour_rare_labels_with_mean_one(params):
    task = Task.from_params(params.task)
    rows = rows_of([("price", "positive")] * 6 + [("quality", "positive")] * 2)
    balanced = train.label_weights(rows, task, "balanced")
    sqrt = train.label_weights(rows, task, "sqrt")
    for weigh in (balanced, sqrt):
        assert sum(weigh(r) for r in rows) / len(rows) == pytest.approx(1.0)
    # topic: price 8/(2*6) = 2/3, quality 8/(2*2) = 2; sentiment: one label, weight 1.
    common, rare = (balanced(rows[i]) for i in (0, -1))
    assert rare / common == pytest.approx((2 + 1) / (2 / 3 + 1))
    sqrt_ratio = sqrt(rows[-1]) / sqrt(rows[0])
    assert 1 < sqrt_ratio < rare / common
    assert sqrt_ratio == pytest.approx((2**0.5 + 1) / ((2 / 3) ** 0.5 + 1))
    # A label training never saw (a validation row) weighs as the field's rarest.
    unseen = {"text": "x", "topic": "delivery", "sentiment": "positive", "summary": ""}
    assert balanced(unseen) == pytest.approx(rare)


def test_label_weights_are_one_without_label_fields(params):
    import dataclasses

    task = Task.from_params(params.task)
    texts_only = dataclasses.replace(task, outputs=task.texts)
    weigh = train.label_weights(rows_of([("a", "b"), ("c", "b")]), texts_only, "balanced")
    assert weigh({"text": "x", "summary": "y"}) == 1.0


def test_weighted_answer_loss_counts_each_row_its_weight(project):
    import dataclasses

    params, tokenizer, examples = val_examples(project, 2)
    loss = AnswerLoss(attach(load_base(project / "models" / "base"), params.train.lora, 0).eval())
    pad = tokenizer.pad_token_id
    with torch.no_grad():
        first, _ = loss(**collate(examples[:1], pad))
        both, count = loss(**collate(examples, pad))
        ones = collate([dataclasses.replace(e, weight=1.0) for e in examples], pad)
        weights = (3.0, 0.0)
        weighted = collate(
            [dataclasses.replace(e, weight=w) for e, w in zip(examples, weights, strict=True)], pad
        )
        tripled, weighted_count = loss(**weighted)
    assert "weights" not in ones  # all ones: the unweighted path
    assert float(tripled) == pytest.approx(3 * float(first), rel=1e-5)
    assert int(weighted_count) == int(count)  # the count is of tokens, not of weights
    assert float(both) != pytest.approx(float(tripled))


def test_the_token_budget_ends_a_run_near_the_budget(project, monkeypatch):
    # Word dropout off (the synthetic default), so the tokens trained are the planned ones;
    # train.grad_accum 2 puts two batches in each step.
    budget = 6_000
    write_params(project / "params-budget.yaml",
                 {"train": {"max_steps": None, "token_budget": budget}})  # fmt: skip
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    train.main(stage_args(project, "budget", "params-budget.yaml"))
    metrics = json.loads((project / "out" / "budget" / "train.json").read_text())
    assert metrics["stopped"] == "token_budget" and metrics["steps"] == metrics["planned_steps"]
    assert 0.8 * budget <= metrics["train_tokens"] <= 1.2 * budget
