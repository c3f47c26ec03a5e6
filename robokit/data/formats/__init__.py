"""Dataset formats: Minari, D4RL-style HDF5, robomimic HDF5 and robokit replay files.

Format detection (:func:`detect_format`):

- a directory with ``metadata.json`` (or ``data/metadata.json``) -> ``minari``
- an HDF5 file with ``data/demo_*`` groups -> ``robomimic``; with root
  ``observations``/``actions``/``rewards`` -> ``d4rl``; with ``episode_*`` groups
  beside a ``metadata.json`` -> ``minari``
- a ``.npz`` file -> ``replay`` (a saved :class:`~robokit.data.ReplayBuffer`)

When writing, the format comes from the destination: no suffix -> ``minari``,
``.hdf5``/``.h5`` -> ``d4rl`` (pass ``fmt="robomimic"`` for robomimic),
``.npz`` -> ``replay``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robokit.data.episode import Episode
from robokit.data.errors import DataError

FORMATS = ("minari", "d4rl", "robomimic", "replay")
HDF5_SUFFIXES = (".hdf5", ".h5", ".he5")


def detect_format(path: str | Path) -> str:
    """The format of an existing dataset at ``path`` (see the module docstring)."""
    from robokit.data.formats.common import open_hdf5
    from robokit.data.formats.d4rl import looks_like_d4rl
    from robokit.data.formats.minari_format import minari_data_dir
    from robokit.data.formats.robomimic import looks_like_robomimic

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir() or path.name == "main_data.hdf5":
        if minari_data_dir(path) is not None:
            return "minari"
        raise DataError(f"{path}: directory is not a Minari dataset (no metadata.json)")
    if path.suffix == ".npz":
        return "replay"
    with open_hdf5(path) as handle:
        if looks_like_robomimic(handle):
            return "robomimic"
        if looks_like_d4rl(handle):
            return "d4rl"
        keys = sorted(handle.keys())[:8]
    raise DataError(f"{path}: HDF5 layout not recognised (top-level keys {keys}); expected D4RL "
                    f"(observations, actions, rewards, terminals, timeouts) or robomimic (data/demo_*)")


def format_for_output(path: str | Path, fmt: str | None = None) -> str:
    """The format to write ``path`` in: ``fmt`` if given, else from the suffix."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")
        return fmt
    suffix = Path(path).suffix
    if suffix in HDF5_SUFFIXES:
        return "d4rl"
    if suffix == ".npz":
        return "replay"
    if suffix == "":
        return "minari"
    raise ValueError(f"{path}: cannot tell the format from suffix {suffix!r}; pass one of {FORMATS}")


def load_episodes(path: str | Path, fmt: str | None = None, **kwargs: Any) -> list[Episode]:
    """Episodes from a dataset (format auto-detected unless ``fmt`` is given)."""
    fmt = fmt or detect_format(path)
    if fmt == "minari":
        from robokit.data.formats.minari_format import load_minari

        return load_minari(path)
    if fmt == "d4rl":
        from robokit.data.formats.d4rl import load_d4rl

        return load_d4rl(path)
    if fmt == "robomimic":
        from robokit.data.formats.robomimic import load_robomimic

        return load_robomimic(path, **kwargs)
    if fmt == "replay":
        from robokit.data.formats.common import buffer_to_episodes
        from robokit.data.replay import ReplayBuffer

        return buffer_to_episodes(ReplayBuffer.load(path))
    raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")


def save_episodes(episodes: Any, path: str | Path, fmt: str | None = None, env_id: str | None = None,
                  overwrite: bool = False) -> Path:
    """Write episodes (or a replay buffer) to ``path`` in ``fmt`` (default: from the suffix).
    Every writer is atomic; an existing destination is an error unless ``overwrite``."""
    path = Path(path)
    fmt = format_for_output(path, fmt)
    if fmt != "minari" and path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists (pass overwrite=True / --overwrite to replace it)")
    if fmt == "minari":
        from robokit.data.formats.minari_format import save_minari

        return save_minari(episodes, path, env_id=env_id, overwrite=overwrite)
    if fmt == "d4rl":
        from robokit.data.formats.d4rl import save_d4rl

        return save_d4rl(episodes, path, env_id=env_id)
    if fmt == "robomimic":
        from robokit.data.formats.robomimic import save_robomimic

        return save_robomimic(episodes, path, env_id=env_id)
    return episodes_to_buffer(episodes).save(path)


def episodes_to_buffer(episodes: Any, capacity: int | None = None, **kwargs: Any) -> Any:
    """A :class:`~robokit.data.ReplayBuffer` holding ``episodes`` (capacity defaults to their size)."""
    from robokit.data.formats.common import as_episodes
    from robokit.data.replay import ReplayBuffer

    episodes = as_episodes(episodes)
    if not episodes:
        raise DataError("no episodes to put in a replay buffer")
    first = episodes[0]
    obs = first.observations
    obs_shape: Any
    obs_dtype: Any
    if isinstance(obs, dict):
        obs_shape = {k: (None, v[0].shape[1]) if isinstance(v, list) else v.shape[1:] for k, v in obs.items()}
        obs_dtype = {k: v[0].dtype if isinstance(v, list) else v.dtype for k, v in obs.items()}
    elif isinstance(obs, list):
        obs_shape, obs_dtype = (None, obs[0].shape[1]), obs[0].dtype
    else:
        obs_shape, obs_dtype = obs.shape[1:], obs.dtype
    total = sum(len(ep) for ep in episodes)
    buffer = ReplayBuffer(capacity or max(total, 1), obs_shape, first.action_dim, obs_dtype=obs_dtype, **kwargs)
    for episode in episodes:
        buffer.add_episode(episode)
    return buffer


def convert(src: str | Path, dst: str | Path, src_format: str | None = None, dst_format: str | None = None,
            env_id: str | None = None, overwrite: bool = False) -> tuple[Path, int, int]:
    """Convert a dataset between formats; returns ``(dst, episodes, transitions)``."""
    episodes = load_episodes(src, src_format)
    out = save_episodes(episodes, dst, dst_format, env_id=env_id, overwrite=overwrite)
    return out, len(episodes), sum(len(ep) for ep in episodes)
