"""Reset-free forward/backward task pairs with image observations (RoboFuME, issue 14).

Each env holds one scene and several instructions: the forward task first, the backward
(reset) task second, then related tasks used only for prior data. The observation is

``{"image": (64, 64, 3) uint8 top-camera frame, "proprio": (P,) float32, "task": (K,) one-hot}``

over ``env.unwrapped.instructions`` (K of them). ``set_instruction(name or index)`` switches the
instruction without touching the simulator state. ``info["success"]`` is the simulator's truth for
the current instruction, which is also the reward (1.0 / 0.0); success never terminates the episode
(the RoboFuME loop decides what success does). Reset-free: ``reset()`` puts the scene back into its
start state only on the first call, when ``reset_every`` env steps have passed since the last real
reset, or with ``options={"hard": True}``; any other ``reset()`` keeps the state and only starts a new
episode (the time limit comes from the registration). ``hard_resets`` counts the real resets and
``info["hard_reset"]`` says whether this reset was one. A seeded ``reset(seed=s)`` is a real reset
too (it reseeds the env's RNG and draws the start state from it, so a seeded reset always gives the
same state, as gymnasium's checker requires): seed once at the start of a run, then call ``reset()``.

:class:`ResetFreeEnv` holds this contract; :class:`PlanarPusherEnv` runs it on robokit's own scenes
(``envs/push_back_forth/push_back_forth.xml``, ``envs/drawer_open_close/drawer_open_close.xml``) and
:mod:`robokit.envs.robosuite_pair` on robosuite's Lift. Cards with measured figures:
``docs/robofume_envs.md``. Each env has a privileged scripted expert,
:meth:`ResetFreeEnv.expert_action`, used by :mod:`robokit.robofume.data` to make demos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from robokit.envs.multitask import task_index
from robokit.envs.rendering import TopCameraRendering

SCENES = Path(__file__).resolve().parents[2] / "envs"
#: pusher speed [m/s] at action 1.0 (the velocity actuators' ctrlrange)
MAX_SPEED = 0.3
#: RoboFuME's simulation experiments reset every 1,000 steps (as issue 14 quotes the paper)
DEFAULT_RESET_EVERY = 1000


class ResetFreeEnv(gym.Env):
    """The reset-free contract shared by every pair (module docstring); subclasses hold the simulator.

    A subclass sets ``INSTRUCTIONS`` (forward, backward, prior...) and ``ACTION_DIM``, calls
    :meth:`_init_contract` from its constructor and implements :meth:`_real_reset` (put the scene in a
    start state drawn from ``np_random``), :meth:`_advance` (apply a clipped action), :meth:`_image`,
    :meth:`_proprio`, :meth:`state`, :meth:`_succeeds` and :meth:`expert_action`.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    INSTRUCTIONS: tuple[str, ...]
    ACTION_DIM: int = 2

    def _init_contract(self, reset_every: int, instructions: tuple[str, ...] | None, instruction: str | int,
                       image_size: int, proprio_dim: int, render_mode: str | None) -> None:
        """Check the contract's arguments and set the instruction, counters and spaces.

        Raises:
            ValueError: a bad ``reset_every``, ``image_size`` or an unknown instruction, named.
        """
        name = type(self).__name__
        if isinstance(reset_every, bool) or not isinstance(reset_every, int | np.integer) or reset_every < 1:
            raise ValueError(f"{name}: reset_every must be a positive integer (env steps), got {reset_every!r}")
        if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer) or image_size < 8:
            raise ValueError(f"{name}: image_size must be an integer >= 8, got {image_size!r}")
        names = tuple(self.INSTRUCTIONS if instructions is None else instructions)
        for text in names:
            task_index(text, self.INSTRUCTIONS, kind="instruction")
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(f"{name}: instructions must be distinct, forward and backward at least, got {list(names)}")
        self.instructions = names
        self.instruction = task_index(instruction, names, kind="instruction")
        self.reset_every = int(reset_every)
        self.render_mode = render_mode
        self._size = (int(image_size), int(image_size))
        self.hard_resets = 0
        self.steps_since_hard_reset = 0
        self._needs_hard_reset = True
        self.observation_space = gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, (*self._size, 3), np.uint8),
            "proprio": gym.spaces.Box(-np.inf, np.inf, (proprio_dim,), np.float32),
            "task": gym.spaces.Box(0.0, 1.0, (len(names),), np.float32)})
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.ACTION_DIM,), np.float32)

    # -- instructions ---------------------------------------------------------------------------
    @property
    def instruction_name(self) -> str:
        return self.instructions[self.instruction]

    @property
    def forward(self) -> str:
        """The forward (task) instruction: the first one."""
        return self.instructions[0]

    @property
    def backward(self) -> str:
        """The backward (reset) instruction: the second one."""
        return self.instructions[1]

    def set_instruction(self, instruction: str | int) -> None:
        """Switch to ``instruction`` (a name or an index) without resetting the state.

        Raises:
            ValueError: naming the instruction and the known ones.
        """
        self.instruction = task_index(instruction, self.instructions, kind="instruction")

    def _name(self, instruction: str | int | None) -> str:
        """The instruction's text (default: the current one); ValueError for an unknown one."""
        if instruction is None:
            return self.instruction_name
        return self.instructions[task_index(instruction, self.instructions, kind="instruction")]

    def success(self, instruction: str | int | None = None) -> bool:
        """The simulator's truth: is ``instruction`` (default the current one) achieved now?"""
        return bool(self._succeeds(self._name(instruction)))

    # -- gymnasium API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        options = options or {}
        if "instruction" in options:
            self.set_instruction(options["instruction"])
        hard = (bool(options.get("hard")) or seed is not None or self._needs_hard_reset
                or self.steps_since_hard_reset >= self.reset_every)
        if hard:
            self._real_reset()
            self.hard_resets += 1
            self.steps_since_hard_reset = 0
            self._needs_hard_reset = False
        return self._observation(), self._info(hard_reset=hard)

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.ACTION_DIM,) or not np.all(np.isfinite(action)):
            raise ValueError(f"{type(self).__name__}: action must be {self.ACTION_DIM} finite numbers, "
                             f"got {action!r}")
        self._advance(np.clip(action, -1.0, 1.0))
        self.steps_since_hard_reset += 1
        info = self._info(hard_reset=False)
        return self._observation(), float(info["success"]), False, False, info

    def _info(self, hard_reset: bool) -> dict[str, Any]:
        return {"success": self.success(), "instruction": self.instruction_name, "hard_reset": hard_reset,
                "state": self.state()}

    def _observation(self) -> dict[str, np.ndarray]:
        one_hot = np.zeros(len(self.instructions), np.float32)
        one_hot[self.instruction] = 1.0
        return {"image": self._image(), "proprio": self._proprio(), "task": one_hot}

    # -- the simulator's part -------------------------------------------------------------------
    def _real_reset(self) -> None:
        raise NotImplementedError

    def _advance(self, action: np.ndarray) -> None:
        raise NotImplementedError

    def _image(self) -> np.ndarray:
        raise NotImplementedError

    def _proprio(self) -> np.ndarray:
        raise NotImplementedError

    def state(self) -> np.ndarray:
        """The privileged state, (S,) float32 (``info["state"]``)."""
        raise NotImplementedError

    def _succeeds(self, instruction: str) -> bool:
        raise NotImplementedError

    def expert_action(self, instruction: str | int | None = None) -> np.ndarray:
        """(ACTION_DIM,) float32 in [-1, 1]: the privileged scripted expert's action for ``instruction``."""
        raise NotImplementedError


