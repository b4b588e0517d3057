"""Composed image retrieval: gallery indexes, image/text encoders (ConSE offline, OpenCLIP on the
hub) and ARTEMIS-style explicit + implicit scoring."""
