"""Training the RL agent on Ray RLlib (new API stack): `TrainConfig` (YAML), `train` (checkpoints, resume, validation,
ONNX export with a parity check), `register_model` (the model registry). docs: libs/agent/docs/training.md."""

from trading_agent.training.config import CONFIG_DIR, TrainConfig
from trading_agent.training.export import DeterministicPolicy, ExportError, export_onnx
from trading_agent.training.trainer import (
    TrainingProgress,
    TrainResult,
    build_manifest,
    evaluate,
    load_market,
    register_model,
    train,
)

__all__ = [
    "CONFIG_DIR",
    "DeterministicPolicy",
    "ExportError",
    "TrainConfig",
    "TrainResult",
    "TrainingProgress",
    "build_manifest",
    "evaluate",
    "export_onnx",
    "load_market",
    "register_model",
    "train",
]
