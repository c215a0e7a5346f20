"""Bearer tokens for the server: read from an environment variable and/or a file, compared in constant time
(``hmac.compare_digest``) against every configured token, so timing tells nothing about which or how much
matched.  Tokens are never logged nor echoed."""
from __future__ import annotations

import hmac
import os
from pathlib import Path

from ..errors import ConfigError

TOKEN_ENV = "KGDISTILL_TOKENS"     # one or more tokens, comma-separated
MIN_LENGTH = 16


def load_tokens(token_file: str | Path | None = None, env: str = TOKEN_ENV) -> list[bytes]:
    """Tokens from ``$KGDISTILL_TOKENS`` (comma-separated) and ``token_file`` (one a line, # comments)."""
    raw = [t for t in os.environ.get(env, "").split(",")]
    if token_file is not None:
        path = Path(token_file)
        try:
            raw += path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"--token-file: cannot read it ({exc.strerror})", source=str(path)) from None
    tokens = [t.strip() for t in raw if t.strip() and not t.strip().startswith("#")]
    if not tokens:
        raise ConfigError(f"serve needs at least one bearer token: set {env} or give --token-file")
    if short := [t for t in tokens if len(t) < MIN_LENGTH]:
        raise ConfigError(f"{len(short)} token(s) shorter than {MIN_LENGTH} characters; use long random tokens "
                          f"(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return [t.encode() for t in tokens]


def authorised(header: str | None, tokens: list[bytes]) -> bool:
    """``Authorization: Bearer <token>`` holds one of ``tokens``; every token is compared (no early exit)."""
    if not header or not header.startswith("Bearer "):
        return False
    given = header[len("Bearer "):].strip().encode()
    ok = False
    for t in tokens:
        ok |= hmac.compare_digest(given, t)
    return ok
