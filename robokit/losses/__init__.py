"""Pure loss functions for RL: no modules, no optimizer steps, shapes in docstrings."""

from robokit.losses.bc import bc_mse_loss, matched_scale_weight
from robokit.losses.cql import (
    calql_lower_bound,
    cql_penalty,
    lagrange_cql_terms,
    max_target_backup,
)
from robokit.losses.iql import awr_actor_loss, expectile_loss, iql_q_loss, iql_value_loss
from robokit.losses.ppo import ppo_clip_loss, ppo_value_loss
from robokit.losses.sac import sac_actor_loss, temperature_loss
from robokit.losses.td import (
    ensemble_critic_loss,
    random_subset,
    soft_target_value,
    subset_min,
    td_target,
)

__all__ = [
    "td_target",
    "subset_min",
    "random_subset",
    "soft_target_value",
    "ensemble_critic_loss",
    "sac_actor_loss",
    "temperature_loss",
    "bc_mse_loss",
    "matched_scale_weight",
    "cql_penalty",
    "calql_lower_bound",
    "lagrange_cql_terms",
    "max_target_backup",
    "expectile_loss",
    "iql_value_loss",
    "iql_q_loss",
    "awr_actor_loss",
    "ppo_clip_loss",
    "ppo_value_loss",
]
