"""The scene world: CLEVR-style scenes (objects with shape, colour, size, material on a ground
plane), a numpy ray caster that renders them with masks, the language that describes them, and
generators of CLEVR-Change pairs and edit triplets, plus the scene parser that reads them back.
"""
