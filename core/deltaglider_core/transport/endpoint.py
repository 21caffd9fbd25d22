"""Endpoint: the connection set of one S3 endpoint, made once by the caller and carried as one value.

The boto3 client is injected (never created here), with what the lighter transport needs beside it: the
client's own credentials (``session.get_credentials()``) and the ``verify`` it was made with. Without
credentials every request goes through boto3 (fast_http.py explains the fast path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deltaglider_core.transport.s3 import DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_SIZE, S3


@dataclass(frozen=True)
class Endpoint:
    """``client``: a boto3 S3 client; ``credentials``/``verify``: the client's own, for the fast transport;
    ``fast_transport``: False sends every request through boto3."""

    client: Any
    credentials: Any = field(default=None, repr=False)
    verify: bool | str | None = None
    fast_transport: bool = True

    @classmethod
    def of(cls, target: Endpoint | Any) -> Endpoint:
        """``target`` itself when it is an Endpoint, else an Endpoint of that boto3 client alone."""
        return target if isinstance(target, Endpoint) else cls(target)

    def open(self, *, multipart_threshold: int | None = None, part_size: int | None = None) -> S3:
        """The transport funnel (transport/s3.py) over this endpoint; the caller closes it."""
        return S3(
            self.client,
            multipart_threshold=DEFAULT_MULTIPART_THRESHOLD if multipart_threshold is None else multipart_threshold,
            part_size=DEFAULT_PART_SIZE if part_size is None else part_size,
            fast_transport=self.fast_transport,
            credentials=self.credentials,
            verify=self.verify,
        )
