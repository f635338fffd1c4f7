"""The policy interface the signal service serves, and the documented baseline that serves until an RL policy is
registered (issue 5 builds the RL policies, the model registry and ONNX inference behind this same interface)."""

from trading_policy.interface import BaselinePolicy, Policy

__all__ = ["BaselinePolicy", "Policy"]
