"""The image and audio modality kinds: real PNG and WAV files written here, read back value for value,
and every bad file reported as one line naming it."""
from __future__ import annotations

import re
import wave

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from kgdistill.data.paired import load_paired
from kgdistill.data.prepare import prepare_modality
from kgdistill.errors import DataError

SAMPLES = "id\tlabel\tsplit\tstudent_labelled\ns1\tA\ttrain\t1\ns2\tB\ttrain\t1\ns3\tA\ttest\t1\n"


def dataset(root, mods: dict):
    root.mkdir(parents=True, exist_ok=True)
    (root / "samples.tsv").write_text(SAMPLES, encoding="utf-8")
    (root / "dataset.yaml").write_text(yaml.safe_dump({"graph": "g", "samples": "samples.tsv", "modalities": mods}),
                                       encoding="utf-8")
    return root


def png(path, arr, mode):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, dtype=np.uint8), mode=mode).save(path, format="PNG")


def wav(path, samples, rate=8000, width=2, channels=1):
    """Integer PCM frames (interleaved when several channels) written with the stdlib."""
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.asarray(samples, dtype=np.int64)
    if width == 1:
        raw = (a + 128).astype(np.uint8).tobytes()
    elif width == 3:
        u = a & 0xFFFFFF
        raw = np.stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()
    else:
        raw = a.astype({2: "<i2", 4: "<i4"}[width]).tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)


def load_error(root) -> str:
    with pytest.raises(DataError) as exc:
        load_paired(root)
    return str(exc.value)


# ------------------------------------------------------------------ images

GREY = [np.arange(12).reshape(3, 4) * k for k in (1, 2, 3)]


def test_png_folder_is_read_in_name_order_with_exact_pixels(tmp_path):
    root = tmp_path / "d"
    for name, img in zip(("0002.png", "0001.png", "0003.png"), GREY):  # written out of order on purpose
        png(root / "imgs" / name, img, "L")
    (root / "imgs" / "README.md").write_text("not an image")             # other files are ignored
    ds = load_paired(dataset(root, {"pic": {"kind": "image", "path": "imgs"}}))
    x = ds.modalities["pic"].values
    assert x.shape == (3, 1, 3, 4) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0], np.stack([GREY[1], GREY[0], GREY[2]]))  # 0001, 0002, 0003


