"""RoboFuME (Yang, Sobol Mark et al., ICRA 2024, arXiv 2310.15145): reset-free fine-tuning with a
learned success reward, pretrained on prior multi-task data (issue 14).

``data`` makes the datasets (prior multi-task demos, target forward/backward demos, failure frames)
on the reset-free task pairs of :mod:`robokit.envs.reset_free`; the reward models, pretraining and
the reset-free loop live beside it. Docs: docs/robofume_envs.md, docs/robofume_reward.md, docs/robofume.md.

Reward-model modules (imported on demand; this package imports nothing heavy):

- :mod:`robokit.robofume.reward`: success reward models behind one interface,
  ``(images, instructions) -> P(success)`` ("vlm", "cnn", "oracle"), fit and confusion table.
- :mod:`robokit.robofume.vlm`: the CLIP-style vision-language classifier (Hugging Face ``transformers``).
- :mod:`robokit.robofume.reward_cli`: ``robokit robofume reward train|eval``.
"""
