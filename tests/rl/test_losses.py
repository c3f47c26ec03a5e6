"""Every loss against values computed by hand (numbers in the comments)."""

from __future__ import annotations

import math

import pytest
import torch

from robokit.losses import (
    awr_actor_loss,
    calql_lower_bound,
    cql_penalty,
    ensemble_critic_loss,
    expectile_loss,
    iql_q_loss,
    iql_value_loss,
    lagrange_cql_terms,
    max_target_backup,
    ppo_clip_loss,
    ppo_value_loss,
    random_subset,
    sac_actor_loss,
    soft_target_value,
    subset_min,
    td_target,
    temperature_loss,
)
from robokit.nets.policies import tanh_log_det_jacobian

T = torch.tensor


def close(actual, expected, tol=1e-5):
    torch.testing.assert_close(torch.as_tensor(actual, dtype=torch.float32),
                               torch.as_tensor(expected, dtype=torch.float32), atol=tol, rtol=tol)


def test_td_target_masks_only_terminations():
    # r + 0.9 * (1 - term) * V': [1 + 0.9*2, 0.5 + 0] ; truncation is not an input, so it bootstraps
    close(td_target(T([1.0, 0.5]), T([2.0, 4.0]), T([0.0, 1.0]), 0.9), [2.8, 0.5])


def test_td_target_broadcasts_over_ensemble():
    out = td_target(T([1.0]), T([[1.0], [3.0]]), T([0.0]), 0.5)
    close(out, [[1.5], [2.5]])


def test_soft_target_value():
    close(soft_target_value(T([2.0]), T([-1.0]), 0.5), [2.5])  # 2 - 0.5 * (-1)
    close(soft_target_value(T([2.0]), T([-1.0]), 0.5, backup_entropy=False), [2.0])


def test_subset_min_all_members_and_random_subset():
    q = T([[1.0, 5.0], [3.0, 2.0], [0.0, 9.0]])
    close(subset_min(q, 3), [0.0, 2.0])
    gen_a, gen_b = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    members = random_subset(3, 2, gen_b)
    close(subset_min(q, 2, gen_a), q[members].min(0).values)
    assert random_subset(3, 3) is None
    with pytest.raises(ValueError, match="subset_size"):
        subset_min(q, 4)


def test_ensemble_critic_loss_sums_member_mse():
    # member 0: ((1-1)^2 + (2-1)^2)/2 = 0.5 ; member 1: ((3-1)^2 + (4-1)^2)/2 = 6.5 ; sum 7
    close(ensemble_critic_loss(T([[1.0, 2.0], [3.0, 4.0]]), T([1.0, 1.0])), 7.0)


def test_sac_actor_loss():
    # mean(0.5*(-1) - 2, 0.5*0 - 3) = mean(-2.5, -3) = -2.75
    close(sac_actor_loss(T([-1.0, 0.0]), T([2.0, 3.0]), 0.5), -2.75)


def test_temperature_loss_value_and_direction():
    log_alpha = torch.tensor(math.log(2.0), requires_grad=True)
    loss = temperature_loss(log_alpha, T([-1.0, -3.0]), target_entropy=-2.0)
    # -(ln2 * mean((-1-2), (-3-2))) = 4 ln 2
    close(loss, 4 * math.log(2.0))
    loss.backward()
    # entropy (1, 3) is above the target -2, so alpha must shrink: d loss / d log_alpha = +4
    close(log_alpha.grad, 4.0)


def test_cql_penalty_hand_computed():
    # E=B=N=1, A=1: uniform density 0.5 -> subtract log 0.5
    # terms: 0 - ln 0.5 = ln 2 ; next 1 - (-0.5) = 1.5 ; current 2 - 0.5 = 1.5
    penalty = cql_penalty(q_data=T([[1.0]]), q_random=T([[[0.0]]]), q_current=T([[[2.0]]]), q_next=T([[[1.0]]]),
                          log_prob_current=T([[0.5]]), log_prob_next=T([[-0.5]]), action_dim=1)
    close(penalty, [math.log(2.0 + 2 * math.exp(1.5)) - 1.0])


def test_cql_penalty_temperature_and_batch_mean():
    # T=2: 2*logsumexp(x/2); two batch rows averaged, two actions per proposal, A=2 (density 1/4)
    q_random = T([[[0.0, 1.0], [0.0, 0.0]]])
    q_cur = T([[[1.0, 1.0], [2.0, 2.0]]])
    q_next = T([[[0.0, 0.0], [1.0, 1.0]]])
    zeros = torch.zeros(2, 2)
    penalty = cql_penalty(T([[1.0, 0.0]]), q_random, q_cur, q_next, zeros, zeros, action_dim=2, temperature=2.0)
    log4 = math.log(4.0)

    def soft(values):
        return 2.0 * math.log(sum(math.exp(v / 2.0) for v in values))

    row0 = soft([0 + log4, 1 + log4, 0, 0, 1, 1]) - 1.0
    row1 = soft([log4, log4, 1, 1, 2, 2]) - 0.0
    close(penalty, [(row0 + row1) / 2])


