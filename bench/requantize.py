"""Write the test model (SmolLM2-135M-Instruct, Q4_1) re-quantized to another llama.cpp type, for benchmarks.

Which matrix kernels llama.cpp's CPU backend uses for a batch depends on the weights' type (Q4_0 is repacked for
AVX2 batch kernels, Q8_0 has llamafile's; Q4_1 has neither), so the gain from decoding several sequences at once
does too. Re-quantizing a 4-bit file loses quality: these files are for timing, not for answers.

    python bench/requantize.py q4_0 /tmp/smollm2-q4_0.gguf
"""

from __future__ import annotations

import argparse
from pathlib import Path

import llama_cpp

from llmclient.testing import smollm2_gguf

TYPES = {"q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0, "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("type", choices=sorted(TYPES))
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = TYPES[args.type]
    params.allow_requantize = True
    status = llama_cpp.llama_model_quantize(str(smollm2_gguf()).encode(), str(args.out).encode(), params)
    if status != 0:
        raise SystemExit(f"llama_model_quantize failed with status {status}")
    print(args.out)


if __name__ == "__main__":
    main()
