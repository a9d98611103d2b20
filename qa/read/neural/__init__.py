"""The neural span reader we trained: tokenizer windows, model backends, span decoding."""