def test_calql_lower_bound_clamps_and_routes_gradient():
    q = torch.tensor([[[0.5, 3.0]]], requires_grad=True)
    out = calql_lower_bound(q, T([1.0]))
    close(out, [[[1.0, 3.0]]])
    out.sum().backward()
    close(q.grad, [[[0.0, 1.0]]])  # the clamped value is a constant


def test_lagrange_cql_terms():
    # Cal-QL/CORL: each member's term is alpha' * cql_alpha * (penalty - gap); alpha' ascends the
    # members' mean ((-loss1 - loss2) * 0.5 for two critics)
    log_alpha_prime = torch.tensor(math.log(3.0), requires_grad=True)
    penalty = torch.tensor([2.0, 1.0], requires_grad=True)
    critic_term, alpha_loss = lagrange_cql_terms(log_alpha_prime, penalty, target_action_gap=0.5, cql_alpha=5.0)
    close(critic_term, 3.0 * 5.0 * (1.5 + 0.5))  # alpha' * cql_alpha * sum(penalty - gap)
    close(alpha_loss, -3.0 * 5.0 * (1.5 + 0.5) / 2)
    alpha_loss.backward()
    close(log_alpha_prime.grad, -15.0)  # penalty above the gap -> alpha' grows
    assert penalty.grad is None
    critic_term.backward()
    close(penalty.grad, [15.0, 15.0])
    close(log_alpha_prime.grad, -15.0)  # unchanged: the critic term does not reach alpha'


def test_cql_penalty_clips_each_state_before_the_batch_mean():
    # two states: differences ln(3 e^0) - 0 = ln 3 and ln(3 e^4) - 0 = 4 + ln 3 (uniform, A=1 -> +ln 2 each)
    q_random = T([[[0.0], [4.0]]])
    zeros = torch.zeros(2, 1)
    args = (T([[0.0, 0.0]]), q_random, q_random.clone(), q_random.clone(), zeros, zeros)
    diffs = [math.log(math.exp(math.log(2.0)) + 2.0), 4.0 + math.log(2.0 + 2.0)]
    close(cql_penalty(*args, action_dim=1), [sum(diffs) / 2])
    close(cql_penalty(*args, action_dim=1, clip_min=-1.0, clip_max=2.0), [(diffs[0] + 2.0) / 2])
    close(cql_penalty(*args, action_dim=1, clip_min=3.0), [(3.0 + diffs[1]) / 2])


def test_max_target_backup():
    next_q = T([[[1.0, 5.0, 3.0]], [[2.0, 4.0, 0.0]]])  # (M=2, B=1, N=3); min over members: 1, 4, 0
    value, log_prob = max_target_backup(next_q, T([[-1.0, -2.0, -3.0]]))
    close(value, [4.0])
    close(log_prob, [-2.0])


def test_expectile_and_iql_value_loss():
    close(expectile_loss(T([2.0, -2.0]), 0.7), [0.7 * 4, 0.3 * 4])
    # diffs q - v = [2, -2]; tau 0.8 -> mean(0.8*4, 0.2*4) = 2
    close(iql_value_loss(T([3.0, 1.0]), T([1.0, 3.0]), 0.8), 2.0)


def test_iql_q_loss():
    # target 1 + 0.5 * 2 = 2 ; members (1-2)^2 + (2-2)^2 = 1
    close(iql_q_loss(T([[1.0], [2.0]]), T([1.0]), T([2.0]), T([0.0]), 0.5), 1.0)
    # terminated: target = r = 1 ; (1-1)^2 + (2-1)^2 = 1
    close(iql_q_loss(T([[1.0], [2.0]]), T([1.0]), T([2.0]), T([1.0]), 0.5), 1.0)


def test_awr_actor_loss_clips_weights():
    # weights exp(2*[0, 1]) = [1, 7.39] clipped at 5 -> -mean(1*(-1), 5*(-2)) = 5.5
    close(awr_actor_loss(T([-1.0, -2.0]), T([0.0, 1.0]), temperature=2.0, max_weight=5.0), 5.5)


def test_tanh_log_det_jacobian():
    u = T([[0.0, 1.0]])
    close(tanh_log_det_jacobian(u), [math.log(1.0) + math.log(1.0 - math.tanh(1.0) ** 2)])
    # stable for large |u| where 1 - tanh^2 underflows
    assert torch.isfinite(tanh_log_det_jacobian(T([[30.0, -30.0]]))).all()


def test_ppo_clip_loss():
    # ratios [1, 2], advantages +1: min(1, 1) and min(2, 1.2) -> -mean(1, 1.2) = -1.1
    close(ppo_clip_loss(T([0.0, math.log(2.0)]), T([0.0, 0.0]), T([1.0, 1.0]), 0.2), -1.1)
    # negative advantage: ratio 2 is not clipped in the pessimistic direction: -min(-2, -1.2) = 2
    close(ppo_clip_loss(T([math.log(2.0)]), T([0.0]), T([-1.0]), 0.2), 2.0)
    # ratio 0.5 with A = -1: min(-0.5, -0.8) = -0.8 -> 0.8
    close(ppo_clip_loss(T([math.log(0.5)]), T([0.0]), T([-1.0]), 0.2), 0.8)


def test_ppo_value_loss():
    close(ppo_value_loss(T([1.0, 3.0]), T([0.0, 0.0])), 2.5)  # 0.5 * (1 + 9) / 2
