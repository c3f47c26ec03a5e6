"""Scale-out on Ray: evaluation and suite fan-out, distributed rollouts, sweeps.

Nothing here imports ``ray`` at module import time: :func:`robokit.distributed.options.ray_session`
imports it when a command is given ``--distributed ray`` (and names the ``distributed`` extra
when it is not installed). One process stays the default and needs no Ray.

- :mod:`~robokit.distributed.options`: the ``--distributed/--address/--workers`` options and the Ray session.
- :mod:`~robokit.distributed.fanout`: ordered map of independent tasks over worker processes.
- :mod:`~robokit.distributed.rollouts`: rollout actors feeding the learner's replay (``robokit train``).
- :mod:`~robokit.distributed.sweep`: ``robokit sweep CONFIG.yaml`` on Ray Tune.
"""
