"""Train wing: the ``basepick train`` orchestrator (``run``), the training loop, recipes, losses,
checkpoints and the device mesh. Uses the evals, models and data wings.
"""
