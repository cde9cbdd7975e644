"""The source stage: generated data, the PostgreSQL tables, the embedded server, the posting emulator."""
