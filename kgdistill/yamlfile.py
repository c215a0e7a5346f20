"""Reading a YAML file so that every way it can be wrong is one line naming the file (and line)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import KGDistillError


def load_yaml_file(path: Path, error: type[KGDistillError]) -> Any:
    """``yaml.safe_load`` of a UTF-8 file; problems raise ``error`` with the file and, when known, the line."""
    if not path.is_file():
        raise error("file not found", source=str(path))
    raw = path.read_bytes()
    try:
        return yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); re-encode the file as UTF-8", source=str(path),
                    line=raw.count(b"\n", 0, exc.start) + 1) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        why = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise error(f"not valid YAML: {why}", source=str(path), line=None if mark is None else mark.line + 1) from None
    except RecursionError:
        raise error("not valid YAML: nested too deeply", source=str(path)) from None
    except ValueError as exc:  # e.g. a date-like value that is no date: 2024-13-45
        raise error(f"not valid YAML: {exc}", source=str(path)) from None
