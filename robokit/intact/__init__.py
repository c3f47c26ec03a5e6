"""robokit.intact: INTACT robust training for point-cloud models (see docs/intact.md).

* :mod:`~robokit.intact.saliency` - the saliency teacher and its meta-training
* :mod:`~robokit.intact.curriculum` - the gated curriculum of corruption strength
* :mod:`~robokit.intact.attacks` - targeted corruption, PGD, resampling
* :mod:`~robokit.intact.train`, :mod:`~robokit.intact.evaluate` - the classification trainer
  (standard / adversarial / curriculum / INTACT) and the corruption report
* :mod:`~robokit.intact.cli` - ``robokit robustness {train, eval, saliency}``;
  :mod:`~robokit.intact.demo` - the ``make demo`` stage

Builds on :mod:`robokit.pointcloud`; the detector's use of INTACT lives in
:mod:`robokit.detection.intact` (detection depends on intact, never the reverse).
"""
