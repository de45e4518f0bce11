"""One APIRouter per resource; app.py includes them all (a new resource adds a module here)."""

from . import evidence, ingest, ops, read

ALL = (ingest.router, evidence.router, read.router, ops.router)
