"""One APIRouter per resource; app.py includes them all (a new resource adds a module here)."""

from . import attestations, evidence, ingest, ops, public, read

ALL = (ingest.router, evidence.router, read.router, attestations.router, public.router,
       ops.router)
