"""The run directory: the unit of output that eval, predict and align push read.

``run.json`` says ``running`` from the first write and ``complete`` only after every
artefact is in place, so a crashed or interrupted run is never mistaken for a result.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .config import RunConfig, save_config, validate_config, read_yaml
from .errors import RunDirError
from .fileio import write_json_atomic


# What every reader of a run marked complete needs; the model's own files are its to check (model.py).
REQUIRED_FILES = ("config.yaml", "graph/nodes.csv", "graph/edges.csv")


def code_version() -> dict[str, Any]:
    """Which code made a run: the package version and, from a git checkout, the commit (and whether the
    working tree had changes), so a figure can be traced to the code that produced it."""
    import subprocess

    from ._version import __version__

    out: dict[str, Any] = {"version": __version__}
    root = Path(__file__).resolve().parents[1]
    if (root / ".git").exists():
        try:
            git = ["git", "--no-optional-locks", "-C", str(root)]  # never takes the index lock
            out["commit"] = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                                           timeout=10, check=True).stdout.strip()
            out["modified"] = bool(subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                                                  capture_output=True, text=True, timeout=10, check=True).stdout)
        except (OSError, subprocess.SubprocessError):
            pass  # no git on this machine: the version is all there is
    return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a run's recorded owner)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def first_difference(a: Any, b: Any, key: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if a.get(k) != b.get(k):
                return first_difference(a.get(k), b.get(k), f"{key}.{k}" if key else str(k))
    return key or "(root)"


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)

    # ----------------------------------------------------------------- layout
    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def alignments(self) -> Path:
        return self.path / "alignments"

    @property
    def info(self) -> dict[str, Any]:
        try:
            info = json.loads((self.path / "run.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunDirError("not a run directory (no run.json)", source=str(self.path)) from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RunDirError("run.json is not valid JSON", source=str(self.path)) from None
        if not isinstance(info, dict):
            raise RunDirError("run.json must hold a JSON object", source=str(self.path))
        return info

    # -------------------------------------------------------------- lifecycle
    @classmethod
    def create(cls, path: str | Path, cfg: RunConfig, *, overwrite: bool = False, log=lambda *_: None) -> "RunDir":
        """A new run in ``path``, which must be empty, or hold an incomplete run of kgdistill's that may go (see
        :meth:`replaceable`; ``overwrite``: any incomplete run that is not running)."""
        path = Path(path)
        if path.exists() and any(path.iterdir()):
            why = cls(path).replaceable(overwrite)
            log(f"[kgdistill] replacing {why} in {path}")
            shutil.rmtree(path)
        for sub in ("", "checkpoints", "alignments", "logs", "plots"):
            try:
                (path / sub).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RunDirError(f"cannot create output folder: {exc.strerror}", source=str(path)) from None
        rd = cls(path)
        cfg = cfg.with_absolute_paths()
        save_config(cfg, path / "config.yaml")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        write_json_atomic(path / "run.json", {
            "run_id": f"{cfg.name}-{stamp}-{cfg.hash()[:6]}", "status": "running", "created": _now(),
            "finished": None, "config_hash": cfg.hash(), "host": socket.gethostname(), "pid": os.getpid(),
            "graph_source": "", "code": code_version(),
        })
        return rd

    def replaceable(self, overwrite: bool) -> str:
        """What the existing, non-empty folder holds, when a new run may replace it: a failed run that left no
        training state (nothing to resume), or with ``overwrite`` any run that did not complete and is not running.
        A complete run, a running one and a folder that is not a run are never replaced (RunDirError)."""
        path = self.path
        if not (path / "run.json").is_file():
            raise RunDirError("output folder exists, is not empty and holds no kgdistill run; choose another --out",
                              source=str(path))
        info = self.info
        status, pid = info.get("status"), info.get("pid")
        if status == "complete":
            raise RunDirError("output folder holds a complete run (never replaced); choose another --out",
                              source=str(path))
        if (status == "running" and info.get("host") == socket.gethostname() and isinstance(pid, int)
                and pid != os.getpid() and pid_alive(pid)):
            raise RunDirError(f"output folder holds a run that is still running (pid {pid})", source=str(path))
        resumable = any((path / "state").rglob("*.pt")) or (path / "state" / "calibration.json").is_file()
        if overwrite or (status == "failed" and not resumable):
            error = str(info.get("error") or "it did not complete").splitlines()[0][:160]
            return f"the {status} run ({error})"
        raise RunDirError(f"output folder holds an unfinished run (status: {status}); continue it with "
                          f"kgdistill train --resume {path}, or start again with --overwrite", source=str(path))

    @classmethod
    def resume(cls, path: str | Path, cfg: RunConfig | None = None) -> tuple["RunDir", RunConfig]:
        """Reopen an interrupted, failed or killed run to continue it; its saved config is the one that runs."""
        rd = cls(Path(path))
        if not rd.path.is_dir():
            raise RunDirError("no such run directory to resume", source=str(path))
        info = rd.info
        if info.get("status") == "complete":
            raise RunDirError("run is already complete; nothing to resume", source=str(path))
        if info.get("reevaluated_from"):  # it copies models, it trains nothing: resuming would train from scratch
            raise RunDirError(f"an unfinished evaluation of {info['reevaluated_from']} again; delete it and run "
                              "kgdistill eval with --out again", source=str(path))
        pid = info.get("pid")
        if (info.get("status") == "running" and info.get("host") == socket.gethostname() and isinstance(pid, int)
                and pid != os.getpid() and pid_alive(pid)):
            raise RunDirError(f"run is still running (pid {pid}); stop it before resuming", source=str(path))
        saved = rd.config()
        cfg = cfg.with_absolute_paths() if cfg is not None else None
        if cfg is not None and cfg.hash() != saved.hash():
            key = first_difference(saved.model_dump(mode="json"), cfg.model_dump(mode="json"))
            raise RunDirError(f"configuration differs from the run's saved config at {key!r}; resume without a "
                              "config (or with the same one)", source=str(path))
        code, later = code_version(), list(info.get("resumed_with_code", []))
        if code != info.get("code") and code not in later:  # the run's figures then come from more than one commit
            later.append(code)
        rd.update(status="running", pid=os.getpid(), finished=None, error=None,
                  resumed=int(info.get("resumed", 0)) + 1, **({"resumed_with_code": later} if later else {}))
        return rd, saved

    def update(self, **fields: Any) -> None:
        info = self.info
        info.update(fields)
        write_json_atomic(self.path / "run.json", info)

    def mark_complete(self) -> None:
        self.update(status="complete", finished=_now())

    def mark_failed(self, reason: str, status: str = "failed") -> None:
        """Never flips a complete run back (e.g. a closed stdout failing the last log line)."""
        try:
            if self.info.get("status") == "complete":
                return
            self.update(status=status, finished=_now(), error=reason)
        except Exception:  # the folder itself may be gone or unwritable
            pass

    @classmethod
    def open(cls, path: str | Path, require_complete: bool = True, required: tuple[str, ...] = ()) -> "RunDir":
        """``required``: files the caller reads beside ``REQUIRED_FILES`` (checked when the run is complete)."""
        rd = cls(Path(path))
        if not rd.path.is_dir():
            raise RunDirError("no such run directory", source=str(path))
        status = rd.info.get("status")
        if require_complete and status != "complete":
            raise RunDirError(f"run is not complete (status: {status}); re-run training", source=str(path))
        if require_complete:
            missing = [f for f in (*REQUIRED_FILES, *required) if not (rd.path / f).is_file()]
            if missing:
                raise RunDirError(f"incomplete run directory: {missing[0]} is missing"
                                  + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                                  + "; re-run training", source=str(path))
        return rd

    def config(self) -> RunConfig:
        return validate_config(read_yaml(self.path / "config.yaml"), source=str(self.path / "config.yaml"),
                               warn_legacy=False)

    def read_json(self, name: str) -> dict[str, Any]:
        """A JSON object file of the run (e.g. ``calibration.json``); a missing or damaged one is a RunDirError."""
        p = self.path / name
        try:
            obj = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunDirError("missing; the run directory is incomplete", source=str(p)) from None
        except UnicodeDecodeError:
            raise RunDirError("not valid JSON (not UTF-8 text)", source=str(p)) from None
        except json.JSONDecodeError as exc:
            raise RunDirError(f"not valid JSON: {exc.msg}", source=str(p), line=exc.lineno) from None
        if not isinstance(obj, dict):
            raise RunDirError("expected a JSON object", source=str(p))
        return obj

    def metrics(self) -> dict[str, Any]:
        return self.read_json("metrics.json")
