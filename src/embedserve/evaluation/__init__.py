"""`embedserve eval`: MTEB tasks through a served URL, in-process, or both side by side."""