class PlanarPusherEnv(TopCameraRendering, ResetFreeEnv):
    """A reset-free pair in robokit's own MJCF: a planar pusher (2 velocity-controlled slide joints).

    Subclasses set ``SCENE`` (MJCF path), ``INSTRUCTIONS`` and implement :meth:`_start_state`,
    :meth:`_object_state`, :meth:`_succeeds` and :meth:`expert_action`.

    Args:
        reset_every: env steps between real resets (K; the paper's simulation uses 1,000).
        instructions: the instruction names observed in the one-hot, a subset of ``INSTRUCTIONS``
            in any order, forward and backward first (default: all of them).
        instruction: the instruction at the start (name or index; default the first).
        image_size: frame height and width in pixels.
        frame_skip: physics steps per env step (timestep 0.01 s).
        privileged_proprio: append the object state (``info["state"]``'s object part) to ``proprio``.
        render_mode: ``"rgb_array"`` makes ``render()`` return the observed frame.

    Raises:
        ValueError: a bad ``reset_every``, ``image_size`` or an unknown instruction, named.
    """

    SCENE: Path
    OBJECT_DIM: int = 2

    def __init__(self, reset_every: int = DEFAULT_RESET_EVERY, instructions: tuple[str, ...] | None = None,
                 instruction: str | int = 0, image_size: int = 64, frame_skip: int = 5,
                 privileged_proprio: bool = False, render_mode: str | None = None) -> None:
        import mujoco

        self.privileged_proprio = bool(privileged_proprio)
        self._init_contract(reset_every, instructions, instruction, image_size,
                            4 + (self.OBJECT_DIM if self.privileged_proprio else 0), render_mode)
        self.frame_skip = int(frame_skip)
        self._mujoco = mujoco
        self.model = mujoco.MjModel.from_xml_path(str(self.SCENE))
        self.data = mujoco.MjData(self.model)
        self._renderer = None
        self._pusher_q = [self.model.joint(j).qposadr[0] for j in ("pusher_x", "pusher_y")]
        self._pusher_v = [self.model.joint(j).dofadr[0] for j in ("pusher_x", "pusher_y")]

    def _real_reset(self) -> None:
        self._mujoco.mj_resetData(self.model, self.data)
        self._start_state()
        self._mujoco.mj_forward(self.model, self.data)

    def _advance(self, action: np.ndarray) -> None:
        self.data.ctrl[:] = action * MAX_SPEED
        self._mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)

    def _image(self) -> np.ndarray:
        return self.render_top()

    def _proprio(self) -> np.ndarray:
        """(4,) pusher xy [m] and velocity [m/s] (+ the object state with ``privileged_proprio``)."""
        parts = [self.pusher_xy(), self.data.qvel[self._pusher_v]]
        if self.privileged_proprio:
            parts.append(self._object_state())
        return np.concatenate(parts).astype(np.float32)

    def state(self) -> np.ndarray:
        """Privileged state (4 + OBJECT_DIM,): pusher xy, pusher velocity, object state."""
        return np.concatenate([self.pusher_xy(), self.data.qvel[self._pusher_v],
                               self._object_state()]).astype(np.float32)

    def render(self) -> np.ndarray | None:
        """The observed ``(S, S, 3)`` frame with ``render_mode="rgb_array"``, else None."""
        return super().render()

    def pusher_xy(self) -> np.ndarray:
        """(2,) the pusher's position [m] (its slide joints' positions: the body sits at the origin)."""
        return self.data.qpos[self._pusher_q].copy()

    def _set_pusher(self, xy: np.ndarray) -> None:
        self.data.qpos[self._pusher_q] = xy

    def _start_state(self) -> None:
        raise NotImplementedError

    def _object_state(self) -> np.ndarray:
        raise NotImplementedError


