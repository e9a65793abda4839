"""The horde's overhead on one text completion: llama.cpp called directly vs the same job through the horde.

`python -m bench.overhead` (see bench/overhead/README.md): both paths generate the same 128 tokens with
the same GGUF, n_threads and sampling, the model loaded beforehand; runs alternate between the paths.
"""
