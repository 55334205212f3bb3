"""Evals wing: scoring reward models, RewardBench v1/v2, presence probes, label rows and validation.

Uses the models and data wings; never the train wing.
"""
