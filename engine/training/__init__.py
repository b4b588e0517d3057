"""Training loops: episodic meta-training (:mod:`.episodic`) and standard pre-training for
Baseline / Baseline++ (:mod:`.pretrain`), with the shared episode evaluation (:mod:`.evaluate`)."""