def move_towards(current: np.ndarray, target: np.ndarray, gain: float = 30.0) -> np.ndarray:
    """(2,) action in [-1, 1] moving the pusher from ``current`` to ``target`` (proportional, clipped)."""
    return np.clip(gain * (np.asarray(target) - current), -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------
class PushBackForthEnv(PlanarPusherEnv):
    """robokit/PushBackForth-v0: push the puck from the start zone to the green zone and back.

    Prior instructions push it to the red (north) and blue (south) zones. Success: the puck's
    centre within ``SUCCESS_RADIUS`` of the zone's centre. Object state (2,): puck xy [m].
    """

    SCENE = SCENES / "push_back_forth" / "push_back_forth.xml"
    INSTRUCTIONS = ("push the block to the green zone", "push the block back to the start zone",
                    "push the block to the red zone", "push the block to the blue zone")
    ZONE_OF = dict(zip(INSTRUCTIONS, ("zone_green", "zone_start", "zone_red", "zone_blue"), strict=True))
    SUCCESS_RADIUS = 0.03
    BLOCK_RADIUS, PUSHER_RADIUS = 0.025, 0.015

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: (axis, qpos address) of each of the block's slide joints (v1's block has only the x one)
        self._block = [(axis, self.model.joint(j).qposadr[0]) for axis, j in enumerate(("block_x", "block_y"))
                       if self._mujoco.mj_name2id(self.model, self._mujoco.mjtObj.mjOBJ_JOINT, j) >= 0]
        self.zones = {text: self.model.site(site).pos[:2].copy() for text, site in self.ZONE_OF.items()}

    def _start_state(self) -> None:
        """Puck in the start zone (+-1 cm), pusher anywhere at least 8 cm from the puck."""
        self._set_block(self.zones[self.INSTRUCTIONS[1]] + self.np_random.uniform(-0.01, 0.01, 2))
        self._place_pusher()

    def _place_pusher(self) -> None:
        """Pusher uniform in [-0.18, 0.18]^2 m, at least 8 cm from the block."""
        block = self.block_xy()
        while True:
            pusher = self.np_random.uniform(-0.18, 0.18, 2)
            if np.linalg.norm(pusher - block) > 0.08:
                break
        self._set_pusher(pusher)

    def _set_block(self, xy: np.ndarray) -> None:
        """Put the block's centre at ``xy`` [m] along its joints' axes (the others keep the body's place)."""
        offset = np.asarray(xy) - self.model.body("block").pos[:2]
        for axis, address in self._block:
            self.data.qpos[address] = offset[axis]

    def block_xy(self) -> np.ndarray:
        xy = self.model.body("block").pos[:2].copy()
        for axis, address in self._block:
            xy[axis] += self.data.qpos[address]
        return xy

    def _object_state(self) -> np.ndarray:
        return self.block_xy()

    def _succeeds(self, instruction: str) -> bool:
        return bool(np.linalg.norm(self.block_xy() - self.zones[instruction]) < self.SUCCESS_RADIUS)

    def expert_action(self, instruction: str | int | None = None) -> np.ndarray:
        """Go behind the puck (around it when needed), then push it along the line to the zone."""
        name = self._name(instruction)
        block, pusher, target = self.block_xy(), self.pusher_xy(), self.zones[name]
        offset = target - block
        distance = float(np.linalg.norm(offset))
        if distance < 0.008:
            return np.zeros(2, np.float32)
        along_dir = offset / distance
        side_dir = np.array([-along_dir[1], along_dir[0]])
        reach = self.BLOCK_RADIUS + self.PUSHER_RADIUS
        relative = pusher - block
        along, lateral = float(relative @ along_dir), float(relative @ side_dir)
        side = 1.0 if lateral >= 0 else -1.0
        clearance = reach + 0.015
        if along > -reach + 0.008:  # not behind the puck: step aside, then go back past it along its side
            if abs(lateral) < clearance - 0.003:
                return move_towards(pusher, block + side * side_dir * clearance + along_dir * along)
            return move_towards(pusher, block + side * side_dir * clearance - along_dir * (reach + 0.012))
        if abs(lateral) > 0.01:  # behind it: line up with the puck and the zone
            return move_towards(pusher, block - along_dir * (reach + 0.006))
        speed = min(1.0, distance / 0.04)  # push, slowing down near the zone
        correction = -lateral * side_dir * 30.0
        return np.clip(along_dir * speed + correction, -1.0, 1.0).astype(np.float32)


