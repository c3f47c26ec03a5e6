"""Success reward models (issue 14): one interface over a tiny CLIP (transformers), a small CNN
and the oracle; fit, save/load, the local-path loader, the P(yes) > P(no) rule, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robokit.robofume.reward import (
    CONFIG_FILE,
    OracleReward,
    RewardModelError,
    SuccessModel,
    build_success_model,
    by_label,
    confusion_table,
    fit_success_model,
    load_success_model,
)

INSTRUCTIONS = ["push the block to the green zone", "push the block back to the start"]
TINY = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
        "patch_size": 8, "projection_dim": 32}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy_frames(n: int, seed: int, size: int = 32) -> tuple[np.ndarray, list[str], np.ndarray]:
    """A trivially separable toy: success iff a bright green square is drawn (for either instruction)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (n, size, size, 3), dtype=np.uint8)
    labels = np.arange(n) % 2
    images[labels == 1, 8:24, 8:24, 1] = 250
    return images, [INSTRUCTIONS[(i // 2) % 2] for i in range(n)], labels


def make(kind: str, size: int = 32) -> SuccessModel:
    if kind == "vlm":
        pytest.importorskip("transformers")  # the robofume extra
        return build_success_model("vlm", instructions=INSTRUCTIONS, image_size=size, tiny=TINY, seed=0)
    return build_success_model("cnn", instructions=INSTRUCTIONS, image_size=(size, size), filters=8, layers=2)


@pytest.mark.parametrize("kind", ["vlm", "cnn"])
def test_interface_probabilities(kind):
    model = make(kind)
    assert isinstance(model, SuccessModel)
    images, texts, _ = toy_frames(6, seed=0)
    proba = model.predict_proba(images, texts)
    assert proba.shape == (6,) and np.all((proba >= 0) & (proba <= 1))
    one = model.predict_proba(images[0], [texts[0]])  # one (H, W, 3) image is a batch of one
    np.testing.assert_allclose(one, proba[:1], atol=1e-6)


@pytest.mark.parametrize("kind", ["vlm", "cnn"])
def test_fit_separates_a_trivially_separable_toy(kind):
    model = make(kind)
    positives, negatives = by_label(*toy_frames(32, seed=1))
    metrics = fit_success_model(model, positives, negatives, epochs=25, batch_size=16, lr=1e-3, seed=0,
                                augment_pad=0)
    assert metrics["loss_last"] < 0.5 * metrics["loss_first"]
    table = confusion_table(model, *toy_frames(16, seed=2))  # fresh frames
    assert table["accuracy"] == 1.0 and table["fp_rate"] == 0.0 and table["fn_rate"] == 0.0
    assert table["n"] == 16 and table["tp"] + table["fn"] == 8


def test_fit_is_seeded():
    positives, negatives = by_label(*toy_frames(16, seed=3))
    runs = []
    for _ in range(2):
        torch.manual_seed(0)  # the model's initial weights
        model = make("cnn")
        runs.append(fit_success_model(model, positives, negatives, epochs=2, batch_size=8, seed=5)["losses"])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("kind", ["vlm", "cnn"])
def test_save_load_round_trip_gives_identical_probabilities(kind, tmp_path):
    model = make(kind)
    positives, negatives = by_label(*toy_frames(8, seed=4))
    fit_success_model(model, positives, negatives, epochs=1, batch_size=8)
    model.save(tmp_path / "model")
    loaded = load_success_model(tmp_path / "model")
    assert type(loaded) is type(model)
    images, texts, _ = toy_frames(10, seed=5)
    np.testing.assert_array_equal(loaded.predict_proba(images, texts), model.predict_proba(images, texts))
    config = json.loads((tmp_path / "model" / CONFIG_FILE).read_text())
    assert config["kind"] == kind and config["instructions"] == INSTRUCTIONS
    if kind == "vlm":  # the config-built CLIP centres its frames: the mean frame travels with it
        assert config["center_frames"] and (tmp_path / "model" / "mean_frame.npy").exists()
        np.testing.assert_array_equal(loaded.mean_frame, model.mean_frame)


def test_vlm_mean_frame_of_the_wrong_size_is_refused(tmp_path):
    model = make("vlm")
    fit_success_model(model, *by_label(*toy_frames(8, seed=4)), epochs=1, batch_size=8)
    model.save(tmp_path / "model")
    np.save(tmp_path / "model" / "mean_frame.npy", np.zeros((16, 16, 3), np.float32))
    with pytest.raises(RewardModelError, match=r"mean_frame.npy: mean frame of shape \(16, 16, 3\)"):
        load_success_model(tmp_path / "model")


def test_vlm_folder_is_a_from_pretrained_folder(tmp_path):
    """The saved vlm folder is a real Hugging Face folder: transformers' own from_pretrained reads
    the model and the tokenizer (no robokit code involved) with local_files_only."""
    pytest.importorskip("transformers")
    from transformers import AutoTokenizer, CLIPModel

    model = make("vlm")
    model.save(tmp_path / "vlm")
    clip = CLIPModel.from_pretrained(tmp_path / "vlm", local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "vlm", local_files_only=True)
    for name, tensor in model.network.state_dict().items():
        torch.testing.assert_close(clip.state_dict()[name], tensor, rtol=0, atol=0)
    ids = tokenizer(["is the task push the block back to the start done? yes"])["input_ids"][0]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.unk_token_id not in ids


def test_local_clip_folder_loads_as_untrained_vlm(tmp_path):
    """A plain CLIP folder (as a user would download openai/clip-vit-base-patch32 elsewhere):
    saved here by transformers itself, then loaded by path, without robokit_reward.json."""
    pytest.importorskip("transformers")
    from robokit.robofume.vlm import VLMSuccessModel, tiny_clip, train_word_tokenizer

    tokenizer = train_word_tokenizer(["is the task open the drawer done? yes no"])
    clip = tiny_clip(tokenizer, image_size=32, max_words=12, tiny=TINY)
    clip.save_pretrained(tmp_path / "clip")
    tokenizer.save_pretrained(tmp_path / "clip")
    (tmp_path / "clip" / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3,
                                                                            "image_std": [0.25] * 3}))
    model = load_success_model(tmp_path / "clip")
    assert isinstance(model, VLMSuccessModel) and model.instructions == ()  # any instruction
    assert model.image_mean == [0.5] * 3 and model.image_std == [0.25] * 3
    model.image_size = (32, 32)
    proba = model.predict_proba(np.zeros((2, 32, 32, 3), np.uint8), ["open the drawer"] * 2)
    assert proba.shape == (2,)
    again = build_success_model("vlm", pretrained=tmp_path / "clip", image_size=32)
    np.testing.assert_allclose(again.predict_proba(np.zeros((1, 32, 32, 3), np.uint8), ["open the drawer"]),
                               proba[:1], atol=1e-6)


def test_success_is_p_yes_greater_than_p_no():
    """P(success) is the two-way softmax of the image's CLIP logits against the yes and no
    prompts, so P >= 0.5 exactly when logit(yes) > logit(no)."""
    model = make("vlm")
    images, texts, _ = toy_frames(8, seed=6)
    with torch.no_grad():
        logits = model.prompt_logits(torch.from_numpy(images), texts)
    proba = model.predict_proba(images, texts)
    np.testing.assert_allclose(proba, torch.softmax(logits, dim=-1)[:, 0].double().numpy(), atol=1e-6)
    np.testing.assert_array_equal(proba >= 0.5, (logits[:, 0] > logits[:, 1]).numpy())


def test_vlm_answers_depend_on_the_instruction():
    model = make("vlm")
    images, _, _ = toy_frames(4, seed=7)
    first = model.predict_proba(images, [INSTRUCTIONS[0]] * 4)
    second = model.predict_proba(images, [INSTRUCTIONS[1]] * 4)
    assert not np.allclose(first, second)


def test_oracle_reads_the_simulator_truth(tmp_path):
    oracle = build_success_model("oracle")
    assert oracle.from_info({"success": True}) == 1.0 and oracle.from_info({"success": np.bool_(False)}) == 0.0
    with pytest.raises(RewardModelError, match="info\\['success'\\]"):
        oracle.from_info({"distance": 0.1})
    with pytest.raises(RewardModelError, match="from_info"):
        oracle.predict_proba(np.zeros((1, 32, 32, 3), np.uint8), [INSTRUCTIONS[0]])
    oracle.save(tmp_path / "oracle")
    assert isinstance(load_success_model(tmp_path / "oracle"), OracleReward)


@pytest.mark.parametrize("kind", ["vlm", "cnn"])
def test_bad_input_is_one_clear_error(kind, tmp_path):
    model = make(kind)
    good = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(RewardModelError, match=r"images of shape \(64, 64, 3\).*\(B, 32, 32, 3\)"):
        model.predict_proba(np.zeros((2, 64, 64, 3), np.uint8), INSTRUCTIONS)
    with pytest.raises(RewardModelError, match="uint8"):
        model.predict_proba(good.astype(np.float32), INSTRUCTIONS)
    with pytest.raises(RewardModelError, match="unknown instruction 'open the drawer'"):
        model.predict_proba(good, [INSTRUCTIONS[0], "open the drawer"])
    with pytest.raises(RewardModelError, match="2 images but 1 instructions"):
        model.predict_proba(good, INSTRUCTIONS[:1])
    with pytest.raises(RewardModelError, match="needs both classes"):
        fit_success_model(model, (good, INSTRUCTIONS), (good[:0], []), epochs=1)


def test_bad_paths_and_kinds(tmp_path):
    with pytest.raises(RewardModelError, match="no such reward model directory"):
        load_success_model(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RewardModelError, match="neither robokit_reward.json"):
        load_success_model(tmp_path / "empty")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / CONFIG_FILE).write_text('{"kind": "svm"}')
    with pytest.raises(RewardModelError, match="key 'kind': unknown reward model kind 'svm'"):
        load_success_model(tmp_path / "odd")
    with pytest.raises(RewardModelError, match="unknown reward model kind 'svm'"):
        build_success_model("svm")
    pytest.importorskip("transformers")
    with pytest.raises(RewardModelError, match="needs its instructions"):
        build_success_model("vlm")
    with pytest.raises(RewardModelError, match="no config.json"):
        build_success_model("vlm", pretrained=tmp_path / "empty")


def test_cnn_initial_weights_follow_the_seed_and_leave_the_global_generator_alone():
    """The CNN classifier's initial weights were unseeded (two benchmark runs of one seed differed)."""
    def weights(seed):
        model = build_success_model("cnn", instructions=INSTRUCTIONS, image_size=(32, 32), filters=8, layers=2, seed=seed)
        return torch.cat([p.detach().flatten() for p in model.network.parameters()])

    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = weights(0)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's generator did not move
    torch.manual_seed(999)
    assert torch.equal(weights(0), first)
    assert not torch.equal(weights(1), first)
