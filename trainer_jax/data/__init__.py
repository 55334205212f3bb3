"""Data wing: readers, row schemas, rendering + tokenization (one path for train and score), batching.

Uses nothing else of trainer_jax; the other wings build on it.
"""