class PushBackForthTrackEnv(PushBackForthEnv):
    """robokit/PushBackForth-v1: push a square block along a track to the green end and back.

    v0's round puck slides freely in the plane, and a slightly off-centre push sends it off the line
    to the zone: BC on the privileged state fit v0's demos but reached the zone from 20% of real
    resets, nearly every failure a puck off the line (the drawer: 45%; v1: 82%; docs/robofume_envs.md).
    v1 keeps the push (the pusher must get behind the block, around it when needed, and push it)
    but puts a square block on one slide joint whose end stops are the start (yellow) and green
    zones, as the drawer's joint range ends at "open".
    Prior instructions: push it to the middle (blue) zone, put the pusher behind the block (on the
    start side, lined up to push it forward). Success of the zone instructions: the block's centre
    within ``SUCCESS_RADIUS`` of the zone's (at an end stop: within 3 cm of it). Object state (2,):
    block xy [m] (y is always 0).
    """

    SCENE = SCENES / "push_back_forth" / "push_back_forth_v1.xml"
    INSTRUCTIONS = ("push the block to the green end", "push the block back to the start end",
                    "push the block to the middle", "put the pusher behind the block")
    ZONE_OF = dict(zip(INSTRUCTIONS[:3], ("zone_green", "zone_start", "zone_middle"), strict=True))
    BEHIND = INSTRUCTIONS[3]

    def _start_state(self) -> None:
        """Block at the start end stop (up to 1 cm off it), pusher anywhere at least 8 cm from it."""
        self._set_block(self.zones[self.INSTRUCTIONS[1]] + np.array([self.np_random.uniform(0.0, 0.01), 0.0]))
        self._place_pusher()

    def _pusher_behind(self) -> bool:
        """The pusher on the block's start side, touching or nearly, lined up with its centre."""
        relative = self.pusher_xy() - self.block_xy()
        reach = self.BLOCK_RADIUS + self.PUSHER_RADIUS
        return bool(-(reach + 0.02) < relative[0] < -(reach - 0.008) and abs(relative[1]) < 0.015)

    def _succeeds(self, instruction: str) -> bool:
        return self._pusher_behind() if instruction == self.BEHIND else super()._succeeds(instruction)

    def expert_action(self, instruction: str | int | None = None) -> np.ndarray:
        """The v0 expert on the track; "behind": the forward expert's approach, stopping once there."""
        name = self._name(instruction)
        if name != self.BEHIND:
            return super().expert_action(name)
        if self._pusher_behind():
            return np.zeros(2, np.float32)
        return super().expert_action(self.INSTRUCTIONS[0])


