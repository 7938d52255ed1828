"""`embedserve bench`: a load generator for any OpenAI-compatible embeddings URL, and its report."""
