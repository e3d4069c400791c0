"""Data only: unit icons (icons/*.png, made by make_icons.py)."""
