"""Corpus jobs: `embedserve embed` reads a corpus, embeds it in-process and writes a resumable
Parquet dataset (`readers` -> `run` -> `output`)."""
