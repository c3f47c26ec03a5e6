"""Networks for RL: MLPs, a vectorised Q ensemble, policies and value heads.

Everything here is a plain ``torch.nn.Module`` with shapes in its docstring.
The Q ensemble evaluates all E members in one batched matmul per layer
(:class:`EnsembleLinear`), never a Python loop over members.
"""

from robokit.nets.ensemble import EnsembleLinear, EnsembleMLP, QEnsemble
from robokit.nets.mlp import MLP, ValueNet, orthogonal_init_
from robokit.nets.policies import DeterministicPolicy, GaussianPolicy, TanhGaussianPolicy

__all__ = [
    "MLP",
    "ValueNet",
    "orthogonal_init_",
    "EnsembleLinear",
    "EnsembleMLP",
    "QEnsemble",
    "TanhGaussianPolicy",
    "GaussianPolicy",
    "DeterministicPolicy",
]
