"""basepick's predictor: rank base LLMs by the RewardBench score a reward model trained from them reaches.

Core package: numpy + lightgbm only. It never imports ``trainer_jax``. Submodules are imported where
needed, so ``import predictor`` stays cheap.
"""

__version__ = "0.1.0"
