"""The training pipeline of the bundled model, in miniature: data, tokenizer, split, shards, a few
steps of the real loop on a tiny shape, export, and loading the export with the recognizer."""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.forms import FONT_CACHE
from training.__main__ import _style_weight
from training.charset import ALPHABET, build_tokenizer, in_alphabet, normalise_text
from training.data import VALIDATION_SETS, DataPlan, synthetic_shards
from training.fonts import HELDOUT_FONTS, TRAINING_FONTS, fetch_fonts
from training.real_lines import DEFAULT_REAL_DIR, is_validation_group, load_real_lines
from training.render import Augmentation, fit_text_to_font, render_line
from training.shards import (
    LINE_HEIGHT_FILE,
    _family_picker,
    load_shard,
    mark_line_height,
    style_shares,
    synthetic_samples,
    write_shard,
)
from training.texts import FormTextGenerator


def test_form_text_is_varied_and_writable() -> None:
    generator = FormTextGenerator(seed=3)
    lines = [generator.line() for _ in range(500)]
    assert len(set(lines)) > 450
    assert all(0 < len(line) <= 80 for line in lines)
    written = [normalise_text(line) for line in lines]
    assert sum(in_alphabet(line) for line in written) > 480
    assert any(c.isdigit() for line in lines for c in line) and any("@" in line for line in lines)


def test_a_later_first_shard_asks_for_shards_never_rendered() -> None:
    """Shard i is rendered from seed 1000 + i: a continuation starting after the shards an earlier
    run used renders other lines, as many as asked for."""
    plan = DataPlan(Path("unused"), synthetic_lines=25_000, height=64, width=512)
    assert list(synthetic_shards(plan)) == [0, 1, 2]
    later = DataPlan(Path("unused"), synthetic_lines=25_000, height=64, width=512, first_shard=4)
    assert list(synthetic_shards(later)) == [4, 5, 6]


def test_held_out_fonts_are_never_trained_on() -> None:
    assert not set(HELDOUT_FONTS) & set(TRAINING_FONTS)
    assert len(TRAINING_FONTS) + len(HELDOUT_FONTS) >= 180  # every DESIGN.md family npm serves


def test_the_tokenizer_writes_every_character_of_the_alphabet() -> None:
    tokenizer = build_tokenizer()
    ids = tokenizer(ALPHABET).input_ids
    assert len(ids) == len(ALPHABET) + 1 and tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == ALPHABET
    assert normalise_text("l\u2019\u00e9t\u00e9 \u00ab oui \u00bb\u00a0 ") == 'l\'été " oui "'


def test_rendered_lines_are_model_height_in_every_font() -> None:
    fonts = fetch_fonts(FONT_CACHE, ["caveat", "amatic-sc"])
    rng = random.Random(1)
    for font in fonts:
        text = fit_text_to_font("Jane Doe 12", font)
        assert text == ("JANE DOE 12" if font.caps_only else "Jane Doe 12")
        pixels = render_line(text, font, rng, 40, Augmentation(1.0))
        assert pixels.dtype == np.uint8 and pixels.shape[0] == 40 and pixels.shape[1] > 40
        assert pixels.min() < 120 and pixels.max() > 150  # ink on paper


@pytest.mark.skipif(
    not (DEFAULT_REAL_DIR / "manifest.tsv").exists(), reason="the real handwriting data set is not on this machine"
)
def test_the_real_split_is_writer_disjoint() -> None:
    train, validation, skipped = load_real_lines()
    assert len(validation) > 500 and len(train) > 5 * len(validation)
    train_groups = {(line.dataset, line.group) for line in train}
    validation_groups = {(line.dataset, line.group) for line in validation}
    assert not train_groups & validation_groups
    assert set(Counter(line.dataset for line in validation)) == {
        "copiste_dun_jour",
        "testaments_de_poilus",
        "cremma_mss_18",
        "cremma_mss_19",
        "peraire",
    }
    assert all(in_alphabet(line.text) and len(line.text) > 2 for line in train + validation)
    assert skipped["markup"] > 0
    assert is_validation_group("cremma_mss_18", "le-sallon-de-1767-denis-diderot")


def _tiny_shape():  # noqa: ANN202 - a training.model.ModelShape (torch is imported only by the tests using it)
    """A model shape that trains in seconds on 40 x 128 lines."""
    from training.model import ModelShape

    return ModelShape(
        height=40,
        width=128,
        patch_width=4,
        hidden=32,
        encoder_layers=1,
        encoder_heads=2,
        encoder_ffn=64,
        decoder_layers=1,
        decoder_heads=2,
        decoder_ffn=64,
        max_target_tokens=24,
    )


