"""The Spark stage: read the batches, clean them, answer the analytics questions, chart them."""
