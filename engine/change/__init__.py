"""Change captioning: align a before/after pair (``alignment``), find the changed regions
(``detection``, ``features``), type and phrase each change (``describe``, ``namers``)."""
