"""One APIRouter per resource; app.py includes them all (a new resource adds a module here)."""

from . import attestations, evidence, ingest, ops, read

ALL = (ingest.router, evidence.router, read.router, attestations.router, ops.router)
