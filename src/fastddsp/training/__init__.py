"""Training: datasets (`prepare`), the room model, the Lightning trainer, evaluation and int8
quantization. Needs the `[train]` extra (Lightning)."""
