"""One builder method per catalogued preset and alias, so IDEs and mypy know them all.

Generated from the catalogue by `python scripts/gen_preset_methods.py`; do not edit by hand (a test checks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typing_extensions import Self

__all__ = ["PresetMethods"]


class PresetMethods:
    """The preset methods of every builder (each returns the builder it was called on, changed)."""

    if TYPE_CHECKING:

        def preset(self, name: str) -> Self: ...

    def smollm2_135m_instruct(self) -> Self:
        """SmolLM2 135M Instruct: 0.135B parameters, 8k context, apache-2.0 license (bartowski/SmolLM2-135M-Instruct-
        GGUF; Q8_0, Q6_K_L, Q6_K, Q4_K_M, Q4_0).
        """
        return self.preset("smollm2_135m_instruct")

    def smollm2_135m(self) -> Self:
        """Alias of `smollm2_135m_instruct`: SmolLM2 135M Instruct: 0.135B parameters, 8k context, apache-2.0 license
        (bartowski/SmolLM2-135M-Instruct-GGUF; Q8_0, Q6_K_L, Q6_K, Q4_K_M, Q4_0).
        """
        return self.preset("smollm2_135m_instruct")

    def smollm2_360m_instruct(self) -> Self:
        """SmolLM2 360M Instruct: 0.362B parameters, 8k context, apache-2.0 license (bartowski/SmolLM2-360M-Instruct-
        GGUF; Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_0).
        """
        return self.preset("smollm2_360m_instruct")

    def smollm2_360m(self) -> Self:
        """Alias of `smollm2_360m_instruct`: SmolLM2 360M Instruct: 0.362B parameters, 8k context, apache-2.0 license
        (bartowski/SmolLM2-360M-Instruct-GGUF; Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_0).
        """
        return self.preset("smollm2_360m_instruct")

    def smollm2_1_7b_instruct(self) -> Self:
        """SmolLM2 1.7B Instruct: 1.71B parameters, 8k context, apache-2.0 license (bartowski/SmolLM2-1.7B-Instruct-
        GGUF; F16, Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL,
        Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K).
        """
        return self.preset("smollm2_1_7b_instruct")

    def smollm2_1_7b(self) -> Self:
        """Alias of `smollm2_1_7b_instruct`: SmolLM2 1.7B Instruct: 1.71B parameters, 8k context, apache-2.0 license
        (bartowski/SmolLM2-1.7B-Instruct-GGUF; F16, Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M,
        Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL, Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K).
        """
        return self.preset("smollm2_1_7b_instruct")

    def llama3_2_1b_instruct(self) -> Self:
        """Llama 3.2 1B Instruct: 1.24B parameters, 128k context, llama3.2 license (bartowski/Llama-3.2-1B-Instruct-
        GGUF; F16, Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL,
        Q3_K_L, IQ3_M).
        """
        return self.preset("llama3_2_1b_instruct")

    def llama3_2_1b(self) -> Self:
        """Alias of `llama3_2_1b_instruct`: Llama 3.2 1B Instruct: 1.24B parameters, 128k context, llama3.2 license
        (bartowski/Llama-3.2-1B-Instruct-GGUF; F16, Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M,
        Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL, Q3_K_L, IQ3_M).
        """
        return self.preset("llama3_2_1b_instruct")

    def llama3_2_3b_instruct(self) -> Self:
        """Llama 3.2 3B Instruct: 3.21B parameters, 128k context, llama3.2 license (bartowski/Llama-3.2-3B-Instruct-
        GGUF; F16, Q8_0, Q6_K_L, Q6_K, Q5_K_M, Q4_K_M, Q4_K_S, Q4_0, Q3_K_L, Q3_K_M, Q2_K).
        """
        return self.preset("llama3_2_3b_instruct")

    def llama3_2_3b(self) -> Self:
        """Alias of `llama3_2_3b_instruct`: Llama 3.2 3B Instruct: 3.21B parameters, 128k context, llama3.2 license
        (bartowski/Llama-3.2-3B-Instruct-GGUF; F16, Q8_0, Q6_K_L, Q6_K, Q5_K_M, Q4_K_M, Q4_K_S, Q4_0, Q3_K_L,
        Q3_K_M, Q2_K).
        """
        return self.preset("llama3_2_3b_instruct")

    def llama3_1_8b_instruct(self) -> Self:
        """Llama 3.1 8B Instruct: 8.03B parameters, 128k context, llama3.1 license (bartowski/Meta-
        Llama-3.1-8B-Instruct-GGUF; Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S, IQ4_XS,
        Q3_K_XL, Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("llama3_1_8b_instruct")

    def llama3_8b(self) -> Self:
        """Alias of `llama3_1_8b_instruct`: Llama 3.1 8B Instruct: 8.03B parameters, 128k context, llama3.1 license
        (bartowski/Meta-Llama-3.1-8B-Instruct-GGUF; Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M,
        Q4_K_S, IQ4_XS, Q3_K_XL, Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("llama3_1_8b_instruct")

    def llama3_1_8b(self) -> Self:
        """Alias of `llama3_1_8b_instruct`: Llama 3.1 8B Instruct: 8.03B parameters, 128k context, llama3.1 license
        (bartowski/Meta-Llama-3.1-8B-Instruct-GGUF; Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M,
        Q4_K_S, IQ4_XS, Q3_K_XL, Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("llama3_1_8b_instruct")

    def llama3_3_70b_instruct(self) -> Self:
        """Llama 3.3 70B Instruct: 70.55B parameters, 128k context, llama3.3 license (bartowski/Llama-3.3-70B-Instruct-
        GGUF; Q8_0, Q6_K_L, Q6_K, Q5_K_M, Q4_K_M, Q4_K_S, Q3_K_M).
        """
        return self.preset("llama3_3_70b_instruct")

    def llama3_70b(self) -> Self:
        """Alias of `llama3_3_70b_instruct`: Llama 3.3 70B Instruct: 70.55B parameters, 128k context, llama3.3 license
        (bartowski/Llama-3.3-70B-Instruct-GGUF; Q8_0, Q6_K_L, Q6_K, Q5_K_M, Q4_K_M, Q4_K_S, Q3_K_M).
        """
        return self.preset("llama3_3_70b_instruct")

    def llama3_3_70b(self) -> Self:
        """Alias of `llama3_3_70b_instruct`: Llama 3.3 70B Instruct: 70.55B parameters, 128k context, llama3.3 license
        (bartowski/Llama-3.3-70B-Instruct-GGUF; Q8_0, Q6_K_L, Q6_K, Q5_K_M, Q4_K_M, Q4_K_S, Q3_K_M).
        """
        return self.preset("llama3_3_70b_instruct")

    def mistral7b_instruct_v0_3(self) -> Self:
        """Mistral 7B Instruct v0.3: 7.25B parameters, 32k context, apache-2.0 license
        (bartowski/Mistral-7B-Instruct-v0.3-GGUF; Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, Q4_K_S, IQ4_XS, Q3_K_L,
        Q3_K_M, IQ3_M, IQ3_XS, Q2_K, IQ2_M).
        """
        return self.preset("mistral7b_instruct_v0_3")

    def mistral7b(self) -> Self:
        """Alias of `mistral7b_instruct_v0_3`: Mistral 7B Instruct v0.3: 7.25B parameters, 32k context, apache-2.0
        license (bartowski/Mistral-7B-Instruct-v0.3-GGUF; Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, Q4_K_S, IQ4_XS,
        Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K, IQ2_M).
        """
        return self.preset("mistral7b_instruct_v0_3")

    def mistral_nemo_instruct_2407(self) -> Self:
        """Mistral Nemo Instruct 2407: 12.25B parameters, 128k context, apache-2.0 license (bartowski/Mistral-Nemo-
        Instruct-2407-GGUF; Q8_0, Q6_K_L, Q6_K, Q5_K_M, Q4_K_M, IQ4_XS, Q3_K_M, Q2_K).
        """
        return self.preset("mistral_nemo_instruct_2407")

    def mistral_nemo(self) -> Self:
        """Alias of `mistral_nemo_instruct_2407`: Mistral Nemo Instruct 2407: 12.25B parameters, 128k context,
        apache-2.0 license (bartowski/Mistral-Nemo-Instruct-2407-GGUF; Q8_0, Q6_K_L, Q6_K, Q5_K_M, Q4_K_M, IQ4_XS,
        Q3_K_M, Q2_K).
        """
        return self.preset("mistral_nemo_instruct_2407")

    def mistral_small_24b_instruct_2501(self) -> Self:
        """Mistral Small 24B Instruct 2501: 23.57B parameters, 32k context, apache-2.0 license (bartowski/Mistral-
        Small-24B-Instruct-2501-GGUF; Q8_0, Q6_K_L, Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, IQ4_XS, Q3_K_M, Q2_K).
        """
        return self.preset("mistral_small_24b_instruct_2501")

    def mistral_small_24b(self) -> Self:
        """Alias of `mistral_small_24b_instruct_2501`: Mistral Small 24B Instruct 2501: 23.57B parameters, 32k context,
        apache-2.0 license (bartowski/Mistral-Small-24B-Instruct-2501-GGUF; Q8_0, Q6_K_L, Q6_K, Q5_K_M, Q5_K_S,
        Q4_K_M, IQ4_XS, Q3_K_M, Q2_K).
        """
        return self.preset("mistral_small_24b_instruct_2501")

    def mixtral_8x7b_instruct_v0_1(self) -> Self:
        """Mixtral 8x7B Instruct v0.1: 46.7B parameters, 32k context, apache-2.0 license
        (TheBloke/Mixtral-8x7B-Instruct-v0.1-GGUF; Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_0, Q3_K_M, Q2_K).
        """
        return self.preset("mixtral_8x7b_instruct_v0_1")

    def mixtral_8x7b(self) -> Self:
        """Alias of `mixtral_8x7b_instruct_v0_1`: Mixtral 8x7B Instruct v0.1: 46.7B parameters, 32k context, apache-2.0
        license (TheBloke/Mixtral-8x7B-Instruct-v0.1-GGUF; Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_0, Q3_K_M, Q2_K).
        """
        return self.preset("mixtral_8x7b_instruct_v0_1")

    def qwen2_5_0_5b_instruct(self) -> Self:
        """Qwen2.5 0.5B Instruct: 0.49B parameters, 32k context, apache-2.0 license (bartowski/Qwen2.5-0.5B-Instruct-
        GGUF; F16, Q6_K_L, Q5_K_L, Q5_K_M, Q4_K_L, Q4_K_M, Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL, Q3_K_L, Q3_K_M, IQ3_M,
        IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("qwen2_5_0_5b_instruct")

    def qwen2_5_0_5b(self) -> Self:
        """Alias of `qwen2_5_0_5b_instruct`: Qwen2.5 0.5B Instruct: 0.49B parameters, 32k context, apache-2.0 license
        (bartowski/Qwen2.5-0.5B-Instruct-GGUF; F16, Q6_K_L, Q5_K_L, Q5_K_M, Q4_K_L, Q4_K_M, Q4_K_S, IQ4_XS, Q4_0,
        Q3_K_XL, Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("qwen2_5_0_5b_instruct")

    def qwen2_5_1_5b_instruct(self) -> Self:
        """Qwen2.5 1.5B Instruct: 1.54B parameters, 32k context, apache-2.0 license (bartowski/Qwen2.5-1.5B-Instruct-
        GGUF; F16, Q8_0, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL, Q3_K_L,
        Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("qwen2_5_1_5b_instruct")

    def qwen2_5_1_5b(self) -> Self:
        """Alias of `qwen2_5_1_5b_instruct`: Qwen2.5 1.5B Instruct: 1.54B parameters, 32k context, apache-2.0 license
        (bartowski/Qwen2.5-1.5B-Instruct-GGUF; F16, Q8_0, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S,
        IQ4_XS, Q4_0, Q3_K_XL, Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("qwen2_5_1_5b_instruct")

    def qwen2_5_3b_instruct(self) -> Self:
        """Qwen2.5 3B Instruct: 3.09B parameters, 32k context, qwen-research license (bartowski/Qwen2.5-3B-Instruct-
        GGUF; F16, Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL,
        Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("qwen2_5_3b_instruct")

    def qwen2_5_3b(self) -> Self:
        """Alias of `qwen2_5_3b_instruct`: Qwen2.5 3B Instruct: 3.09B parameters, 32k context, qwen-research license
        (bartowski/Qwen2.5-3B-Instruct-GGUF; F16, Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M,
        Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL, Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("qwen2_5_3b_instruct")

    def qwen2_5_7b_instruct(self) -> Self:
        """Qwen2.5 7B Instruct: 7.61B parameters, 32k context, apache-2.0 license (bartowski/Qwen2.5-7B-Instruct-GGUF;
        F16, Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL, Q3_K_L,
        Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("qwen2_5_7b_instruct")

    def qwen2_5_7b(self) -> Self:
        """Alias of `qwen2_5_7b_instruct`: Qwen2.5 7B Instruct: 7.61B parameters, 32k context, apache-2.0 license
        (bartowski/Qwen2.5-7B-Instruct-GGUF; F16, Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M,
        Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL, Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("qwen2_5_7b_instruct")

    def qwen2_5_14b_instruct(self) -> Self:
        """Qwen2.5 14B Instruct: 14.7B parameters, 32k context, apache-2.0 license (bartowski/Qwen2.5-14B-Instruct-
        GGUF; F16, Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL,
        Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("qwen2_5_14b_instruct")

    def qwen2_5_14b(self) -> Self:
        """Alias of `qwen2_5_14b_instruct`: Qwen2.5 14B Instruct: 14.7B parameters, 32k context, apache-2.0 license
        (bartowski/Qwen2.5-14B-Instruct-GGUF; F16, Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M,
        Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL, Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("qwen2_5_14b_instruct")

    def qwen2_5_32b_instruct(self) -> Self:
        """Qwen2.5 32B Instruct: 32.76B parameters, 32k context, apache-2.0 license (bartowski/Qwen2.5-32B-Instruct-
        GGUF; F16, Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL,
        Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("qwen2_5_32b_instruct")

    def qwen2_5_32b(self) -> Self:
        """Alias of `qwen2_5_32b_instruct`: Qwen2.5 32B Instruct: 32.76B parameters, 32k context, apache-2.0 license
        (bartowski/Qwen2.5-32B-Instruct-GGUF; F16, Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M,
        Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL, Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("qwen2_5_32b_instruct")

    def qwen3_0_6b(self) -> Self:
        """Qwen3 0.6B: 0.6B parameters, 40k context, apache-2.0 license (bartowski/Qwen_Qwen3-0.6B-GGUF; Q8_0, Q6_K,
        Q5_K_M, Q4_K_M, Q4_0).
        """
        return self.preset("qwen3_0_6b")

    def qwen3_1_7b(self) -> Self:
        """Qwen3 1.7B: 1.7B parameters, 40k context, apache-2.0 license (bartowski/Qwen_Qwen3-1.7B-GGUF; Q8_0, Q6_K,
        Q5_K_M, Q4_K_M, Q4_0).
        """
        return self.preset("qwen3_1_7b")

    def qwen3_4b(self) -> Self:
        """Qwen3 4B: 4.02B parameters, 40k context, apache-2.0 license (bartowski/Qwen_Qwen3-4B-GGUF; Q4_K_M)."""
        return self.preset("qwen3_4b")

    def qwen3_8b(self) -> Self:
        """Qwen3 8B: 8.19B parameters, 40k context, apache-2.0 license (bartowski/Qwen_Qwen3-8B-GGUF; Q8_0, Q6_K,
        Q5_K_M, Q4_K_M, Q4_0).
        """
        return self.preset("qwen3_8b")

    def qwen3_14b(self) -> Self:
        """Qwen3 14B: 14.77B parameters, 40k context, apache-2.0 license (bartowski/Qwen_Qwen3-14B-GGUF; BF16, Q8_0,
        Q6_K, Q5_K_M, Q4_K_M, Q4_K_S, Q4_0).
        """
        return self.preset("qwen3_14b")

    def qwen3_32b(self) -> Self:
        """Qwen3 32B: 32.76B parameters, 40k context, apache-2.0 license (bartowski/Qwen_Qwen3-32B-GGUF; Q8_0, Q6_K_L,
        Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL, Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS,
        Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("qwen3_32b")

    def qwen3_30b_a3b(self) -> Self:
        """Qwen3 30B-A3B (MoE): 30.5B parameters, 40k context, apache-2.0 license (bartowski/Qwen_Qwen3-30B-A3B-GGUF;
        Q4_K_M, Q4_K_S).
        """
        return self.preset("qwen3_30b_a3b")

    def phi3_5_mini_instruct(self) -> Self:
        """Phi-3.5 mini instruct: 3.82B parameters, 128k context, mit license (bartowski/Phi-3.5-mini-instruct-GGUF;
        Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL, Q3_K_L, Q3_K_M,
        IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("phi3_5_mini_instruct")

    def phi3_5_mini(self) -> Self:
        """Alias of `phi3_5_mini_instruct`: Phi-3.5 mini instruct: 3.82B parameters, 128k context, mit license
        (bartowski/Phi-3.5-mini-instruct-GGUF; Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S,
        IQ4_XS, Q4_0, Q3_K_XL, Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("phi3_5_mini_instruct")

    def phi4(self) -> Self:
        """Phi-4 (14B): 14.7B parameters, 16k context, mit license (bartowski/phi-4-GGUF; F16, Q8_0, Q6_K_L, Q6_K,
        Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S, Q4_0, Q3_K_XL, Q2_K).
        """
        return self.preset("phi4")

    def phi4_mini_instruct(self) -> Self:
        """Phi-4 mini instruct: 3.84B parameters, 128k context, mit license (bartowski/microsoft_Phi-4-mini-instruct-
        GGUF; Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL, Q3_K_L,
        Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("phi4_mini_instruct")

    def phi4_mini(self) -> Self:
        """Alias of `phi4_mini_instruct`: Phi-4 mini instruct: 3.84B parameters, 128k context, mit license
        (bartowski/microsoft_Phi-4-mini-instruct-GGUF; Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M,
        Q4_K_S, IQ4_XS, Q4_0, Q3_K_XL, Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("phi4_mini_instruct")

    def gemma2_2b_it(self) -> Self:
        """Gemma 2 2B it: 2.61B parameters, 8k context, gemma license (bartowski/gemma-2-2b-it-GGUF; Q8_0, Q6_K_L,
        Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, Q4_K_S, IQ4_XS, Q3_K_L, IQ3_M).
        """
        return self.preset("gemma2_2b_it")

    def gemma2_2b(self) -> Self:
        """Alias of `gemma2_2b_it`: Gemma 2 2B it: 2.61B parameters, 8k context, gemma license
        (bartowski/gemma-2-2b-it-GGUF; Q8_0, Q6_K_L, Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, Q4_K_S, IQ4_XS, Q3_K_L, IQ3_M).
        """
        return self.preset("gemma2_2b_it")

    def gemma2_9b_it(self) -> Self:
        """Gemma 2 9B it: 9.24B parameters, 8k context, gemma license (bartowski/gemma-2-9b-it-GGUF; Q8_0, Q6_K_L,
        Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S, IQ4_XS, Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K,
        IQ2_M).
        """
        return self.preset("gemma2_9b_it")

    def gemma2_9b(self) -> Self:
        """Alias of `gemma2_9b_it`: Gemma 2 9B it: 9.24B parameters, 8k context, gemma license
        (bartowski/gemma-2-9b-it-GGUF; Q8_0, Q6_K_L, Q6_K, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, Q4_K_S, IQ4_XS,
        Q3_K_L, Q3_K_M, IQ3_M, IQ3_XS, Q2_K_L, Q2_K, IQ2_M).
        """
        return self.preset("gemma2_9b_it")

    def gemma3_1b_it(self) -> Self:
        """Gemma 3 1B it: 1B parameters, 32k context, gemma license (bartowski/google_gemma-3-1b-it-GGUF; Q8_0, Q6_K,
        Q4_K_M, Q4_0, IQ2_M).
        """
        return self.preset("gemma3_1b_it")

    def gemma3_1b(self) -> Self:
        """Alias of `gemma3_1b_it`: Gemma 3 1B it: 1B parameters, 32k context, gemma license
        (bartowski/google_gemma-3-1b-it-GGUF; Q8_0, Q6_K, Q4_K_M, Q4_0, IQ2_M).
        """
        return self.preset("gemma3_1b_it")

    def gemma3_4b_it(self) -> Self:
        """Gemma 3 4B it: 3.88B parameters, 128k context, gemma license (bartowski/google_gemma-3-4b-it-GGUF; Q8_0,
        Q6_K, Q5_K_M, Q4_K_M, IQ4_XS, Q4_0, Q2_K, IQ2_M).
        """
        return self.preset("gemma3_4b_it")

    def gemma3_4b(self) -> Self:
        """Alias of `gemma3_4b_it`: Gemma 3 4B it: 3.88B parameters, 128k context, gemma license
        (bartowski/google_gemma-3-4b-it-GGUF; Q8_0, Q6_K, Q5_K_M, Q4_K_M, IQ4_XS, Q4_0, Q2_K, IQ2_M).
        """
        return self.preset("gemma3_4b_it")

    def gemma3_12b_it(self) -> Self:
        """Gemma 3 12B it: 12.2B parameters, 128k context, gemma license (bartowski/google_gemma-3-12b-it-GGUF; Q8_0,
        Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, IQ4_XS, Q4_0, Q3_K_M, IQ3_XS, IQ2_M).
        """
        return self.preset("gemma3_12b_it")

    def gemma3_12b(self) -> Self:
        """Alias of `gemma3_12b_it`: Gemma 3 12B it: 12.2B parameters, 128k context, gemma license
        (bartowski/google_gemma-3-12b-it-GGUF; Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, IQ4_XS, Q4_0, Q3_K_M, IQ3_XS,
        IQ2_M).
        """
        return self.preset("gemma3_12b_it")

    def gemma3_27b_it(self) -> Self:
        """Gemma 3 27B it: 27.4B parameters, 128k context, gemma license (bartowski/google_gemma-3-27b-it-GGUF; Q8_0,
        Q6_K_L, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, IQ4_XS, Q4_0, IQ3_XS, IQ2_M).
        """
        return self.preset("gemma3_27b_it")

    def gemma3_27b(self) -> Self:
        """Alias of `gemma3_27b_it`: Gemma 3 27B it: 27.4B parameters, 128k context, gemma license
        (bartowski/google_gemma-3-27b-it-GGUF; Q8_0, Q6_K_L, Q5_K_L, Q5_K_M, Q5_K_S, Q4_K_L, Q4_K_M, IQ4_XS, Q4_0,
        IQ3_XS, IQ2_M).
        """
        return self.preset("gemma3_27b_it")

    def falcon3_7b_instruct(self) -> Self:
        """Falcon 3 7B Instruct: 7.46B parameters, 32k context, other license (bartowski/Falcon3-7B-Instruct-GGUF;
        Q6_K, Q5_K_M, Q4_K_M).
        """
        return self.preset("falcon3_7b_instruct")

    def falcon3_7b(self) -> Self:
        """Alias of `falcon3_7b_instruct`: Falcon 3 7B Instruct: 7.46B parameters, 32k context, other license
        (bartowski/Falcon3-7B-Instruct-GGUF; Q6_K, Q5_K_M, Q4_K_M).
        """
        return self.preset("falcon3_7b_instruct")

    def granite3_3_8b_instruct(self) -> Self:
        """Granite 3.3 8B Instruct: 8.17B parameters, 128k context, apache-2.0 license (bartowski/ibm-
        granite_granite-3.3-8b-instruct-GGUF; Q8_0, Q4_K_M).
        """
        return self.preset("granite3_3_8b_instruct")

    def granite3_8b(self) -> Self:
        """Alias of `granite3_3_8b_instruct`: Granite 3.3 8B Instruct: 8.17B parameters, 128k context, apache-2.0
        license (bartowski/ibm-granite_granite-3.3-8b-instruct-GGUF; Q8_0, Q4_K_M).
        """
        return self.preset("granite3_3_8b_instruct")

    def granite3_3_8b(self) -> Self:
        """Alias of `granite3_3_8b_instruct`: Granite 3.3 8B Instruct: 8.17B parameters, 128k context, apache-2.0
        license (bartowski/ibm-granite_granite-3.3-8b-instruct-GGUF; Q8_0, Q4_K_M).
        """
        return self.preset("granite3_3_8b_instruct")

    def nomic_embed_text_v1_5(self) -> Self:
        """nomic-embed-text v1.5: an embedding model (client.embed; no chat), 768 dimensions, up to 2048 tokens a text,
        mean pooling, 0.137B parameters, apache-2.0 license (nomic-ai/nomic-embed-text-v1.5-GGUF; Q8_0, Q4_K_M).
        """
        return self.preset("nomic_embed_text_v1_5")

    def nomic_embed_text(self) -> Self:
        """Alias of `nomic_embed_text_v1_5`: nomic-embed-text v1.5: an embedding model (client.embed; no chat), 768
        dimensions, up to 2048 tokens a text, mean pooling, 0.137B parameters, apache-2.0 license (nomic-ai/nomic-
        embed-text-v1.5-GGUF; Q8_0, Q4_K_M).
        """
        return self.preset("nomic_embed_text_v1_5")

    def nomic_embed(self) -> Self:
        """Alias of `nomic_embed_text_v1_5`: nomic-embed-text v1.5: an embedding model (client.embed; no chat), 768
        dimensions, up to 2048 tokens a text, mean pooling, 0.137B parameters, apache-2.0 license (nomic-ai/nomic-
        embed-text-v1.5-GGUF; Q8_0, Q4_K_M).
        """
        return self.preset("nomic_embed_text_v1_5")

    def bge_small_en_v1_5(self) -> Self:
        """BGE small en v1.5: an embedding model (client.embed; no chat), 384 dimensions, up to 512 tokens a text, cls
        pooling, 0.0334B parameters, mit license (CompendiumLabs/bge-small-en-v1.5-gguf; Q8_0).
        """
        return self.preset("bge_small_en_v1_5")

    def bge_small(self) -> Self:
        """Alias of `bge_small_en_v1_5`: BGE small en v1.5: an embedding model (client.embed; no chat), 384 dimensions,
        up to 512 tokens a text, cls pooling, 0.0334B parameters, mit license (CompendiumLabs/bge-small-
        en-v1.5-gguf; Q8_0).
        """
        return self.preset("bge_small_en_v1_5")

    def all_minilm_l6_v2(self) -> Self:
        """all-MiniLM-L6-v2: an embedding model (client.embed; no chat), 384 dimensions, up to 256 tokens a text, mean
        pooling, 0.0227B parameters, apache-2.0 license (second-state/All-MiniLM-L6-v2-Embedding-GGUF; Q8_0).
        """
        return self.preset("all_minilm_l6_v2")

    def all_minilm(self) -> Self:
        """Alias of `all_minilm_l6_v2`: all-MiniLM-L6-v2: an embedding model (client.embed; no chat), 384 dimensions,
        up to 256 tokens a text, mean pooling, 0.0227B parameters, apache-2.0 license (second-state/All-
        MiniLM-L6-v2-Embedding-GGUF; Q8_0).
        """
        return self.preset("all_minilm_l6_v2")

    def minilm(self) -> Self:
        """Alias of `all_minilm_l6_v2`: all-MiniLM-L6-v2: an embedding model (client.embed; no chat), 384 dimensions,
        up to 256 tokens a text, mean pooling, 0.0227B parameters, apache-2.0 license (second-state/All-
        MiniLM-L6-v2-Embedding-GGUF; Q8_0).
        """
        return self.preset("all_minilm_l6_v2")

    def qwen3_embedding_0_6b(self) -> Self:
        """Qwen3-Embedding 0.6B: an embedding model (client.embed; no chat), 1024 dimensions, up to 8192 tokens a text,
        last pooling, 0.596B parameters, apache-2.0 license (Qwen/Qwen3-Embedding-0.6B-GGUF; Q8_0).
        """
        return self.preset("qwen3_embedding_0_6b")

    def qwen3_embedding(self) -> Self:
        """Alias of `qwen3_embedding_0_6b`: Qwen3-Embedding 0.6B: an embedding model (client.embed; no chat), 1024
        dimensions, up to 8192 tokens a text, last pooling, 0.596B parameters, apache-2.0 license
        (Qwen/Qwen3-Embedding-0.6B-GGUF; Q8_0).
        """
        return self.preset("qwen3_embedding_0_6b")

    def embeddinggemma_300m(self) -> Self:
        """EmbeddingGemma 300M: an embedding model (client.embed; no chat), 768 dimensions, up to 2048 tokens a text,
        mean pooling, 0.308B parameters, gemma license (ggml-org/embeddinggemma-300M-GGUF; Q8_0).
        """
        return self.preset("embeddinggemma_300m")

    def embeddinggemma(self) -> Self:
        """Alias of `embeddinggemma_300m`: EmbeddingGemma 300M: an embedding model (client.embed; no chat), 768
        dimensions, up to 2048 tokens a text, mean pooling, 0.308B parameters, gemma license (ggml-
        org/embeddinggemma-300M-GGUF; Q8_0).
        """
        return self.preset("embeddinggemma_300m")
