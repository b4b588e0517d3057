"""Change captioning: align a before/after pair, find the changed regions, type each change
(added, removed, moved, replaced, recoloured) and write one sentence per change."""
