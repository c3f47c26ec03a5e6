# robokit: two commands on a fresh machine with python3, pip and git:
#   make demo   -> .venv + runtime extras, then the end-to-end demo (outputs under runs/)
#   make test   -> .venv + runtime and dev extras, then the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
EXTRAS_RUN := sim,lidar,ros,logging
EXTRAS_DEV := $(EXTRAS_RUN),distributed,robofume,dev
PYTEST_ARGS ?=
# System libraries pip cannot provide: libusb for open3d, Mesa EGL for offscreen
# MuJoCo rendering, ROS 1 (roscore + rospy) for the live-bridge tests.
APT_PACKAGES := libusb-1.0-0 libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 libopengl0 \
                ros-core python3-rospy python3-sensor-msgs python3-geometry-msgs python3-std-msgs

export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true

.PHONY: demo test lint bench gpu-check gpu-install system-deps install install-dev robosuite d3rlpy bench-peers clean

demo: install
	$(PY) -m robokit demo

test: install-dev
	@set +e; $(PY) -m pytest $(PYTEST_ARGS); code=$$?; \
	if [ $$code -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$code

lint: install-dev
	$(PY) -m ruff check robokit tests benchmarks

bench: install-dev
	@for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script --quick || exit 1; done

install: system-deps $(VENV)/.installed-run
install-dev: system-deps $(VENV)/.installed-dev $(VENV)/.installed-robosuite $(VENV)/.installed-d3rlpy \
             $(VENV)/.installed-bench

# A venv whose creation was interrupted (no stamp) is removed and made again.
$(VENV)/.created:
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools
	touch $@

$(VENV)/.installed-run: pyproject.toml constraints.txt | $(VENV)/.created
	$(PIP) install -c constraints.txt -e ".[$(EXTRAS_RUN)]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(VENV)/.created
	$(PIP) install -c constraints.txt -e ".[$(EXTRAS_DEV)]"
	touch $@ $(VENV)/.installed-run

# robosuite 1.5.2 pins mink==0.0.5 (numpy<2); robokit needs numpy 2 for minari 0.5.4.
# Install robosuite without that pin; mink only serves robosuite's whole-body IK,
# which robokit does not use (robosuite's OSC controllers and Lift/Stack envs run).
robosuite: $(VENV)/.installed-robosuite

$(VENV)/.installed-robosuite: constraints.txt | $(VENV)/.created
	$(PIP) install -c constraints.txt opencv-python-headless pynput "qpsolvers[quadprog]"
	$(PIP) install -c constraints.txt --no-deps robosuite==1.5.2
	touch $@

# GPU check: its own venv (.venv-gpu) with the `cuda` extra (spconv-cu126) instead of the CPU
# spconv. --system-site-packages lets a machine's own CUDA build of torch serve; without one,
# pip installs torch==$(TORCH_VERSION) from PyPI (a CUDA build there). Then the gpu-marked tests
# and the CUDA benchmarks. Figures: docs/gpu.md.
#
# Offline (a GPU machine with no package index, such as a lent cloud box): GPU_WHEELS=<folder>
# holding spconv-cu126, cumm-cu126 and whatever else the machine lacks. They install with
# --no-index --no-deps into GPU_SITE, and robokit runs from this checkout on PYTHONPATH beside
# the machine's own CUDA torch. GPU_TESTS then names the gpu test files, because collecting the
# whole suite imports packages (mujoco, ray, ...) such a machine need not have.
GPU_VENV ?= .venv-gpu
GPU_WHEELS ?=
GPU_SITE ?= /tmp/robokit-gpu-site
TORCH_VERSION := $(shell sed -n 's/^torch==//p' constraints.txt)
ifeq ($(GPU_WHEELS),)
GPU_PY := $(GPU_VENV)/bin/python
GPU_TESTS ?=
else
GPU_PY := PYTHONPATH=$(GPU_SITE):$(CURDIR) $(PYTHON)
GPU_TESTS ?= tests/gpu tests/pointcloud/test_spconv_cpu.py
endif
gpu-check: gpu-install
	$(GPU_PY) -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
	  torch.cuda.get_device_name() if torch.cuda.is_available() else 'NO GPU'); \
	  sys.exit(not torch.cuda.is_available())"
	$(GPU_PY) -c "import spconv, cumm; print('spconv', spconv.__version__, 'cumm', cumm.__version__)"
	$(GPU_PY) -m pytest -m gpu -ra -p no:cacheprovider $(GPU_TESTS)
	$(GPU_PY) benchmarks/sac_update.py --quick --device cuda
	$(GPU_PY) benchmarks/voxelize.py --quick --device cuda

ifeq ($(GPU_WHEELS),)
gpu-install:
	test -x $(GPU_PY) || $(PYTHON) -m venv --system-site-packages $(GPU_VENV)
	grep -v -E '^(torch|spconv|cumm)==' constraints.txt > $(GPU_VENV)/constraints-gpu.txt
	$(GPU_PY) -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null \
	  || $(GPU_PY) -m pip install "torch==$(TORCH_VERSION)"
	$(GPU_PY) -m pip install -c $(GPU_VENV)/constraints-gpu.txt -e ".[cuda,sim,dev]"
else
gpu-install:
	$(PYTHON) -m pip install -q --no-index --no-deps --no-compile --upgrade --target $(GPU_SITE) \
	  $(GPU_WHEELS)/*.whl
endif

# d3rlpy 2.8.1 (the peer of benchmarks/iql_vs_d3rlpy.py and cql_update.py) pins gymnasium==1.0.0;
# robokit runs gymnasium 1.4.0. Install d3rlpy without its pins: its other needs (gym 0.26.2,
# structlog, colorama, dataclasses-json, scikit-learn) come with the dev extra, and torch, numpy
# and gymnasium stay at robokit's versions (checked: d3rlpy's IQL and CQL train and evaluate).
d3rlpy: $(VENV)/.installed-d3rlpy

$(VENV)/.installed-d3rlpy: constraints.txt $(VENV)/.installed-dev
	$(PIP) install -c constraints.txt --no-deps d3rlpy==2.8.1
	touch $@

# The benchmark peers (the `bench` extra: TorchRL 0.14.1 + tensordict 0.14.3, Stable-Baselines3
# 2.9.2), pinned in pyproject.toml and constraints.txt; constraints.txt keeps torch at robokit's
# version (both accept it, checked from their metadata).
bench-peers: $(VENV)/.installed-bench

$(VENV)/.installed-bench: pyproject.toml constraints.txt | $(VENV)/.created
	$(PIP) install -c constraints.txt -e ".[bench]"
	touch $@

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing system packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	  echo "NOTE: not root; install these system packages yourself for full features:" $$missing; \
	fi

clean:
	rm -rf $(VENV) runs .pytest_cache
