"""Test-set generation throughput of the eval stage against one-at-a-time `model.generate`.

Run: make bench-eval
     (python -m benchmarks.bench_eval --params params.yaml --data data/prepared \
        --base models/base --adapter models/adapter --out benchmarks/results/eval.json)

Same fine-tuned model, same prompts (the first --examples test rows), same greedy decoding
and max_new_tokens, in this one process. The baseline calls `model.generate` once per
example (no padding, KV cache on, as a first script would). Ours is
`llmops.model.inference.TaskModel.generate`: length-grouped batches of eval.batch_size,
left-padded. The outputs must be identical, token for token; the run fails otherwise.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from llmops.config.params import load_params
from llmops.config.prompts import Prompt, prompt_ids
from llmops.config.task import Task
from llmops.model.inference import TaskModel
from llmops.model.tokenised import read_split


def naive(model: TaskModel, prompts: list[Prompt], max_new_tokens: int) -> list[tuple[str, int]]:
    out = []
    tokenizer = model.tokenizer
    for prompt in prompts:
        ids = torch.tensor([prompt_ids(tokenizer, prompt)], device=model.device.device)
        with torch.no_grad():
            generated = model.model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens, do_sample=False,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
        out.append(model.decode(generated[0, ids.shape[1] :].tolist()))
    return out


def bench(args: argparse.Namespace) -> dict:
    params = load_params(args.params)
    model = TaskModel.load(args.base, args.adapter, Task.from_params(params.task))
    rows = read_split(args.data / "test.jsonl")[: args.examples]
    prompts = model.prompts(rows)
    batch = params.eval.batch_size
    model.generate(prompts[:4], params.decoding, batch)  # warm-up, both paths share it
    start = time.perf_counter()
    batched = model.generate(prompts, params.decoding, batch)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    single = naive(model, prompts, params.decoding.max_new_tokens)
    baseline = time.perf_counter() - start
    differ = [r["id"] for r, a, b in zip(rows, batched, single, strict=True) if a != b]
    if differ:
        raise SystemExit(f"outputs differ for {len(differ)} examples, e.g. {differ[:5]}")
    tokens = sum(n for _, n in batched)
    return {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "examples": len(rows),
        "generated_tokens": tokens,
        "batch_size": params.eval.batch_size,
        "baseline": {"seconds": baseline, "tokens_per_s": tokens / baseline},
        "ours": {"seconds": ours, "tokens_per_s": tokens / ours},
        "ratio": baseline / ours,
        "identical_outputs": True,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    for name in ("data", "base", "adapter", "out"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--examples", type=int, default=192, help="test rows to generate for")
    args = parser.parse_args(argv)
    result = bench(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    b, o = result["baseline"], result["ours"]
    print("| side | seconds | generated tokens/s |")
    print("|---|---:|---:|")
    print(f"| one at a time (baseline) | {b['seconds']:.1f} | {b['tokens_per_s']:,.0f} |")
    print(f"| eval stage (batched) | {o['seconds']:.1f} | {o['tokens_per_s']:,.0f} |")
    print(f"ratio: {result['ratio']:.1f}x, {result['examples']} examples, identical outputs")


if __name__ == "__main__":
    main()
