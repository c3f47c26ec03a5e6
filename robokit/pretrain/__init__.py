"""robokit.pretrain: representation pretraining for multi-task imitation from pixels.

Demonstrations of the hidden-context envs (:mod:`robokit.pretrain.demos`); the pretraining
objectives on one pixel encoder (:mod:`~robokit.pretrain.objectives`), their data views
(:mod:`~robokit.pretrain.data`) and loop (:mod:`~robokit.pretrain.training`), fine-tuning and
rollouts (:mod:`~robokit.pretrain.finetune`) and the ``robokit pretrain`` / ``robokit finetune-bc``
commands (:mod:`~robokit.pretrain.cli`); see docs/pretrain.md. Importing this package imports no
torch and no MuJoCo; each module imports what it needs when used.
"""
