"""Config, registry, seeding, logging adapters, atomic files and checkpoints."""