def _tiny_shards(root: Path, training_lines: int, validation_lines: int, height: int = 40) -> Path:
    """A synthetic training shard (one font) and the validation sets (one held-out font) under ``root``."""
    shards = root / "shards"
    mark_line_height(shards, height)
    fonts = fetch_fonts(FONT_CACHE, ["caveat"])
    write_shard(shards / "synth-0000", synthetic_samples(fonts, training_lines, seed=1, height=height, width=128))
    heldout = fetch_fonts(FONT_CACHE, [HELDOUT_FONTS[0]])
    for name in VALIDATION_SETS:
        write_shard(shards / name, synthetic_samples(heldout, validation_lines, seed=2, height=height, width=128))
    return shards


def test_a_tiny_run_trains_exports_and_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from training import train as training
    from training.export import export_checkpoint
    from worker.recognizer import Recognizer

    shape = _tiny_shape()
    shards = _tiny_shards(tmp_path, training_lines=64, validation_lines=8)
    assert len(load_shard(shards / "synth-0000")) == 64
    config = training.TrainConfig(
        root=tmp_path, run="tiny", shape=shape, hours=0.004, batch_size=8, eval_every=5, eval_lines=8, threads=1
    )
    training.train(config)
    assert (config.run_dir / "best.pt").exists() and (config.run_dir / "metrics.jsonl").read_text().strip()
    out = tmp_path / "exported"
    export_checkpoint(config.run_dir / "best.pt", out)
    assert (out / "handler.py").exists() and (out / "model.safetensors").stat().st_mode & 0o044
    recognizer = Recognizer.load(out, device="cpu", max_new_tokens=8)
    assert recognizer.fit_pad is not None and recognizer.input_size == (40, 128)
    assert recognizer.ctc is not None and recognizer.ctc.weight == 0.5, "the CTC head ships and joint decoding is on"
    assert Recognizer.load(out, device="cpu", ctc_weight=0).ctc is None
    lines = [Image.fromarray(load_shard(shards / "synth-0000").image(i)) for i in range(3)]
    together = recognizer.recognize(lines)
    alone = [recognizer.recognize([line])[0] for line in lines]
    assert [r.text for r in together] == [r.text for r in alone]  # the CTC scorer keeps rows independent
    assert all(r.embedding.shape == (32,) for r in together)
    resumed = training.TrainConfig(
        root=tmp_path, run="tiny", shape=shape, hours=0.006, batch_size=8, eval_every=5, eval_lines=8, threads=1
    )
    training.train(resumed)  # picks up last.pt and carries on the same schedule
    assert torch.load(config.run_dir / "last.pt", weights_only=False)["state"]["step"] > 5
    # A new machine without checkpoints continues from the exported folder, CTC head included.
    continued = training.TrainConfig(
        root=tmp_path,
        run="continued",
        shape=shape,
        hours=0.001,
        batch_size=8,
        eval_every=5,
        eval_lines=8,
        threads=1,
        init_from=out,
        lr=0.0,
        clock="cpu",
    )  # lr 0: steps that change nothing; the budget counted in CPU seconds
    training.train(continued)
    saved = torch.load(continued.run_dir / "last.pt", weights_only=False)
    exported_head = recognizer.ctc.projection.weight.float()
    assert saved["state"]["step"] >= 1
    assert torch.allclose(saved["ctc_head"]["projection.weight"], exported_head, atol=1e-3), (
        "the head was restored, not re-initialised"
    )
    # A taller input, continued from the 40 px export: refused on shards made for 40 px, trained
    # on shards made for it, with the patch projection resized and everything else carried over.
    from dataclasses import replace

    from training.model import PATCH_PROJECTION

    taller = replace(continued, run="taller", shape=replace(shape, height=48))
    with pytest.raises(ValueError, match="--height 48"):
        training.train(taller)
    (shards / LINE_HEIGHT_FILE).unlink()  # shards made before the height was recorded were 40 px
    with pytest.raises(ValueError, match="--height 48"):
        training.train(taller)
    with pytest.raises(ValueError, match="fitted to 40 px, not 48"):
        mark_line_height(shards, 48)
    _tiny_shards(tmp_path / "tall", training_lines=16, validation_lines=4, height=48)
    training.train(replace(taller, root=tmp_path / "tall"))
    saved = torch.load(tmp_path / "tall" / "runs" / "taller" / "last.pt", weights_only=False)
    assert saved["model"][PATCH_PROJECTION].shape[2] == 48
    with pytest.raises(ValueError, match="another shape"):  # its checkpoint resumed with another shape
        training.train(replace(taller, root=tmp_path / "tall", shape=replace(shape, height=48, decoder_ffn=128)))
    assert torch.allclose(saved["ctc_head"]["projection.weight"], exported_head, atol=1e-3)
    export_checkpoint(tmp_path / "tall" / "runs" / "taller" / "last.pt", tmp_path / "tall-exported")
    assert Recognizer.load(tmp_path / "tall-exported", device="cpu").input_size == (48, 128)


