"""QEMU's own vmstate.c, built from source (build.py) and driven from Python (engine.py)."""
