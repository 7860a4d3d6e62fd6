"""Transductive strategies (domain adaptation): a labeled source and an *unlabeled* target.

The algorithms live in :mod:`tlcore.adaptation`; the run is :func:`tlcore.settings.transductive.run_adaptation`.
Hyper-parameters are chosen without target labels (source validation, DomainBed's training-domain validation).
"""

from tlcore.strategies.base import STRATEGIES, Strategy

_DA = {
    "adabn": "AdaBN (Li et al. 2016): re-estimate batch-norm statistics on the unlabeled target; source head.",
    "coral": "CORAL (Sun et al. 2016): re-colour source features with the target covariance, then a linear head.",
    "deep_coral": "Deep CORAL (Sun & Saenko 2016): MLP adapter trained with the covariance-alignment loss.",
    "dann": "DANN (Ganin et al. 2016): MLP adapter trained adversarially against a domain classifier (gradient reversal).",
    "self_training": "Self-training: confidence-thresholded, class-balanced pseudo-labels on the target, iterated.",
    "mcc": "MCC (Jin et al. 2020): MLP adapter trained to minimise class confusion on target predictions.",
}
# The alignment loss each method trains with (tlcore/adaptation/trainer.py, backbone.py); the others have none.
_ALIGNMENT = {"deep_coral": "coral", "dann": "dann", "mcc": "mcc"}
for _name, _desc in _DA.items():
    STRATEGIES.register(_name, Strategy(_name, _desc, uses_loop=False, default_lr=0.0, needs_unlabeled=True,
                                        alignment=_ALIGNMENT.get(_name)))
