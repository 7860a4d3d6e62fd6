"""The three settings of transfer learning, each one pipeline over the shared trainer, evaluator and run writer.

* :mod:`inductive` — labeled target data (possibly new labels): fine-tune with a strategy, before/after + baselines.
* :mod:`transductive` — labeled source + unlabeled target of the same task (domain adaptation).
* :mod:`unsupervised` — no labels at all: what pretrained features find (clustering vs raw inputs).
"""
