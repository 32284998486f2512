"""The gallery's tabs: one module per technique, widgets and callbacks only (no maths)."""
