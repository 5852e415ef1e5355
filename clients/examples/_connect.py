"""Where the examples connect: $NEXADB_HOST (localhost), $NEXADB_PORT (6970, the server's
gRPC port; 6969 is its REST port) and $NEXADB_API_KEY (required; never hard-coded)."""
import os
import sys


def params() -> dict:
    key = os.environ.get("NEXADB_API_KEY")
    if not key:
        sys.exit("set NEXADB_API_KEY to a key of your server (its data dir's api_key file)")
    return {"host": os.environ.get("NEXADB_HOST", "localhost"),
            "port": int(os.environ.get("NEXADB_PORT", "6970")),
            "api_key": key}
