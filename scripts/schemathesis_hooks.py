"""schemathesis hooks for scripts/schemathesis: a serializer for NDJSON ingest bodies
(application/x-ndjson, one event object per line), which schemathesis has none for."""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson_serializer(ctx, value):
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()
