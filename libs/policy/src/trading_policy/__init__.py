"""The policy interface the signal service serves, the documented baseline, the model registry and the ONNX runtime
policy that serves a registered RL model (no training stack needed to serve)."""

from trading_policy.interface import BaselinePolicy, Policy
from trading_policy.registry import ModelRegistry, ModelVersion, RegistryError

__all__ = ["BaselinePolicy", "ModelRegistry", "ModelVersion", "Policy", "RegistryError"]
