"""Placeholder python-backend model: the mean of each colour channel of an image batch.

Deterministic and weight-free, so tests can check Triton's answers exactly; the food models replace it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests: list[Any]) -> list[Any]:
        # Dynamic batching hands over several requests at once; each keeps its own tensors.
        responses = []
        for request in requests:
            images = pb_utils.get_input_tensor_by_name(request, "image").as_numpy()  # [batch, h, w, 3] uint8
            mean_rgb = images.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)  # [batch, 3]
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("mean_rgb", mean_rgb)]))
        return responses