class DrawerOpenCloseEnv(PlanarPusherEnv):
    """robokit/DrawerOpenClose-v0: open the drawer (pull it by its T-handle) and close it again.

    The drawer slides along y (0 = closed, 0.15 m = fully out); its handle is a bar 4 cm in
    front of the drawer on a central post, so the pusher can hook behind the bar from the side
    and pull. Prior instructions: open it halfway, reach the handle. Object state (2,):
    drawer opening [m] and its velocity [m/s].
    """

    SCENE = SCENES / "drawer_open_close" / "drawer_open_close.xml"
    INSTRUCTIONS = ("open the drawer", "close the drawer", "open the drawer halfway",
                    "put the hand behind the drawer handle")
    OPEN, CLOSED, HALFWAY = 0.12, 0.02, (0.06, 0.09)
    #: the gap between the drawer front (y = opening) and the bar, and the bar's far face
    GAP, BAR_END, BAR_HALF_WIDTH, PUSHER_RADIUS = 0.04, 0.05, 0.05, 0.012

    def _start_state(self) -> None:
        """Drawer closed (opening U(0, 0.01) m), pusher U([-0.18, 0.18] x [0.1, 0.3]) m."""
        self.data.qpos[self.model.joint("drawer").qposadr[0]] = self.np_random.uniform(0.0, 0.01)
        self._set_pusher(np.array([self.np_random.uniform(-0.18, 0.18), self.np_random.uniform(0.1, 0.3)]))

    def opening(self) -> float:
        """How far the drawer is out [m] (0 closed, 0.15 fully open)."""
        return float(self.data.qpos[self.model.joint("drawer").qposadr[0]])

    def _object_state(self) -> np.ndarray:
        return np.array([self.opening(), self.data.qvel[self.model.joint("drawer").dofadr[0]]])

    def _hand_in_handle(self) -> bool:
        x, y = self.pusher_xy()
        front = self.opening()
        return bool(abs(x) < self.BAR_HALF_WIDTH - 0.01 and front < y < front + self.GAP)

    def _succeeds(self, instruction: str) -> bool:
        opening = self.opening()
        return {self.INSTRUCTIONS[0]: opening >= self.OPEN, self.INSTRUCTIONS[1]: opening <= self.CLOSED,
                self.INSTRUCTIONS[2]: self.HALFWAY[0] <= opening <= self.HALFWAY[1],
                self.INSTRUCTIONS[3]: self._hand_in_handle()}[instruction]

    def expert_action(self, instruction: str | int | None = None) -> np.ndarray:
        """Hook behind the bar from the side and pull (open), or come from above and push (close)."""
        name = self._name(instruction)
        if self._succeeds(name):
            return np.zeros(2, np.float32)
        opening = self.opening()
        if name == self.INSTRUCTIONS[1] or (name == self.INSTRUCTIONS[2] and opening > self.HALFWAY[1]):
            return self._push_closed()
        if name == self.INSTRUCTIONS[3]:
            return self._pull_open(speed=0.0)
        if name == self.INSTRUCTIONS[2]:  # slow down near the middle of the halfway band (the drawer coasts)
            return self._pull_open(speed=float(np.clip((sum(self.HALFWAY) / 2 - opening) / 0.04, 0.15, 1.0)))
        return self._pull_open(speed=1.0)

    def _pull_open(self, speed: float) -> np.ndarray:
        """Hook into the gap behind the bar; there pull at ``speed`` (0: stay in the gap)."""
        pusher, front = self.pusher_xy(), self.opening()
        x, y = pusher
        side = 1.0 if x >= 0 else -1.0
        gap_y = front + self.GAP / 2
        clear_x = 0.08 + self.PUSHER_RADIUS + 0.01  # beside the drawer box and the bar
        inside = np.array([side * 0.025, gap_y])
        if abs(x) < clear_x - 0.005 and y < front + self.GAP:  # in the gap: go to the hook point, then pull
            if abs(x - inside[0]) < 0.008 and y > gap_y - 0.008 and speed > 0:
                return np.array([np.clip(30.0 * (inside[0] - x), -1, 1), speed], np.float32)
            return move_towards(pusher, inside)
        if abs(x) < clear_x - 0.005:  # above the bar: move out to the side first
            return move_towards(pusher, np.array([side * clear_x, y]))
        if abs(y - gap_y) > 0.006:  # beside the drawer: line up with the gap
            return move_towards(pusher, np.array([side * clear_x, gap_y]))
        return move_towards(pusher, inside)

    def _push_closed(self) -> np.ndarray:
        pusher, front = self.pusher_xy(), self.opening()
        x, y = pusher
        side = 1.0 if x >= 0 else -1.0
        clear_x = 0.08 + self.PUSHER_RADIUS + 0.01
        above = front + self.BAR_END + self.PUSHER_RADIUS
        if y < above - 0.002:  # not above the bar: leave the gap sideways, then go up beside the drawer
            if abs(x) < clear_x - 0.005:
                return move_towards(pusher, np.array([side * clear_x, y]))
            return move_towards(pusher, np.array([side * clear_x, above + 0.02]))
        if abs(x) > 0.01:  # above the bar: centre on it
            return move_towards(pusher, np.array([0.0, max(y, above + 0.005)]))
        return np.array([np.clip(30.0 * -x, -1, 1), -1.0], np.float32)