def test_a_taller_input_starts_from_what_the_model_learned() -> None:
    """The patch projection resized to a taller line gives about the patch vectors it gave before,
    for a line scaled to the new height; a projection that differs otherwise is refused."""
    from dataclasses import replace

    import torch

    from training.model import PATCH_PROJECTION, build_model, load_resized

    torch.manual_seed(0)
    low, tall = build_model(_tiny_shape(), 60), build_model(replace(_tiny_shape(), height=80), 60)
    assert load_resized(tall, low.state_dict())
    tall_state = tall.state_dict()
    assert all(
        torch.equal(value, tall_state[name]) for name, value in low.state_dict().items() if name != PATCH_PROJECTION
    )
    # a line whose ink changes smoothly down each column, at 40 px and at 80 px
    rows = torch.linspace(0, 1, 40)[None, None, :, None]
    line = (torch.sin(6 * rows) * torch.cos(torch.linspace(0, 9, 128))[None, None, None, :]).expand(1, 3, 40, 128)
    taller_line = torch.nn.functional.interpolate(line, size=(80, 128), mode="bilinear", align_corners=False)
    with torch.no_grad():
        before = low.encoder.embeddings.patch_embeddings(line)
        after = tall.encoder.embeddings.patch_embeddings(taller_line)
    assert torch.linalg.norm(after - before) < 0.05 * torch.linalg.norm(before)
    with pytest.raises(ValueError, match="beyond their height"):
        load_resized(build_model(replace(_tiny_shape(), patch_width=8), 60), low.state_dict())


def test_the_cpu_clock_counts_work_not_waiting(tmp_path: Path) -> None:
    """``clock="cpu"`` budgets a run by the CPU seconds it used, so runs sharing a busy machine
    (capacity comparisons) get equal budgets; waiting for the CPU does not count."""
    import time

    from training.train import TrainConfig

    cpu, wall = TrainConfig(root=tmp_path, clock="cpu").seconds, TrainConfig(root=tmp_path).seconds
    cpu_start, wall_start = cpu(), wall()
    time.sleep(0.3)
    assert wall() - wall_start >= 0.3 and cpu() - cpu_start < 0.1
    with pytest.raises(ValueError, match="clock"):
        TrainConfig(root=tmp_path, clock="gpu").seconds()
    with pytest.raises(ValueError, match="wall clock"):
        TrainConfig(root=tmp_path, clock="cpu", device="cuda").seconds()


@pytest.mark.parametrize(("capability", "native"), [("AVX2", False), ("DEFAULT", False), ("AVX512", True)])
def test_bf16_is_used_only_where_the_cpu_computes_it_natively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capability: str, native: bool
) -> None:
    """An AVX2-only CPU emulates bf16 (a step took over 20 times longer): training there stays in
    fp32 unless told otherwise; an explicit choice always wins."""
    import torch

    from training.train import TrainConfig

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert TrainConfig(root=tmp_path, device="cpu").use_bf16 is native
    assert TrainConfig(root=tmp_path, device="cpu", bf16=True).use_bf16 is True
    assert TrainConfig(root=tmp_path, device="cpu", bf16=False).use_bf16 is False