def test_png_listing_keeps_its_order_and_rgb_becomes_channels_first(tmp_path):
    root = tmp_path / "d"
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30
    rgb[1, 2] = (200, 100, 50)
    png(root / "p" / "z.png", rgb, "RGB")
    png(root / "p" / "a.png", rgb // 2, "RGB")
    (root / "pics.txt").write_text("p/z.png\np/a.png\np/z.png\n", encoding="utf-8")
    ds = load_paired(dataset(root, {"pic": {"kind": "image", "path": "pics.txt"}}))
    x = ds.modalities["pic"].values
    assert x.shape == (3, 3, 2, 3)
    assert x[0, :, 0, 0].tolist() == [10, 20, 30] and x[0, :, 1, 2].tolist() == [200, 100, 50]
    assert x[1, :, 1, 2].tolist() == [100, 50, 25]
    np.testing.assert_array_equal(x[2], x[0])


def test_npy_images_grey_and_channels(tmp_path):
    root = dataset(tmp_path / "d", {"pic": {"kind": "image", "path": "x.npy"}})
    np.save(root / "x.npy", np.arange(3 * 5 * 6, dtype=np.uint8).reshape(3, 5, 6))
    x = load_paired(root).modalities["pic"].values
    assert x.shape == (3, 1, 5, 6) and x[2, 0, 4, 5] == 89.0
    np.save(root / "x.npy", np.ones((3, 2, 5, 6), dtype=np.float64))
    assert load_paired(root).modalities["pic"].values.shape == (3, 2, 5, 6)


@pytest.mark.parametrize("case,needle", [
    ("size", r"imgs/0003.png: 5x3 pixels with 1 channel\(s\); expected 4x3 with 1 like 0001.png"),
    ("channels", r"imgs/0003.png: 4x3 pixels with 3 channel\(s\); expected 4x3 with 1 like 0001.png"),
    ("truncated", r"imgs/0003.png: not a readable PNG image"),
    ("jpeg", r"imgs/0003.png: a JPEG image; expected PNG"),
    ("empty-folder", r"imgs: no .png files in this folder"),
    ("missing-listed", r"pics.txt:2: file not found: imgs/0009.png"),
    ("climbing-listed", r"pics.txt:1: '../x.png' points outside the listing's folder"),
    ("channels-last", r"x.npy: array of shape \(3, 8, 8, 3\) looks channels-last"),
    ("nan", r"x.npy: sample 2 \(array row 1\) has NaN or infinite values"),
    ("1d", r"x.npy: array of shape \(3, 4\); an image modality needs"),
    ("csv", r"x.csv: unsupported extension '.csv'; an image modality is"),
    ("count", r"imgs: 2 rows, expected 3"),
])
def test_bad_images_are_one_line_naming_the_file(tmp_path, case, needle):
    root = tmp_path / "d"
    path = {"missing-listed": "pics.txt", "climbing-listed": "pics.txt", "channels-last": "x.npy", "nan": "x.npy",
            "1d": "x.npy", "csv": "x.csv"}.get(case, "imgs")
    dataset(root, {"pic": {"kind": "image", "path": path}})
    (root / "imgs").mkdir()
    if case != "empty-folder":
        for i, img in enumerate(GREY[: 2 if case == "count" else 3], start=1):
            png(root / "imgs" / f"{i:04d}.png", img, "L")
    bad = root / "imgs" / "0003.png"
    if case == "size":
        png(bad, np.zeros((3, 5)), "L")
    elif case == "channels":
        png(bad, np.zeros((3, 4, 3)), "RGB")
    elif case == "truncated":
        bad.write_bytes(bad.read_bytes()[:40])
    elif case == "jpeg":
        Image.fromarray(np.zeros((3, 4), dtype=np.uint8), mode="L").save(bad, format="JPEG")
    elif case == "missing-listed":
        (root / "pics.txt").write_text("imgs/0001.png\nimgs/0009.png\nimgs/0002.png\n", encoding="utf-8")
    elif case == "climbing-listed":
        (root / "pics.txt").write_text("../x.png\n", encoding="utf-8")
    elif case == "channels-last":
        np.save(root / "x.npy", np.zeros((3, 8, 8, 3), dtype=np.float32))
    elif case in ("nan", "1d"):
        arr = np.zeros((3, 4, 4) if case == "nan" else (3, 4), dtype=np.float32)
        arr[1].flat[0] = np.nan if case == "nan" else 0
        np.save(root / "x.npy", arr)
    elif case == "csv":
        (root / "x.csv").write_text("1,2\n3,4\n5,6\n")
    assert re.search(needle, load_error(root)), load_error(root)


def test_images_are_standardised_per_channel_with_training_statistics(tmp_path):
    root = dataset(tmp_path / "d", {"pic": {"kind": "image", "path": "x.npy"}})
    x = np.zeros((3, 2, 1, 2), dtype=np.float32)
    x[0, 0], x[1, 0], x[2, 0] = [[0, 2]], [[4, 6]], [[100, 100]]    # channel 0; row 2 is a test sample
    x[:, 1] = 5.0                                                    # a constant channel
    np.save(root / "x.npy", x)
    mod = load_paired(root).modalities["pic"]
    p = prepare_modality(mod, graph=None, node_features=None, embedder=None, train_idx=np.array([0, 1]))
    # channel 0 over the training rows: values 0, 2, 4, 6 -> mean 3, std sqrt(5)
    assert p.tables["mean"].flatten().tolist() == [3.0, 5.0]
    assert p.tables["std"][0, 0, 0, 0].item() == pytest.approx(5 ** 0.5, abs=1e-5)
    assert p.x[0, 0, 0].tolist() == pytest.approx([-3 / 5 ** 0.5, -1 / 5 ** 0.5], abs=1e-5)
    assert p.x[2, 0, 0, 0].item() == pytest.approx(97 / 5 ** 0.5, abs=1e-4)
    assert torch.all(p.x[:, 1] == 0)


# ------------------------------------------------------------------ audio

def test_wav_folder_decodes_every_width_mixes_channels_and_pads_to_the_longest(tmp_path):
    root = tmp_path / "d"
    wav(root / "rec" / "a.wav", [0, 16384, -32768, 32767], width=2)
    wav(root / "rec" / "b.wav", [-128, 64, 127], width=1)
    wav(root / "rec" / "c.wav", [1000, 3000, -4194304, 4194304], width=3, channels=2)  # 2 frames of stereo
    ds = load_paired(dataset(root, {"voice": {"kind": "audio", "path": "rec"}}))
    m = ds.modalities["voice"]
    assert m.meta == {"rate": 8000} and m.values.shape == (3, 4)
    np.testing.assert_allclose(m.values[0], [0, 0.5, -1, 32767 / 32768], atol=1e-7)
    np.testing.assert_allclose(m.values[1], [-1, 0.5, 127 / 128, 0], atol=1e-7)    # padded with silence
    np.testing.assert_allclose(m.values[2], [2000 / 2 ** 23, 0, 0, 0], atol=1e-9)  # (1000+3000)/2, (-2^22+2^22)/2


def test_seconds_cuts_and_pads_and_rate_is_checked(tmp_path):
    root = tmp_path / "d"
    for name, n in (("a", 3), ("b", 6), ("c", 5)):
        wav(root / "rec" / f"{name}.wav", np.arange(1, n + 1) * 100, rate=4)
    ds = load_paired(dataset(root, {"voice": {"kind": "audio", "path": "rec", "rate": 4, "seconds": 1.25}}))
    np.testing.assert_allclose(ds.modalities["voice"].values * 32768,
                               [[100, 200, 300, 0, 0], [100, 200, 300, 400, 500], [100, 200, 300, 400, 500]])


def test_npy_waveforms_need_a_rate_and_integer_pcm_is_scaled(tmp_path):
    root = dataset(tmp_path / "d", {"voice": {"kind": "audio", "path": "w.npy"}})
    np.save(root / "w.npy", np.array([[0, 16384], [-32768, 8192], [1, 2]], dtype=np.int16))
    assert re.search(r"dataset.yaml: modalities.voice.rate: an .npy of waveforms needs its sample rate",
                     load_error(root))
    dataset(root, {"voice": {"kind": "audio", "path": "w.npy", "rate": 16000, "seconds": 0.0001875}})
    m = load_paired(root).modalities["voice"]
    assert m.meta["rate"] == 16000
    np.testing.assert_allclose(m.values, [[0, 0.5, 0], [-1, 0.25, 0], [1 / 32768, 2 / 32768, 0]])  # 3 samples


@pytest.mark.parametrize("case,needle", [
    ("mixed-rates", r"rec/c.wav: sample rate 16000 Hz; expected 8000 Hz \(like a.wav\)"),
    ("rate-option", r"rec/a.wav: sample rate 8000 Hz; expected 22050 Hz \(rate: 22050\)"),
    ("truncated", r"rec/b.wav: truncated: the header promises 4 frames, the file holds 2"),
    ("not-wav", r"rec/b.wav: not a readable PCM WAV file"),
    ("float-wav", r"rec/b.wav: not a readable PCM WAV file .*expected integer PCM"),
    ("no-frames", r"rec/b.wav: no audio frames"),
    ("bad-rate", r"dataset.yaml: modalities.voice.rate: expected a positive whole number of samples per second, got "
                 r"'8k'"),
    ("bad-seconds", r"dataset.yaml: modalities.voice.seconds: expected a positive duration in seconds, got -1"),
    ("unknown-key", r"dataset.yaml: modalities.voice: unknown key 'channels' for kind audio; expected kind, path, "
                    r"rate, seconds"),
    ("npy-3d", r"w.npy: array of shape \(3, 1, 4\); an audio modality needs \[samples, time steps\]"),
    ("npy-nan", r"w.npy: sample 3 \(array row 2\) has NaN or infinite values"),
    ("listing", r"rec.txt:3: file not found: rec/zz.wav"),
])
def test_bad_audio_is_one_line_naming_the_file(tmp_path, case, needle):
    root = tmp_path / "d"
    spec = {"kind": "audio", "path": "rec"}
    spec.update({"rate-option": {"rate": 22050}, "bad-rate": {"rate": "8k"}, "bad-seconds": {"seconds": -1},
                 "unknown-key": {"channels": 1}, "npy-3d": {"path": "w.npy", "rate": 8000},
                 "npy-nan": {"path": "w.npy", "rate": 8000}, "listing": {"path": "rec.txt"}}.get(case, {}))
    dataset(root, {"voice": spec})
    for name in "abc":
        wav(root / "rec" / f"{name}.wav", [1, 2, 3, 4], rate=16000 if (case, name) == ("mixed-rates", "c") else 8000)
    bad = root / "rec" / "b.wav"
    if case == "truncated":
        bad.write_bytes(bad.read_bytes()[:-4])
    elif case == "not-wav":
        bad.write_bytes(b"RIFF0000WAVEjunk")
    elif case == "float-wav":  # IEEE-float WAV (format tag 3): the stdlib reads integer PCM only
        raw = bytearray(bad.read_bytes())
        raw[20:22] = (3).to_bytes(2, "little")
        bad.write_bytes(bytes(raw))
    elif case == "no-frames":
        wav(bad, [])
    elif case.startswith("npy"):
        arr = np.zeros((3, 1, 4) if case == "npy-3d" else (3, 4), dtype=np.float32)
        arr[-1, 0] = np.nan if case == "npy-nan" else 0
        np.save(root / "w.npy", arr)
    elif case == "listing":
        (root / "rec.txt").write_text("rec/a.wav\nrec/b.wav\nrec/zz.wav\n", encoding="utf-8")
    assert re.search(needle, load_error(root)), load_error(root)


def test_audio_is_standardised_with_one_scale_and_keeps_its_rate(tmp_path):
    root = dataset(tmp_path / "d", {"voice": {"kind": "audio", "path": "w.npy", "rate": 8000}})
    np.save(root / "w.npy", np.array([[1, -1, 3, 1], [0, 0, 2, 2], [9, 9, 9, 9]], dtype=np.float32))
    mod = load_paired(root).modalities["voice"]
    p = prepare_modality(mod, graph=None, node_features=None, embedder=None, train_idx=np.array([0, 1]))
    # training samples 1, -1, 3, 1, 0, 0, 2, 2: mean 1, variance (0+4+4+0+1+1+1+1)/8 = 1.5
    assert p.tables["mean"].tolist() == [[1.0]] and p.tables["rate"].tolist() == [8000]
    assert p.tables["std"].item() == pytest.approx(1.5 ** 0.5, abs=1e-5)
    assert p.x[2].tolist() == pytest.approx([8 / 1.5 ** 0.5] * 4, abs=1e-4)
