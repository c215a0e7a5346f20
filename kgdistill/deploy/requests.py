"""What a predict request must be, checked before the model sees it: one :class:`Rejected` per problem, with
its HTTP status, a kind (the metrics' error label), the field it concerns and a message that never quotes the
request's content (a note or a signal is personal or proprietary data)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20        # 413 above
    max_batch: int = 64                  # inputs per request (413 above), and per model call (batching)
    max_input_length: int = 20_000       # characters of a note, numbers of a signal (413 above)
    timeout_s: float = 10.0              # receiving the body (408) and scoring it (504), each
    max_top_k: int = 100
    max_inflight: int = 2                # model calls at once; requests that arrive meanwhile wait and are
                                         # scored together (bounds memory: ONNX Runtime's buffers grow with
                                         # every call running at the same time)


class Rejected(Exception):
    def __init__(self, status: int, kind: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.field = status, kind, message, field

    def body(self) -> dict[str, Any]:
        return {"error": self.kind, "message": self.message, **({"field": self.field} if self.field else {})}


class PredictRequest(BaseModel):
    """A batch of inputs of the model's modality: notes (strings) for a text model, arrays of numbers of the
    training shape (free axes: any length) for the others."""

    model_config = ConfigDict(extra="forbid")
    inputs: list[Any] = Field(description="Notes (text model) or arrays (signal, image, vector models).")
    top_k: int = Field(10, ge=1, le=1000, description="How many ranked concepts per input.")


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise Rejected(422, "validation", "empty body; expected a JSON object with 'inputs'", "body")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise Rejected(422, "validation", "body is not UTF-8 JSON", "body") from None
    except json.JSONDecodeError as exc:
        raise Rejected(422, "validation", f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                       "body") from None


def check_request(payload: Any, kind: str, limits: Limits) -> tuple[PredictRequest, Any]:
    """The validated request and its inputs ready to score (text: the notes; others: one float32 array)."""
    if not isinstance(payload, dict):
        raise Rejected(422, "validation", "expected a JSON object with 'inputs'", "body")
    try:
        req = PredictRequest.model_validate(payload)
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise Rejected(422, "validation", f"{field}: {err['msg']}", field) from None
    n = len(req.inputs)
    if n == 0:
        raise Rejected(422, "empty_batch", "inputs: empty batch; expected at least one input", "inputs")
    if n > limits.max_batch:
        raise Rejected(413, "batch_too_large", f"inputs: {n} inputs; at most {limits.max_batch} per request",
                       "inputs")
    if req.top_k > limits.max_top_k:
        raise Rejected(422, "validation", f"top_k: at most {limits.max_top_k}", "top_k")
    return req, (_notes(req.inputs, limits) if kind == "text" else _arrays(req.inputs, kind, limits))


def _notes(inputs: list[Any], limits: Limits) -> list[str]:
    for i, t in enumerate(inputs):
        if not isinstance(t, str):
            raise Rejected(422, "wrong_modality", f"inputs[{i}]: this model reads text; expected a string",
                           f"inputs[{i}]")
        if not t.strip():
            raise Rejected(422, "validation", f"inputs[{i}]: empty text", f"inputs[{i}]")
        if len(t) > limits.max_input_length:
            raise Rejected(413, "input_too_long", f"inputs[{i}]: {len(t)} characters; at most "
                           f"{limits.max_input_length}", f"inputs[{i}]")
    return inputs


def _arrays(inputs: list[Any], kind: str, limits: Limits) -> np.ndarray:
    for i, v in enumerate(inputs):
        if not isinstance(v, list):
            raise Rejected(422, "wrong_modality", f"inputs[{i}]: this model reads {kind} input; expected an array "
                           f"of numbers", f"inputs[{i}]")
    try:
        x = np.asarray(inputs, dtype=np.float32)
    except (ValueError, TypeError):
        raise Rejected(422, "validation", "inputs: expected arrays of numbers, all of one shape", "inputs") from None
    if x[0].size > limits.max_input_length:
        raise Rejected(413, "input_too_long", f"inputs: {x[0].size} numbers per input; at most "
                       f"{limits.max_input_length}", "inputs")
    if not np.isfinite(x).all():
        raise Rejected(422, "validation", "inputs: NaN or infinite values", "inputs")
    return x