def test_batches_drawn_ahead_in_a_thread_train_the_same_loop(tmp_path: Path) -> None:
    """The GPU path (the next batch drawn while the device runs a step), forced on the CPU."""
    import json

    from training import train as training

    shape = _tiny_shape()
    _tiny_shards(tmp_path, training_lines=32, validation_lines=4)
    config = training.TrainConfig(
        root=tmp_path, run="ahead", shape=shape, hours=0.001, batch_size=4, eval_every=3, eval_lines=4, prefetch=True
    )
    on_the_cpu = training.TrainConfig(root=tmp_path, device="cpu")
    assert config.prefetch_batches and not on_the_cpu.prefetch_batches  # the CPU's default: off
    training.train(config)
    records = [json.loads(line) for line in (config.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert records and all(r["lines"] == 4 * r["step"] for r in records) and records[-1]["step"] >= 3


def test_batches_are_grey_until_they_reach_the_device() -> None:
    """One channel is assembled and copied; the model's three identical channels are a view made
    on the device, with the recognizer's padding (the image mean) beyond each line."""
    import torch

    from training.batches import IGNORE_INDEX, Encoder, make_batch
    from worker.line_image import pad_line

    encoder = Encoder(build_tokenizer().get_vocab(), max_tokens=24)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, width), dtype=np.uint8) for width in (60, 100)]
    batch = make_batch(images, ["ab", "Jane"], encoder, height=40, width=128)
    assert tuple(batch.pixel_values.shape) == (2, 1, 40, 128)
    on_device = batch.to(torch.device("cpu"))
    assert tuple(on_device.pixel_values.shape) == (2, 3, 40, 128)
    assert torch.equal(on_device.pixel_values[:, 0], on_device.pixel_values[:, 2])
    assert np.array_equal(on_device.pixel_values[0, 1].numpy(), pad_line(images[0], 40, 128, "mean")[0])
    assert batch.labels.dtype == torch.long and batch.labels.shape == (2, 5)
    assert batch.labels[0, 3:].tolist() == [IGNORE_INDEX, IGNORE_INDEX]


def test_style_weights_draw_a_group_more_often_and_leave_unweighted_draws_as_they_were() -> None:
    """``data --style-weight cursive=3`` draws each cursive family three times as often; without
    weights the draw is ``rng.choice`` as it always was, so earlier seeds render the same lines."""
    families = ["caveat", "dancing-script", "pacifico", "kalam"]  # print, cursive, cursive, print
    plain = random.Random(5)
    expected = [plain.choice(families) for _ in range(50)]
    for neutral in (None, {}, {"cursive": 1.0, "print": 1.0}):
        pick_neutral = _family_picker(random.Random(5), families, neutral)
        assert [pick_neutral() for _ in range(50)] == expected
    assert style_shares({"cursive": 3.0}, families) == pytest.approx(
        {"print": 0.25, "school": 0, "cursive": 0.75, "marker": 0, "caps-only": 0}
    )
    pick = _family_picker(random.Random(5), families, {"cursive": 3.0})
    counts = Counter(pick() for _ in range(8_000))
    cursive = counts["dancing-script"] + counts["pacifico"]
    assert 0.70 < cursive / 8_000 < 0.80  # 6 of 8 weight units
    only_print = _family_picker(random.Random(5), families, {"cursive": 0.0})
    assert {only_print() for _ in range(200)} == {"caveat", "kalam"}
    with pytest.raises(ValueError, match="unknown style groups"):
        _family_picker(random.Random(5), families, {"gothic": 2.0})
    with pytest.raises(ValueError, match="no family"):
        _family_picker(random.Random(5), families, {"print": 0.0, "cursive": 0.0})
    with pytest.raises(ValueError, match="finite"):
        _family_picker(random.Random(5), families, {"cursive": float("inf")})
    assert _style_weight("cursive=2.5") == ("cursive", 2.5)
    for bad in ("gothic=2", "cursive=much", "cursive=-1", "cursive=nan", "cursive=inf"):
        with pytest.raises(argparse.ArgumentTypeError):
            _style_weight(bad)


def test_averaged_weights_are_the_mean_and_identical_snapshots_average_to_themselves() -> None:
    import torch

    from training.model import build_model
    from training.snapshots import average_states

    torch.manual_seed(0)
    state = build_model(_tiny_shape(), 60).state_dict()
    same = average_states([state, state, state])
    assert same.keys() == state.keys()
    assert all(torch.equal(same[name], tensor) for name, tensor in state.items())
    other = build_model(_tiny_shape(), 60).state_dict()
    mean = average_states([state, other])
    name = next(name for name, tensor in state.items() if tensor.is_floating_point() and tensor.dim() == 2)
    assert torch.allclose(mean[name], (state[name] + other[name]) / 2)
    half = {"w": torch.ones(2, dtype=torch.float16)}
    assert average_states([half, {"w": torch.zeros(2, dtype=torch.float16)}])["w"].dtype == torch.float16
    index = {"ids": torch.arange(3)}
    assert torch.equal(average_states([index, index])["ids"], torch.arange(3))
    with pytest.raises(ValueError, match="differs"):
        average_states([index, {"ids": torch.arange(1, 4)}])
    with pytest.raises(ValueError, match="different tensors"):
        average_states([state, {**state, "extra": torch.zeros(1)}])
    with pytest.raises(ValueError, match="nothing"):
        average_states([])


