"""The extraction stage: consume the three topics, align by idx, write batches exactly once."""
