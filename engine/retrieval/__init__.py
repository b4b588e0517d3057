"""Composed image retrieval: encoders (ConSE offline, OpenCLIP on the hub; one interface), the
cached gallery index, ARTEMIS-style explicit + implicit scoring, and RetrievalPipeline."""