def test_a_run_keeps_its_last_snapshots_the_final_step_among_them(tmp_path: Path) -> None:
    from dataclasses import replace

    import torch

    from training import train as training
    from training.snapshots import snapshot_paths

    _tiny_shards(tmp_path, training_lines=32, validation_lines=4)
    config = training.TrainConfig(
        root=tmp_path,
        run="snap",
        shape=_tiny_shape(),
        hours=0.002,
        batch_size=4,
        eval_every=100,
        eval_lines=4,
        threads=1,
        snapshot_every=2,
        keep_snapshots=3,
    )
    training.train(config)
    last_step = torch.load(config.run_dir / "last.pt", weights_only=False)["state"]["step"]
    expected = sorted({*range(2, last_step + 1, 2), last_step})[-3:]
    paths = snapshot_paths(config.run_dir)
    assert [torch.load(path, weights_only=False)["state"]["step"] for path in paths] == expected
    assert "optimizer" not in torch.load(paths[-1], weights_only=False), "weights only"
    with pytest.raises(ValueError, match="keep_snapshots"):
        training.train(replace(config, keep_snapshots=0))


def test_snapshots_are_ordered_by_step_and_a_resumed_run_drops_the_abandoned_ones(tmp_path: Path) -> None:
    import torch

    from training.snapshots import discard_snapshots_after, save_snapshot, snapshot_paths

    def snapshot(step: int) -> dict:
        return {"model": {}, "ctc_head": {}, "state": {"step": step}, "shape": {}}

    for step in (9_999_999, 20_000_000, 4, 6):
        save_snapshot(tmp_path, snapshot(step), keep=3)
    kept = [torch.load(path, weights_only=False)["state"]["step"] for path in snapshot_paths(tmp_path)]
    assert kept == [6, 9_999_999, 20_000_000], "the oldest (step 4) pruned, not the one whose name sorts first"
    (tmp_path / "snapshots" / "step-0000007.pt.tmp").write_bytes(b"half")  # a crash while writing
    discard_snapshots_after(tmp_path, 6)  # the run resumes from its step-6 checkpoint
    assert [path.name for path in (tmp_path / "snapshots").iterdir()] == ["step-0000006.pt"]
    with pytest.raises(ValueError, match="at least one"):
        save_snapshot(tmp_path, snapshot(8), keep=0)


def test_export_average_writes_the_mean_of_the_last_snapshots(tmp_path: Path) -> None:
    import json

    import torch

    from training.export import export_run
    from training.model import CTCHead, build_model
    from training.snapshots import average_snapshots, save_snapshot
    from worker.recognizer import Recognizer

    shape, vocab = _tiny_shape(), len(build_tokenizer())
    weights = []
    for seed, step in ((0, 10), (1, 20), (2, 30)):  # three different models stand for three points of a run
        torch.manual_seed(seed)
        model, head = build_model(shape, vocab).state_dict(), CTCHead(shape.hidden, vocab).state_dict()
        weights.append((model, head))
        state = {"step": step, "elapsed": 1.0, "lines": step, "best": 0.5}
        save_snapshot(tmp_path, {"model": model, "ctc_head": head, "state": state, "shape": shape.as_dict()}, keep=8)
    with pytest.raises(ValueError, match="3 snapshots, 4 asked"):
        average_snapshots(tmp_path, 4)
    out = tmp_path / "averaged"
    export_run(tmp_path, out, average=2)
    state = json.loads((out / "training_state.json").read_text())["state"]
    assert state["averaged_steps"] == [20, 30] and "best" not in state
    recognizer = Recognizer.load(out, device="cpu", max_new_tokens=8)
    loaded = recognizer.model.state_dict()
    (_, _), (first, first_head), (second, second_head) = weights
    compared = [n for n, t in first.items() if t.is_floating_point() and t.dim() == 2 and n in loaded]
    assert len(compared) > 5
    for name in compared:
        assert (first[name] - second[name]).abs().max() > 1e-2, "the two inputs are far apart"
        mean = ((first[name] + second[name]) / 2).half().float()  # stored in float16
        assert torch.allclose(loaded[name].float(), mean, atol=1e-6), name
    head_mean = ((first_head["projection.weight"] + second_head["projection.weight"]) / 2).half().float()
    assert torch.allclose(recognizer.ctc.projection.weight.float(), head_mean, atol=1e-6)


@pytest.mark.parametrize(
    "arguments",
    [["train", "--keep-snapshots", "0"], ["train", "--snapshot-every", "-5"], ["export", "--average", "x"]],
)
def test_snapshot_options_are_refused_out_of_range(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from training.__main__ import main

    with pytest.raises(SystemExit):
        main(arguments)
    error = capsys.readouterr().err
    assert "or more" in error or "whole number" in error
