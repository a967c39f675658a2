"""The Hugging Face Hub round trip without the network: a model loaded by its Hub id from a cache
in the Hub's layout (CTC head included) through the service's own loading path, ``inkwell model
pull`` resolving that cache offline, the files and single commit ``inkwell model push`` would
upload, and the bundled ``handler.py`` called the way Inference Endpoints call it.

``push`` itself needs the Hub (nothing here can reach it, and a stand-in server would test only
itself): its commit is tested up to the request, and its refusal without a token."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from inkwell.hub import HubError, plan_push
from inkwell.paths import BUNDLED_MODEL, PROJECT_ROOT
from tests.hub_cache import install_in_hub_cache
from tests.tiny_models import TEXTS, render_text_line

pytestmark = pytest.mark.slow

REPO_ID = "inkwell-test/tiny-ink"


def _train_ctc_head(folder: Path) -> None:
    """A CTC head over the tiny model's frozen encoder, trained until it reads the training lines."""
    from safetensors.torch import save_file

    from worker.recognizer import Recognizer

    torch.manual_seed(0)
    recognizer = Recognizer.load(folder, device="cpu")
    pixel_values, _ = recognizer.pixel_values([render_text_line(text) for text in TEXTS])
    with torch.no_grad():
        patches = recognizer.model.encoder(pixel_values=pixel_values).last_hidden_state[:, 1:]
    targets = [recognizer.tokenizer(text, add_special_tokens=False).input_ids for text in TEXTS]
    head = torch.nn.Linear(patches.shape[-1], recognizer.model.config.decoder.vocab_size)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    loss_fn = torch.nn.CTCLoss(blank=1)
    flat = torch.tensor([i for ids in targets for i in ids])
    for _ in range(400):
        log_probs = head(patches).log_softmax(-1).transpose(0, 1)  # frames x batch x vocab
        loss = loss_fn(
            log_probs, flat, torch.full((len(TEXTS),), patches.shape[1]), torch.tensor([len(ids) for ids in targets])
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    save_file(
        {"weight": head.weight.detach().contiguous(), "bias": head.bias.detach().contiguous()},
        str(folder / "ctc_head.safetensors"),
    )
    (folder / "inkwell.json").write_text(
        json.dumps({"ctc_head": {"file": "ctc_head.safetensors", "blank_id": 1, "weight": 0.5}})
    )


@pytest.fixture(scope="module")
def publishable(tiny_char_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model as a complete, publishable folder: CTC head, handler, decoder for it, card."""
    folder = tmp_path_factory.mktemp("publishable") / "tiny-ink"
    shutil.copytree(tiny_char_model, folder)
    _train_ctc_head(folder)
    shutil.copy(PROJECT_ROOT / "training" / "handler.py", folder / "handler.py")
    shutil.copy(PROJECT_ROOT / "worker" / "ctc_prefix.py", folder / "ctc_prefix.py")
    (folder / "README.md").write_text("---\nlicense: apache-2.0\npipeline_tag: image-to-text\n---\n# tiny-ink\n")
    return folder


@pytest.fixture(scope="module")
def hub_home(publishable: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("hf-home")
    return home, install_in_hub_cache(publishable, home / "hub", REPO_ID)


def _offline_env(home: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "HF_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "INKWELL_DATA_DIR": str(tmp_path / "var"),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(PROJECT_ROOT),
        **extra,
    }


LOAD_BY_ID = """
import json
from inkwell.config import get_settings
from tests.tiny_models import TEXTS, render_text_line
from worker.runtime import load_recognizer

recognizer = load_recognizer(get_settings())
read = recognizer.recognize([render_text_line(text) for text in TEXTS])
print(json.dumps({"name": recognizer.name, "ctc": [recognizer.ctc.blank_id, recognizer.ctc.weight],
                  "head": recognizer.ctc.projection.weight.sum().item(), "texts": [line.text for line in read]}))
"""


def test_a_hub_id_loads_offline_from_the_cache_with_its_ctc_head(
    publishable: Path, hub_home: tuple[Path, str], tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    home, _ = hub_home
    env = _offline_env(home, tmp_path, INKWELL_MODEL=REPO_ID)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_BY_ID], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert loaded["name"] == REPO_ID and loaded["ctc"] == [1, 0.5]
    assert loaded["head"] == pytest.approx(
        load_file(str(publishable / "ctc_head.safetensors"))["weight"].sum().item(), rel=1e-6
    )
    assert loaded["texts"] == list(TEXTS)  # read with joint CTC/attention decoding
    # an id that is not in the cache fails offline (it is really the cache that served the first)
    missing = subprocess.run(
        [sys.executable, "-c", LOAD_BY_ID],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=_offline_env(home, tmp_path, INKWELL_MODEL="inkwell-test/absent"),
    )
    assert missing.returncode != 0 and "offline" in missing.stderr


def test_pull_resolves_the_cache_offline(hub_home: tuple[Path, str], tmp_path: Path) -> None:
    home, commit = hub_home
    env = _offline_env(home, tmp_path)
    for args in ([], ["--revision", commit]):
        result = subprocess.run(
            [sys.executable, "-m", "inkwell_cli", "model", "pull", REPO_ID, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert Path(result.stdout.strip()) == home / "hub" / "models--inkwell-test--tiny-ink" / "snapshots" / commit
    absent = subprocess.run(
        [sys.executable, "-m", "inkwell_cli", "model", "pull", "inkwell-test/absent"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert absent.returncode == 1 and "inkwell-test/absent" in absent.stderr and "Traceback" not in absent.stderr


def test_the_handler_answers_as_inference_endpoints_call_it(hub_home: tuple[Path, str]) -> None:
    """Inference Endpoints download the repository and call ``EndpointHandler(path)(data)`` with a base64 image."""
    home, commit = hub_home
    snapshot = home / "hub" / "models--inkwell-test--tiny-ink" / "snapshots" / commit
    spec = importlib.util.spec_from_file_location("tiny_handler", snapshot / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = module.EndpointHandler(str(snapshot))
    assert handler.ctc is not None  # the head travels with the repository
    buffer = io.BytesIO()
    render_text_line(TEXTS[1]).save(buffer, "PNG")
    data = {"inputs": base64.b64encode(buffer.getvalue()).decode(), "parameters": {}}
    answer = json.loads(json.dumps(handler(data)))  # what goes over the wire
    assert isinstance(answer, list) and len(answer) == 1
    assert set(answer[0]) == {"generated_text", "confidence"}
    assert answer[0]["generated_text"] == TEXTS[1] and 0.5 < answer[0]["confidence"] <= 1


def test_push_uploads_the_checkpoint_as_one_commit(publishable: Path, tmp_path: Path) -> None:
    folder = tmp_path / "tiny-ink"
    shutil.copytree(publishable, folder)
    (folder / "best.pt").write_bytes(b"training checkpoint")  # never published
    (folder / ".DS_Store").write_bytes(b"")
    plan = plan_push(folder)
    assert set(plan.files) == {p.name for p in publishable.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "ctc_head.safetensors",
        "inkwell.json",
        "handler.py",
        "ctc_prefix.py",
        "README.md",
    } <= set(plan.files)
    operations = plan.operations()
    assert [op.path_in_repo for op in operations] == list(plan.files)
    assert all(Path(op.path_or_fileobj) == folder / op.path_in_repo for op in operations)
    bundled = plan_push(BUNDLED_MODEL).files
    assert {
        "model.safetensors",
        "ctc_head.safetensors",
        "inkwell.json",
        "handler.py",
        "ctc_prefix.py",
        "README.md",
    } <= set(bundled)
    (folder / "ctc_head.safetensors").unlink()
    with pytest.raises(HubError, match="ctc_head.safetensors"):
        plan_push(folder)
    (folder / "inkwell.json").unlink()
    (folder / "model.safetensors").unlink()
    with pytest.raises(HubError, match="model weights"):
        plan_push(folder)


def test_push_without_a_token_stops_before_the_network(publishable: Path, tmp_path: Path) -> None:
    env = _offline_env(tmp_path / "empty-hf-home", tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "inkwell_cli", "model", "push", str(publishable), REPO_ID, "--private"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1 and "no Hugging Face token" in result.stderr and "Traceback" not in result.stderr
    incomplete = subprocess.run(
        [sys.executable, "-m", "inkwell_cli", "model", "push", str(tmp_path), REPO_ID],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert incomplete.returncode == 1 and "not a complete model folder" in incomplete.stderr
