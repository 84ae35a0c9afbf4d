"""The portal (server-rendered pages). Filled in below."""

from __future__ import annotations

from fastapi import FastAPI


def mount_portal(app: FastAPI) -> None:
    return None
