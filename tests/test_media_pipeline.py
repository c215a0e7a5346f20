"""An image teacher and an audio student through the whole pipeline, from PNG and WAV files to `predict --input`."""
from __future__ import annotations

import json
import math
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TONES = (300, 700, 1300, 2200)          # digit d -> a tone at TONES[d] Hz
RATE = 8000


def tone(d: int, rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    t = np.arange(rate // 4) / rate
    x = 0.5 * np.sin(2 * math.pi * TONES[d] * t + rng.uniform(0, 6)) + 0.05 * rng.standard_normal(len(t))
    return np.round(x * 32767).astype("<i2")


def write_wav(path: Path, pcm: np.ndarray, rate: int = RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def bar(d: int, rng: np.random.Generator) -> np.ndarray:
    """8x8: d=0 vertical bar, 1 horizontal bar, 2 diagonal, 3 anti-diagonal, in noise."""
    img = rng.integers(0, 40, (8, 8))
    k = rng.integers(2, 6)
    if d == 0:
        img[:, k] = 255
    elif d == 1:
        img[k, :] = 255
    else:
        img[np.arange(8), np.arange(8) if d == 2 else 7 - np.arange(8)] = 255
    return img.astype(np.uint8)


@pytest.fixture(scope="module")
def media_run(tmp_path_factory):
    from kgdistill.config import load_config
    from kgdistill.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("media")
    ds = root / "data"
    rng = np.random.default_rng(0)
    (ds / "img").mkdir(parents=True)
    rows = ["id\tlabel\tsplit\tstudent_labelled"]
    n = 0
    for split, per, labelled in (("train", 10, 3), ("val", 3, 3), ("test", 4, 4)):
        for d in range(4):
            for k in range(per):
                rows.append(f"s{n:03d}\tdigit:d{d}\t{split}\t{int(k < labelled)}")
                Image.fromarray(bar(d, rng), mode="L").save(ds / "img" / f"{n:03d}.png")
                write_wav(ds / "wav" / f"{n:03d}.wav", tone(d, rng))
                n += 1
    (ds / "samples.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    shutil.copy(ROOT / "graphs" / "spoken_digits.ttl", ds / "g.ttl")
    (ds / "dataset.yaml").write_text(yaml.safe_dump({
        "graph": "g.ttl", "samples": "samples.tsv", "teacher": "pic", "student": "voice",
        "modalities": {"pic": {"kind": "image", "path": "img"}, "voice": {"kind": "audio", "path": "wav", "rate": RATE}}}))
    cfg = load_config(ROOT / "configs" / "spoken_digits.yaml", [
        f"data.path={ds}", "teacher.epochs=15", "student.epochs=15", "teacher.batch_size=8", "student.batch_size=8",
        "space.dim=16", "gnn.hidden=32", "teacher.encoder.hidden=8", "student.encoder.hidden=16",
        "student.encoder.n_mels=24", "train.num_threads=1", "eval.plots=false", "calibration.enabled=false"])
    return run_pipeline(cfg, root / "run", progress=False, log=lambda *_: None), ds, rng


def test_image_teacher_and_audio_student_learn(media_run):
    rd, _, _ = media_run
    m = rd.metrics()
    assert m["chance_top1"] == 0.25
    assert m["methods"]["teacher"]["seen"]["top1"] == 1.0
    assert m["methods"]["kd"]["seen"]["top1"] >= 0.75 and m["methods"]["kg_guided"]["seen"]["top1"] >= 0.75


def test_predict_reads_wav_files_and_npy_at_the_model_rate(media_run, cli, tmp_path):
    rd, _, rng = media_run
    for i, d in enumerate((2, 0, 3)):
        write_wav(tmp_path / "in" / f"{i}.wav", tone(d, rng))
    out = cli("predict", str(rd.path), "--input", str(tmp_path / "in"), "--top-k", "4", "--json")
    assert out.returncode == 0, out.stderr
    preds = json.loads(out.stdout)
    assert [p[0]["concept_id"] for p in preds] == ["digit:d2", "digit:d0", "digit:d3"]
    assert all(sorted(x["concept_id"] for x in p) == [f"digit:d{d}" for d in range(4)] for p in preds)
    np.save(tmp_path / "in.npy", np.stack([tone(1, rng), tone(3, rng)]))           # int16 PCM at the model's rate
    preds = json.loads(cli("predict", str(rd.path), "--input", str(tmp_path / "in.npy"), "--json").stdout)
    assert [p[0]["concept_id"] for p in preds] == ["digit:d1", "digit:d3"]
    write_wav(tmp_path / "in" / "3.wav", tone(1, rng, rate=16000), rate=16000)
    bad = cli("predict", str(rd.path), "--input", str(tmp_path / "in"))
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().endswith("in/3.wav: sample rate 16000 Hz; expected 8000 Hz (rate: 8000)")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_a_run_without_the_audio_rate_is_one_line(media_run, tmp_path):
    from safetensors.torch import save_file

    from kgdistill.errors import RunDirError
    from kgdistill.predict import Predictor
    from kgdistill.fileio import load_tensors

    rd, _, _ = media_run
    broken = tmp_path / "run"
    shutil.copytree(rd.path, broken)
    tensors = load_tensors(broken / "checkpoints" / "concepts.safetensors")
    assert tensors.pop("student_input.rate").tolist() == [RATE]
    save_file(tensors, broken / "checkpoints" / "concepts.safetensors")
    with pytest.raises(RunDirError, match=r"concepts.safetensors: the audio student's sample rate is missing"):
        Predictor.from_run_dir(broken)
