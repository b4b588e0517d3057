"""Datasets the engine trains and evaluates on (read at run time from ../shared/data)."""
