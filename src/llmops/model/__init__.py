"""The model: loading a base (`models`) or building the tiny offline one (`tiny`), prepared
rows as token ids (`tokenised`) in batches (`batching`), LoRA adapters (`lora`), the
training loop (`trainer`) with its checkpoints (`checkpoint`), and generation (`inference`).

May import: config.
"""
