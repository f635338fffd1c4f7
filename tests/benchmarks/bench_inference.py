"""Policy inference latency for one observation (docs/architecture.md section 8: p99 <= 1 ms): the exported ONNX policy through
onnxruntime (1 intra-op thread), through trading_policy's OnnxPolicy (scaling + clipping + session), through a Ray
actor call, and the torch module itself for comparison.

The policy is the registered production `trend-ppo` when the registry ($TRADING_SIGNAL__MODEL_REGISTRY or
.run/models) has one; otherwise an untrained policy of the default architecture (latency depends on the graph's
shape, not on its weights), exported by the same code path as training."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from trading_agent.envs import Scaler
from trading_agent.training import CONFIG_DIR, TrainConfig
from trading_agent.training.export import DeterministicPolicy, export_onnx
from trading_features import FEATURE_NAMES, FEATURE_VERSION

from tests.benchmarks.stats import latency_summary, write_results

SAMPLES = 20_000
RAY_SAMPLES = 2_000


def untrained_policy() -> DeterministicPolicy:
    import gymnasium as gym
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule

    config = TrainConfig.from_file(CONFIG_DIR / "default.yaml")
    low, high = config.action_bounds
    obs_space = gym.spaces.Box(-5.0, 5.0, shape=(len(FEATURE_NAMES) + 1,), dtype=np.float32)
    act_space = gym.spaces.Box(low, high, shape=(1,), dtype=np.float32)
    model = {"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh", **config.hyperparameters.get("model", {})}
    module = DefaultPPOTorchRLModule(
        observation_space=obs_space, action_space=act_space, inference_only=True, model_config=model
    )
    return DeterministicPolicy(module, "PPO", np.array([low]), np.array([high]))


def model_version(workdir: Path):
    from trading_policy.registry import ModelRegistry, RegistryError

    root = Path(os.environ.get("TRADING_SIGNAL__MODEL_REGISTRY") or ".run/models")
    try:
        return ModelRegistry(root).get("trend-ppo"), None
    except (RegistryError, OSError):
        pass
    policy = untrained_policy()
    onnx_path = workdir / "policy.onnx"
    export_onnx(policy, onnx_path)
    scaler = Scaler(np.zeros(len(FEATURE_NAMES)), np.ones(len(FEATURE_NAMES)))
    manifest = {
        "algorithm": "PPO",
        "env": "single",
        "seed": 0,
        "feature_names": list(FEATURE_NAMES),
        "feature_version": FEATURE_VERSION,
        "observation": {"layout": [*FEATURE_NAMES, "position"], "scaler": scaler.to_dict(), "clip": 5.0},
        "action": {"low": float(policy.low[0, 0]), "high": float(policy.high[0, 0]), "long_only": True},
    }
    return ModelRegistry(workdir / "models").register("bench-untrained", onnx_path, manifest), policy


def timed(call, samples: int) -> list[int]:
    for _ in range(min(1000, samples // 10)):
        call()
    out = []
    clock = time.perf_counter_ns
    for _ in range(samples):
        started = clock()
        call()
        out.append(clock() - started)
    return out


def main() -> None:
    import torch
    from trading_policy.onnx_policy import OnnxPolicy

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        version, policy = model_version(Path(tmp))
        figures: dict[str, object] = {
            "model": f"{version.name}@{version.version}" + (" (untrained, default architecture)" if policy else "")
        }
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(version.onnx_path), options, providers=["CPUExecutionProvider"])
        obs = rng.uniform(-1, 1, size=(1, len(FEATURE_NAMES) + 1)).astype(np.float32)
        figures["onnxruntime_session_run"] = latency_summary(timed(lambda: session.run(None, {"obs": obs}), SAMPLES))
        served = OnnxPolicy(version, max_weight=0.2)
        features = rng.normal(0, 0.01, size=len(FEATURE_NAMES))
        figures["onnx_policy_predict"] = latency_summary(timed(lambda: served.predict(features, 0.1), SAMPLES))
        if policy is not None:
            tensor = torch.as_tensor(obs)
            with torch.no_grad():
                figures["torch_module_forward"] = latency_summary(timed(lambda: policy(tensor), SAMPLES // 4))
        figures["ray_actor_call"] = ray_actor_latency(version, features)
    write_results("inference", figures)


def ray_actor_latency(version, features: np.ndarray) -> dict[str, float]:
    import ray

    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:

        @ray.remote(num_cpus=0)
        class Server:
            def __init__(self, model) -> None:
                from trading_policy.onnx_policy import OnnxPolicy

                self.policy = OnnxPolicy(model, max_weight=0.2)

            def predict(self, features: np.ndarray, position: float) -> float:
                return self.policy.predict(features, position)

        server = Server.remote(version)
        ray.get(server.predict.remote(features, 0.0))
        return latency_summary(timed(lambda: ray.get(server.predict.remote(features, 0.1)), RAY_SAMPLES))
    finally:
        if started_ray:
            ray.shutdown()


if __name__ == "__main__":
    main()
