"""The deterministic policy of a trained RLModule as a plain torch module, and its ONNX export with a parity check.

PPO: the Gaussian mean, clipped to the action bounds (training sends clip(sample) to the env: normalize_actions off).
SAC: the squashed-Gaussian mean: tanh(mean) rescaled from [-1, 1] to the bounds (what RLlib's action normalisation
does to SAC's squashed samples during training).
ONNX graph: input "obs" float32 [batch, obs_dim], output "action" float32 [batch, action_dim], dynamic batch axis.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

PARITY_ATOL = 1e-5
PARITY_SAMPLES = 100


class ExportError(RuntimeError):
    """The exported graph does not reproduce the torch policy (or could not be written)."""


class DeterministicPolicy(torch.nn.Module):
    """obs [batch, obs_dim] -> deterministic action [batch, action_dim] of an RLlib torch RLModule."""

    def __init__(self, module: Any, algorithm: str, low: np.ndarray, high: np.ndarray) -> None:
        super().__init__()
        if algorithm not in ("PPO", "SAC"):
            raise ValueError(f"no deterministic policy for algorithm {algorithm!r}")
        self.module = module
        self.algorithm = algorithm
        low_t = torch.as_tensor(np.asarray(low, dtype=np.float32).reshape(1, -1))
        high_t = torch.as_tensor(np.asarray(high, dtype=np.float32).reshape(1, -1))
        self.register_buffer("low", low_t)
        self.register_buffer("high", high_t)
        self.action_dim = int(low_t.shape[1])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        inputs = self.module._forward_inference({"obs": obs})["action_dist_inputs"]
        mean = inputs[:, : self.action_dim]
        if self.algorithm == "SAC":
            return self.low + (torch.tanh(mean) + 1.0) * (self.high - self.low) / 2.0
        return torch.maximum(torch.minimum(mean, self.high), self.low)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        batch = torch.as_tensor(np.asarray(obs, dtype=np.float32).reshape(-1, self.module_obs_dim))
        return self.forward(batch).numpy()

    @property
    def module_obs_dim(self) -> int:
        return int(np.prod(self.module.observation_space.shape))


def sample_observations(policy: DeterministicPolicy, count: int = PARITY_SAMPLES, seed: int = 0) -> np.ndarray:
    """Random observations within the observation space (the features' clip range and the position bounds)."""
    space = policy.module.observation_space
    rng = np.random.default_rng(seed)
    return rng.uniform(space.low, space.high, size=(count, *space.shape)).astype(np.float32)


def export_onnx(policy: DeterministicPolicy, path: Path, seed: int = 0) -> float:
    """Write the policy to `path` as ONNX and check onnxruntime against torch on 100 random observations (atol 1e-5).
    Returns the largest absolute difference; raises ExportError when it is above the tolerance."""
    import onnxruntime as ort

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    policy.eval()
    example = torch.zeros((1, policy.module_obs_dim), dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation; it is the one that
        # needs no onnxscript and handles RLlib's dict-in/dict-out modules
        torch.onnx.export(
            policy,
            (example,),
            str(path),
            input_names=["obs"],
            output_names=["action"],
            dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    observations = sample_observations(policy, seed=seed)
    expected = policy.act(observations)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (actual,) = session.run(["action"], {"obs": observations})
    if actual.shape != expected.shape:
        raise ExportError(f"ONNX output shape {actual.shape} != torch output shape {expected.shape}")
    difference = float(np.max(np.abs(actual - expected)))
    if not difference <= PARITY_ATOL:
        raise ExportError(f"ONNX and torch disagree by {difference:.3g} (> {PARITY_ATOL}) on random observations")
    return difference


MODULE_PATH = Path("learner_group") / "learner" / "rl_module" / "default_policy"


def policy_from_checkpoint(checkpoint: Path, algorithm: str, low: np.ndarray, high: np.ndarray) -> DeterministicPolicy:
    """The deterministic policy of an algorithm checkpoint (its learner's RLModule), without Ray or an Algorithm."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    module = RLModule.from_checkpoint(str(Path(checkpoint) / MODULE_PATH))
    return DeterministicPolicy(module, algorithm, low, high)
