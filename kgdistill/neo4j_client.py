"""One Bolt connection to a Neo4j server, shared by the graph reader (``graph/neo4j_io.py``) and the alignment
store (``store/neo4j.py``): URI checks, credentials from the environment, retried connect, one-line errors.

Credentials come only from an explicit ``auth`` or NEO4J_USER / NEO4J_PASSWORD, never from the URI, and a URI is
shown with any ``user:password@`` part redacted.
"""
from __future__ import annotations

import os
import re
import time
from typing import Any
from urllib.parse import urlsplit

from .errors import StoreError

SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


def redact_uri(uri: str) -> str:
    """The URI as messages show it: a ``user:password@`` part becomes ``***@`` (a typed password is never echoed)."""
    return re.sub(r"(?<=://)[^/@\s]*@", "***@", str(uri))


def neo4j_auth(auth: Any = None) -> Any:
    """Credentials: an explicit (user, password) from Python code, else NEO4J_USER / NEO4J_PASSWORD, else none."""
    if auth is not None:
        return auth
    password = os.environ.get("NEO4J_PASSWORD")
    if not password:
        return None
    return (os.environ.get("NEO4J_USER") or "neo4j", password)


def check_uri(uri: str) -> str:
    """A Bolt URI with a host and port only; anything else is a one-line StoreError."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise StoreError(f"invalid Neo4j URI {redact_uri(uri)!r}: {exc}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise StoreError(f"invalid Neo4j URI {redact_uri(uri)!r}: scheme must be one of {', '.join(SCHEMES)}")
    if parts.username is not None or parts.password is not None:
        raise StoreError(f"Neo4j URI must not hold credentials; set NEO4J_USER and NEO4J_PASSWORD instead")
    if not parts.hostname:
        raise StoreError(f"invalid Neo4j URI {redact_uri(uri)!r}: no host (expected bolt://host:port)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise StoreError(f"invalid Neo4j URI {redact_uri(uri)!r}: "
                         "expected bolt://host:port with nothing after the port")
    return f"{parts.scheme.lower()}://{parts.hostname}:{port or 7687}"


def explain(exc: BaseException, uri: str, auth: Any, what: str = "") -> StoreError:
    """One clear line for a driver error."""
    from neo4j import exceptions as ne

    during = f" during {what}" if what else ""
    if isinstance(exc, ne.AuthError):
        if auth is None:
            return StoreError(f"Neo4j at {uri} requires authentication: set NEO4J_USER and NEO4J_PASSWORD")
        user = auth[0] if isinstance(auth, tuple) else "?"
        return StoreError(f"Neo4j at {uri} rejected the credentials of user {user!r} "
                          f"(from NEO4J_USER / NEO4J_PASSWORD)")
    if isinstance(exc, (ne.ServiceUnavailable, ne.SessionExpired, OSError)):
        return StoreError(f"cannot reach Neo4j at {uri}{during}: {short_error(exc)} "
                          f"(is the server running? scripts/neo4j.sh start)")
    if isinstance(exc, (ne.ConfigurationError, ValueError)):
        return StoreError(f"invalid Neo4j URI {uri!r}: {short_error(exc)}")
    if isinstance(exc, ne.Neo4jError):
        return StoreError(f"Neo4j at {uri} rejected {what or 'the request'}: {exc.code}: {short_error(exc)}")
    return StoreError(f"Neo4j at {uri}{during}: {short_error(exc)}")


def short_error(exc: BaseException) -> str:
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(msg).split())[:300]


def connect(uri: str, auth: Any = None, *, attempts: int = 3, wait: float = 0.5):
    """A verified neo4j driver for ``uri``; credentials as :func:`neo4j_auth`.  Errors are StoreErrors."""
    from neo4j import GraphDatabase
    from neo4j import exceptions as ne

    uri = check_uri(uri)
    auth = neo4j_auth(auth)
    try:
        driver = GraphDatabase.driver(uri, auth=auth, connection_timeout=5.0, connection_acquisition_timeout=30.0,
                                      max_transaction_retry_time=0.0, user_agent="kgdistill",
                                      notifications_min_severity="OFF")
    except (ne.ConfigurationError, ValueError) as exc:
        raise explain(exc, uri, auth) from None
    for attempt in range(attempts):
        try:
            driver.verify_connectivity()
            return driver
        except (ne.ServiceUnavailable, ne.SessionExpired, OSError) as exc:
            if attempt == attempts - 1:
                driver.close()
                raise explain(exc, uri, auth, "connect") from None
            time.sleep(wait * 2 ** attempt)
        except Exception as exc:  # auth, configuration, protocol
            driver.close()
            raise explain(exc, uri, auth) from None
    raise AssertionError("unreachable")
