"""The Open Metering Device circuit in SKiDL: one module per function block, composed in top.py."""
